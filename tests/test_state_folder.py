"""Where the agent and the center keep their data: the paths of every OS, unchanged by
platformdirs (an existing install must find its enrollment, spool and database), the overrides,
and owner-only files.

platformdirs' per-OS classes are instantiated directly, so each OS's path is checked here on any
OS. Every platformdirs variable is cleared first, so a developer's own XDG settings do not
change what is tested.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path, PureWindowsPath

import pytest
from platformdirs import PlatformDirs
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from agent_kit.center.settings import default_data_dir
from agent_kit.link.private_files import make_private_folder, write_private_file
from agent_kit.link.state_folder import os_state_dir, state_dir

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX mode bits")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home folder and none of the variables that move the folders."""
    for var in ("AGENT_KIT_HOME", "AGENT_CENTER_DATA_DIR", "XDG_STATE_HOME", "XDG_DATA_HOME",
                "WIN_PD_OVERRIDE_LOCAL_APPDATA", "WIN_PD_OVERRIDE_APPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_linux_state_folder_is_the_xdg_state_home(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert os_state_dir(Unix) == home / ".local" / "state" / "agent-kit"
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    assert os_state_dir(Unix) == home / "state" / "agent-kit"


def test_windows_state_folder_is_local_appdata_without_an_author_folder(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # On Windows platformdirs asks the shell for the Local AppData known folder (what
    # %LOCALAPPDATA% names); its documented override stands in for the shell here.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\ann\AppData\Local")
    monkeypatch.setenv("WIN_PD_OVERRIDE_APPDATA", r"C:\Users\ann\AppData\Roaming")
    assert PureWindowsPath(os_state_dir(Windows)) == PureWindowsPath(
        r"C:\Users\ann\AppData\Local\agent-kit")


def test_macos_state_folder_is_application_support(home: Path) -> None:
    assert os_state_dir(MacOS) == home / "Library" / "Application Support" / "agent-kit"


def test_the_state_folder_is_this_os_s_unless_agent_kit_home_says(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert state_dir() == os_state_dir(PlatformDirs)
    monkeypatch.setenv("AGENT_KIT_HOME", str(home / "elsewhere"))
    assert state_dir() == home / "elsewhere"


def test_center_data_folder_is_the_xdg_data_home_unless_overridden(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same (XDG) folder on every OS: the center never used the OS's own data folder.
    assert default_data_dir() == home / ".local" / "share" / "agent-center"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    assert default_data_dir() == home / "data" / "agent-center"
    monkeypatch.setenv("AGENT_CENTER_DATA_DIR", str(home / "center"))
    assert default_data_dir() == home / "center"


@POSIX_ONLY
def test_a_private_folder_is_the_owner_s_only_even_when_it_existed(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)   # whatever the umask
    make_private_folder(folder / "nested")
    make_private_folder(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "nested").stat().st_mode) == 0o700


@POSIX_ONLY
def test_a_private_file_is_replaced_whole_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "enrollment.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private_file(path, '{"agent_id": "ws-1"}')
    assert path.read_text("utf-8") == '{"agent_id": "ws-1"}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["enrollment.json"]   # no temporary left
