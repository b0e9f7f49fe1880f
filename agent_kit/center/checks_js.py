"""The dashboard's copy of the check catalogue (``static/checks.js``), made from
:data:`agent_kit.core.checks.CATALOGUE` so the browser shows the same titles and units as the agent.

Regenerate after adding a check: ``python3 -m agent_kit.center.checks_js``
(``tests/test_dashboard_static.py`` fails while the two differ).
"""

from __future__ import annotations

import json
from pathlib import Path

from agent_kit.core.checks import CATALOGUE

PATH = Path(__file__).parent / "static" / "checks.js"


def render() -> str:
    """The text of ``static/checks.js``."""
    lines = [
        "/* The check catalogue for the dashboard: id -> title, unit, group.",
        " * Generated from agent_kit/core/checks.py by `python3 -m agent_kit.center.checks_js`. */",
        '"use strict";',
        "window.CHECKS = Object.freeze({",
    ]
    for spec in CATALOGUE:
        lines.append(f"  {json.dumps(spec.id)}: {{title: {json.dumps(spec.title)}, "
                     f"unit: {json.dumps(spec.unit)}, group: {json.dumps(spec.group)}}},")
    lines.append("});")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
