"""Every check id and every policy key is documented (datasette's habit)."""

from __future__ import annotations

import re
from pathlib import Path

from agent_kit.core.checks import CATALOGUE
from agent_kit.core.policy import SECTIONS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_check_id_and_key_is_in_the_policy_reference():
    text = (DOCS / "policy.md").read_text("utf-8")
    for spec in CATALOGUE:
        assert f"`{spec.id}`" in text, f"{spec.id} is not in docs/policy.md"
        for key in spec.params:
            row = next(line for line in text.splitlines()
                       if line.startswith(f"| `{spec.id}`"))
            assert f"`{key}`" in row, f"{spec.id}'s key {key} is not in docs/policy.md"
    for section, keys in SECTIONS.items():
        for key in keys:
            assert f"`{section}.{key}`" in text, f"{section}.{key} is not in docs/policy.md"
    for key in ("warn", "fail", "unknown_blocks", "schema", "name", "version"):
        assert re.search(rf"`{key}`", text), key


def test_architecture_names_real_modules():
    text = (DOCS / "architecture.md").read_text("utf-8")
    root = DOCS.parent
    for path in set(re.findall(r"`((?:agent_kit|probes|tests|bench|installer)/[\w/.]+\.py)`",
                               text)):
        assert (root / path).exists(), f"docs/architecture.md names {path}, which does not exist"


def test_the_policy_checks_table_is_generated_from_the_catalogue():
    from agent_kit.core.checks import policy_doc_table

    text = (DOCS / "policy.md").read_text("utf-8")
    assert policy_doc_table() in text, (
        "docs/policy.md's checks table is out of date: run python3 scripts/update-generated.py")


def _rooms_tree() -> set[str]:
    """The paths the tree in docs/architecture.md ("The rooms") shows, folders with a slash."""
    text = (DOCS / "architecture.md").read_text("utf-8")
    block = text.split("## The rooms", 1)[1].split("```", 2)[1]
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []   # (indent, folder path)
    for line in block.splitlines():
        if not line.strip() or line.startswith(" " * 20):   # empty, or a description's tail
            continue
        indent = len(line) - len(line.lstrip())
        names = []
        for word in line.split():
            if word.endswith((".py", "/")) or "/" in word and word.endswith(".toml"):
                names.append(word)
            else:
                break
        if not names:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        for name in names:
            paths.add(parent + name)
        if names[-1].endswith("/") and len(names) == 1:
            stack.append((indent, parent + names[-1]))
    return paths


def test_architecture_names_every_module():
    """Every module of agent_kit/ and probes/ is in the tree of docs/architecture.md, and
    everything the tree names exists."""
    root = DOCS.parent
    tree = _rooms_tree()
    missing = []
    for package in ("agent_kit", "probes"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if path.name == "__init__.py":
                if f"{rel.parent.as_posix()}/" not in tree:
                    missing.append(f"{rel.parent.as_posix()}/")
            elif rel.parts[:2] != ("agent_kit", "center") and rel.as_posix() not in tree:
                missing.append(rel.as_posix())
    assert not missing, f"docs/architecture.md's tree does not name: {missing}"
    ghosts = [p for p in tree if not (root / p).exists()]
    assert not ghosts, f"docs/architecture.md's tree names what does not exist: {ghosts}"
    center = (DOCS / "architecture.md").read_text("utf-8")
    unnamed = [p.name for p in sorted((root / "agent_kit" / "center").glob("*.py"))
               if p.name != "__init__.py" and f"`{p.stem}`" not in center
               and f"`{p.name}`" not in center and f"center/{p.name}" not in center]
    assert not unnamed, f"docs/architecture.md does not name the center modules: {unnamed}"
