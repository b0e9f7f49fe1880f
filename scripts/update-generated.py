"""Regenerate what is made from the checks catalogue (agent_kit/core/checks.py).

- agent_kit/center/static/checks.js: the dashboard's titles, units, groups and charts;
- the checks table of docs/policy.md.

Run after adding or changing a check: ``python3 scripts/update-generated.py``.
tests/test_dashboard_static.py and tests/test_docs.py fail while either is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_kit.center import checks_js  # noqa: E402
from agent_kit.core.checks import policy_doc_table  # noqa: E402

POLICY_DOC = ROOT / "docs" / "policy.md"
TABLE_HEAD = "| check id | unit |"


def main() -> None:
    checks_js.PATH.write_text(checks_js.render(), encoding="utf-8")
    print(f"wrote {checks_js.PATH.relative_to(ROOT)}")
    doc = POLICY_DOC.read_text("utf-8")
    start = doc.index(TABLE_HEAD)
    end = doc.index("\n\n", start) + 1
    POLICY_DOC.write_text(doc[:start] + policy_doc_table() + doc[end:], encoding="utf-8")
    print(f"wrote the checks table of {POLICY_DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
