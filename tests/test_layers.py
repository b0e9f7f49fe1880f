"""The house plan, enforced: which layer may import which, who prints, where check ids live.

Layers (docs/architecture.md): ``probes`` measure and import nothing of ``agent_kit``;
``agent_kit.core`` is the shared contract and imports no other layer; ``evaluate`` judges
(core + probes' readings); ``run`` runs units; ``loop`` is the shift loop; ``link`` talks to the
center; ``face`` is what the user sees and the only agent layer that prints; ``center`` is the
IT side and imports only ``core``, ``evaluate`` and the two wire-level probe modules the
reflector shares with the path probe.
"""

from __future__ import annotations

import ast
from pathlib import Path

from agent_kit.core.checks import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself, the stdlib and third-party packages)
ALLOWED: dict[str, set[str]] = {
    "probes": set(),
    "core": {"agent_kit"},   # agent_kit/__init__.py: the version
    "evaluate": {"agent_kit", "core", "probes"},
    "link": {"agent_kit", "core"},
    "run": {"agent_kit", "core", "evaluate", "link", "probes"},
    "loop": {"agent_kit", "core", "evaluate", "run", "link", "probes"},
    "face": {"agent_kit", "core", "evaluate", "run", "loop", "link", "probes"},
    "center": {"agent_kit", "core", "evaluate", "probes"},
}
# the only probes modules the center may import: the reflector speaks the path test's wire
# format and reads kernel receive times like the probe does (probes import nothing of
# agent_kit, so these cannot live in core/wire)
CENTER_PROBES = {"probes.network.path_packet", "probes.network.udp_clock"}
LAYERS = ("core", "evaluate", "run", "loop", "link", "face", "center")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in ("agent_kit", "probes"):
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((".".join(path.relative_to(ROOT).with_suffix("").parts), path))
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "probes":
        return "probes"
    if parts[0] != "agent_kit":
        return None
    if len(parts) == 1 or parts[1].startswith("_"):   # __init__, __version__, _build_info
        return "agent_kit"
    return parts[1] if parts[1] in LAYERS else f"agent_kit.{parts[1]}"


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_every_module_is_in_a_layer():
    strays = [m for m, _ in _modules() if _layer(m) not in (*LAYERS, "probes", "agent_kit")]
    assert not strays, f"modules outside the layer folders: {strays}"


def test_layers_import_only_what_the_house_plan_allows():
    bad = []
    for module, path in _modules():
        me = _layer(module)
        if me not in ALLOWED:
            continue
        for dep in _imports(ast.parse(path.read_text("utf-8"))):
            other = _layer(dep)
            if other is None or other == me:
                continue
            if me == "center" and other == "probes":
                if not any(dep == m or dep.startswith(m + ".") for m in CENTER_PROBES):
                    bad.append(f"{module} imports {dep}")
                continue
            if other not in ALLOWED[me]:
                bad.append(f"{module} ({me}) imports {dep} ({other})")
    assert not bad, "layering broken:\n" + "\n".join(sorted(set(bad)))


def _prints(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("print", "input"):
            lines.append(node.lineno)
        elif isinstance(func, ast.Attribute) and (
                ast.unparse(func) in ("typer.echo", "typer.secho", "click.echo")
                or ast.unparse(func.value) in ("sys.stdout", "sys.stderr")
                and func.attr == "write"):
            lines.append(node.lineno)
    return lines


# A child process answering its parent through a pipe is not output for a person.
PRINT_EXEMPT = {"agent_kit.loop.traceroute_child"}


def test_only_the_face_prints():
    """Measuring, judging, running, the loop and the link report through return values and
    callbacks; the face (and the center's own command line) decides what a person sees."""
    bad = []
    for module, path in _modules():
        if _layer(module) in ("face", "center") or module in PRINT_EXEMPT:
            continue
        lines = _prints(ast.parse(path.read_text("utf-8")))
        bad += [f"{path.relative_to(ROOT)}:{n}" for n in lines]
    assert not bad, f"prints outside agent_kit/face: {bad}"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_check_ids_are_spelled_only_in_the_catalogue():
    """A check id string in product code outside agent_kit/core/checks.py is a second
    declaration: use the catalogue's constant (``NETWORK_JITTER.id``) instead."""
    ids = {spec.id for spec in CATALOGUE}
    bad = []
    for module, path in _modules():
        if module == "agent_kit.core.checks":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs and any(i in node.value for i in ids)):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    for path in sorted((ROOT / "agent_kit" / "center" / "static").glob("*")):
        if path.name == "checks.js" or path.suffix not in (".js", ".html"):
            continue   # checks.js is generated from the catalogue
        text = path.read_text("utf-8")
        bad += [f"{path.relative_to(ROOT)}: {i}" for i in sorted(ids) if i in text]
    assert not bad, "check ids spelled outside the catalogue:\n" + "\n".join(bad)


def test_the_test_catches_a_stray_id(tmp_path):
    """The checker itself: a module spelling an id is found (so the test above can fail)."""
    tree = ast.parse('"""mentions network.jitter in a docstring: fine"""\nX = "network.jitter"\n')
    docs = _docstrings(tree)
    hits = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docs
            and n.value == "network.jitter"]
    assert len(hits) == 1
    assert _layer("agent_kit.center.app") == "center" and _layer("probes.system") == "probes"


# tests/lab modules that exist to run the product inside a lab namespace (they start the real
# center's parts); every other one is a reference or a piece of the lab, and a reference that
# imported the product could hide the product's mistake by repeating it.
LAB_PRODUCT_HARNESSES = {"tests.lab.bandwidth_center", "tests.lab.reflector",
                         "tests.lab.call_center", "tests.lab.call_client"}


def test_lab_references_import_nothing_of_the_product():
    lab = {".".join(p.relative_to(ROOT).with_suffix("").parts): p
           for p in sorted((ROOT / "tests" / "lab").glob("*.py"))}
    assert "tests.lab.relay" in lab and set(lab) >= LAB_PRODUCT_HARNESSES
    bad = []
    for module, path in lab.items():
        if module in LAB_PRODUCT_HARNESSES:
            continue
        for dep in _imports(ast.parse(path.read_text("utf-8"))):
            top = dep.split(".")[0]
            if top in ("agent_kit", "probes") or dep.startswith(tuple(LAB_PRODUCT_HARNESSES)):
                bad.append(f"{module} imports {dep}")
    assert not bad, bad
