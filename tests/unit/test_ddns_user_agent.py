"""The DDNS User-Agent names natlink and its version, and a project page only when the package metadata gives
a Homepage (no invented URL: natlink has none yet)."""

from natlink.net.http import user_agent


def test_without_project_urls_only_name_and_version():
    assert user_agent("1.2.3", []) == "natlink/1.2.3 (DDNS updater)"


def test_the_homepage_from_the_metadata_is_the_contact():
    urls = ["Source, https://git.example.org/natlink", "Homepage, https://natlink.example.org/"]
    assert user_agent("1.2.3", urls) == "natlink/1.2.3 (DDNS updater; https://natlink.example.org/)"


def test_other_labels_or_an_empty_homepage_name_no_page():
    assert user_agent("1.2.3", ["Source, https://git.example.org/natlink", "homepage, "]) == \
        "natlink/1.2.3 (DDNS updater)"
