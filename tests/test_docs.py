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


def test_architecture_names_every_module():
    """Every module of agent_kit/ and probes/ is named in docs/architecture.md."""
    text = (DOCS / "architecture.md").read_text("utf-8")
    root = DOCS.parent
    missing = []
    for package in ("agent_kit", "probes"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if path.name == "__init__.py":
                named = f"{rel.parent.as_posix()}/" in text or f"`{rel.parent.name}/`" in text
            else:
                named = rel.as_posix() in text or f"`{path.name}`" in text
            if not named:
                missing.append(rel.as_posix())
    assert not missing, f"docs/architecture.md does not name: {missing}"
