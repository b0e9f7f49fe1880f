"""Per-OS differences are chosen once, in the modules that hold them (psutil's way).

Everywhere else code calls a plain function. Within an OS-choice module the OS is read at import
(module level, ``if sys.platform ...: def ...``), never inside a function, so nothing asks again
on every call and mypy checks each branch for the OS it is on.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each module and the concern it chooses per OS.
OS_CHOICE_MODULES = {
    "agent_kit/center/data_dir.py": "the center's owner-only data dir",
    "agent_kit/core/os_language.py": "the OS's UI language",
    "agent_kit/core/process_replacement.py": "replacing this process with a command",
    "agent_kit/face/graphical_session.py": "whether a desktop session is there for the window",
    "agent_kit/link/private_files.py": "owner-only files and folders",
    "agent_kit/loop/malloc_tuning.py": "glibc's allocator knobs",
    "agent_kit/loop/notifications.py": "desktop notifications",
    "agent_kit/loop/single_instance.py": "the single-monitor lock",
    "probes/audio/devices.py": "where the audio device list comes from",
    "probes/audio/pulse_capture.py": "whether the sound server records the microphone",
    "probes/network/interfaces.py": "interface kinds from sysfs",
    "probes/network/traceroute.py": "raw-socket privileges and scapy's socket",
    "probes/network/udp_clock.py": "kernel receive timestamps",
}


def _os_reads(tree: ast.Module) -> list[tuple[int, bool]]:
    """(line, inside a function) of every read of the OS's identity in ``tree``."""
    found: list[tuple[int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id, node.attr) in {("sys", "platform"), ("os", "name"),
                                               ("platform", "system")}):
            found.append((node.lineno, in_function))
        if isinstance(node, ast.ImportFrom) and node.module in {"sys", "os", "platform"} and any(
                alias.name in {"platform", "name", "system"} for alias in node.names):
            found.append((node.lineno, in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                          | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _sources() -> dict[str, ast.Module]:
    files = sorted([*ROOT.glob("agent_kit/**/*.py"), *ROOT.glob("probes/**/*.py")])
    assert len(files) > 50, "the package tree was not found"
    return {f.relative_to(ROOT).as_posix(): ast.parse(f.read_text("utf-8"), str(f))
            for f in files}


def test_only_the_os_choice_modules_read_the_os() -> None:
    stray = [f"{name}:{line}" for name, tree in _sources().items()
             if name not in OS_CHOICE_MODULES for line, _ in _os_reads(tree)]
    assert not stray, ("sys.platform / os.name outside the OS-choice modules: put the "
                       f"difference behind a function in the module of its concern: {stray}")


def test_the_os_choice_modules_choose_once_at_import() -> None:
    sources = _sources()
    for name in OS_CHOICE_MODULES:
        reads = _os_reads(sources[name])
        assert reads, f"{name} chooses nothing per OS any more: take it off the list"
        in_functions = [line for line, in_function in reads if in_function]
        assert not in_functions, f"{name} reads the OS inside a function (lines {in_functions})"
