"""UPnP error translation: binding text -> code -> plain cause and fix, worded for the request."""

from __future__ import annotations

import pytest

from natlink.portmap.base import Mapping, MappingError
from natlink.portmap.upnp_errors import CODE_NAMES, ErrorContext, code_of, translate

ME = "10.0.1.201"
MINE = Mapping("tcp", 3390, ME, 3389, "natlink:rdp")
LAN2 = Mapping("tcp", 3391, "10.0.1.99", 3389, "natlink:other")
PORT80 = Mapping("tcp", 80, ME, 80, "natlink:web")

# Every code the issue names, with the text miniupnpc's strupnperror() gives it.
CODES = [(402, "Invalid Args"), (501, "Action Failed"), (606, "Action not authorized"), (714, "NoSuchEntryInArray"),
         (715, "WildCardNotPermittedInSrcIP"), (716, "WildCardNotPermittedInExtPort"),
         (718, "ConflictInMappingEntry"), (724, "SamePortValuesRequired"), (725, "OnlyPermanentLeasesSupported"),
         (726, "RemoteHostOnlySupportsWildcard"), (727, "ExternalPortOnlySupportsWildcard"),
         (728, "NoPortMapsAvailable"), (729, "ConflictWithOtherMechanisms")]


@pytest.mark.parametrize("code,text", CODES)
def test_every_code_has_its_own_cause_and_fix(code, text):
    assert code_of(text) == code
    err = translate(text, ErrorContext("add", MINE, ME, 3600))
    assert isinstance(err, MappingError) and err.code == code
    assert err.cause and err.fix and err.cause != text
    assert f"error {code}" in str(err) and " — " in str(err)


def test_causes_differ_between_codes():
    causes = {translate(t, ErrorContext("add", MINE, ME)).cause for _, t in CODES}
    assert len(causes) == len(CODES)


def test_718_for_another_host_names_secure_mode_and_that_host():
    err = translate("ConflictInMappingEntry", ErrorContext("add", LAN2, ME))
    assert "only lets a host map ports to itself" in err.cause
    assert err.fix == "run natlink on 10.0.1.99, or free the port"


def test_718_for_this_host_names_the_holder():
    holder = Mapping("tcp", 3390, "10.0.1.99", 3389, "upnpc")
    err = translate("ConflictInMappingEntry", ErrorContext("add", MINE, ME, holder=holder))
    assert "10.0.1.99:3389" in err.cause and "upnpc" in err.cause
    assert "allow_other_port" in err.fix


def test_606_low_port():
    err = translate("Action not authorized", ErrorContext("add", PORT80, ME))
    assert err.code == 606 and "80" in err.cause and "below 1024" in err.cause
    assert "high external_port" in err.fix


def test_606_other_host_mentions_secure_mode():
    err = translate("Action not authorized", ErrorContext("add", LAN2, ME))
    assert "secure mode" in err.cause and "10.0.1.99" in err.fix


@pytest.mark.parametrize("text", ["UnknownError", "Miniupnpc HTTP error", "Miniupnpc Invalid response",
                                  "something new", ""])
def test_unnamed_errors_still_explain(text):
    err = translate(text, ErrorContext("add", MINE, ME))
    assert err.cause and err.fix


def test_unknown_error_mentions_728_729():
    err = translate("UnknownError")
    assert err.code is None and "728" in err.cause and "729" in err.cause


def test_names_table_round_trips():
    for text, code in [(t, c) for c, t in CODE_NAMES.items()]:
        assert code_of(text) == code
