"""The dashboard's copy of the check catalogue (``static/checks.js``), made from
:data:`agent_kit.core.checks.CATALOGUE` so the browser shows the same titles and units as the agent.

Regenerate after adding a check: ``python3 scripts/update-generated.py``
(``tests/test_dashboard_static.py`` fails while the two differ).
"""

from __future__ import annotations

import json
from pathlib import Path

from agent_kit.core.checks import CATALOGUE, CHARTS

PATH = Path(__file__).parent / "static" / "checks.js"


def render() -> str:
    """The text of ``static/checks.js``."""
    lines = [
        "/* The check catalogue for the dashboard: id -> title, unit, group; and the charts.",
        " * Generated from agent_kit/core/checks.py by `python3 scripts/update-generated.py`. */",
        '"use strict";',
        "window.CHECKS = Object.freeze({",
    ]
    for spec in CATALOGUE:
        lines.append(f"  {json.dumps(spec.id)}: {{title: {json.dumps(spec.title)}, "
                     f"unit: {json.dumps(spec.unit)}, group: {json.dumps(spec.group)}}},")
    lines.append("});")
    lines.append("/* The agent page's charts: each line is a check that names the chart. */")
    lines.append("window.CHARTS = Object.freeze([")
    for chart in CHARTS:
        series = ", ".join(f"{{name: {json.dumps(s.series)}, key: {json.dumps(s.id)}}}"
                           for s in CATALOGUE if s.chart == chart.figure)
        lines.append(f"  {{figure: {json.dumps(chart.figure)}, title: {json.dumps(chart.title)}, "
                     f"unit: {json.dumps(chart.unit)}, "
                     f"zeroBased: {json.dumps(chart.zero_based)}, "
                     f"floor: {json.dumps(chart.floor)}, ceiling: {json.dumps(chart.ceiling)},"
                     f"\n   series: [{series}]}},")
    lines.append("]);")
    return "\n".join(lines) + "\n"

