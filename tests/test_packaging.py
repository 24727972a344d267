"""The wheel ships what an installed natlink names: the example config and the systemd units (identical to
the repo-root sources of truth), and `natlink init --systemd` from a real install (a venv, no checkout on
sys.path) finds and installs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS = ["natlink-oneshot.service", "natlink-oneshot.timer", "natlink-reflector.service", "natlink.service"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "config.example.toml"):
        shutil.copy2(REPO / name, src / name)
    for name in ("natlink", "systemd"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=120)
    [built] = out.glob("natlink-*.whl")
    return built


def test_wheel_contains_the_example_config_and_the_units(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        assert z.read("natlink/data/config.example.toml") == (REPO / "config.example.toml").read_bytes()
        for unit in UNITS:
            assert z.read(f"natlink/data/systemd/{unit}") == (REPO / "systemd" / unit).read_bytes()
        for name in ("natlink.1", "completion/natlink.bash", "completion/_natlink"):  # natlink init --shell
            assert z.read(f"natlink/data/{name}") == (REPO / "natlink" / "data" / name).read_bytes()


@pytest.fixture(scope="module")
def env_dir(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed (its dependencies from the system): no checkout on its sys.path."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    # --ignore-installed: where natlink is installed system-wide too (as .ci/run does), pip would otherwise call it
    # "already satisfied" through the system site-packages and put nothing (no `natlink` command) in the venv
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install", "--no-deps",
                    "--ignore-installed", "-q", str(wheel)], check=True, capture_output=True, timeout=120)
    return env_dir


def test_installed_init_systemd_installs_the_shipped_units(env_dir: Path, tmp_path: Path) -> None:
    py = env_dir / "bin" / "python"
    root = tmp_path / "root"
    r = subprocess.run([str(env_dir / "bin" / "natlink"), "init", "--systemd", "--root", str(root)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    installed = sorted(p.name for p in (root / "etc/systemd/system").iterdir())
    assert installed == UNITS
    located = subprocess.run([str(py), "-c", "from natlink import starter; print(starter.example_config())"],
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert located.startswith(str(env_dir)) and Path(located).is_file()


def test_wheel_contains_the_status_page_files(wheel: Path) -> None:
    """The page is served from the package itself (no CDN, no build step)."""
    with zipfile.ZipFile(wheel) as z:
        for name in ("page.css", "page.js"):
            assert z.read(f"natlink/web/static/{name}") == (REPO / "natlink" / "web" / "static" / name).read_bytes()


def test_the_user_agent_names_only_a_page_the_metadata_gives(env_dir: Path, tmp_path: Path) -> None:
    """The installed package's agent is its version plus pyproject's Homepage when there is one, nothing else."""
    import tomllib

    from natlink import __version__

    py = env_dir / "bin" / "python"
    agent = subprocess.run([str(py), "-c", "from natlink.net.http import USER_AGENT; print(USER_AGENT)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("urls", {})
    home = next((u for label, u in urls.items() if label.lower() == "homepage"), None)
    assert agent == f"natlink/{__version__} (DDNS updater{'; ' + home if home else ''})"
