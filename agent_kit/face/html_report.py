"""The self-diagnosis report as one self-contained HTML file (inline CSS and SVG, no script).

It opens offline in any browser, can be mailed or uploaded to the center as it is, and holds
numbers only: a series longer than ``MAX_SERIES_POINTS`` (which could only be a waveform) is
never written, so no microphone audio can end up in a report.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from agent_kit.core.checks import AUDIO_DROPOUTS, BY_ID, NETWORK_RTT
from agent_kit.core.i18n import N_, _, current_language
from agent_kit.core.policy import policy_title
from agent_kit.core.results import CheckResult, Status
from agent_kit.evaluate.diagnosis import Diagnosis
from agent_kit.face.check_steps import step_word
from agent_kit.face.svg_charts import level_bar, line_chart
from agent_kit.face.terminal import check_title, format_value

MAX_SERIES_POINTS = 2000


@dataclass(frozen=True)
class SeriesChart:
    """How one series of a check's details is drawn: what it is, along which axis."""

    what: str | None     # msgid added to the check's title ("length of each gap"), or None
    unit: str
    x_label: str         # msgid of the x axis
    levels: bool         # whether the check's warn/fail levels apply to each point


# The series the evaluators put in their details (evaluate.network, evaluate.audio).
SERIES = {
    (NETWORK_RTT.id, "rtt_ms"): SeriesChart(None, "ms", N_("test packets, in the order sent"),
                                            True),
    (AUDIO_DROPOUTS.id, "gaps_ms"): SeriesChart(N_("length of each gap"), "ms",
                                                N_("gaps, in the order heard"), False),
}
_UNIT_SUFFIX = {"_ms": "ms", "_pct": "%", "_dbfs": "dBFS", "_db": "dB", "_mbit_s": "Mbit/s"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK JP",sans-serif;
margin:0 auto;max-width:980px;padding:24px;color:#212121;line-height:1.45}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:28px 0 8px;border-bottom:1px solid
#e0e0e0;padding-bottom:4px}.meta{color:#616161;font-size:.9em}
.verdict{padding:14px 18px;border-radius:8px;margin:18px 0;font-size:1.1em}
.verdict b{font-size:1.4em;display:block}.ready{background:#e8f5e9;border:1px solid #2e7d32}
.notready{background:#ffebee;border:1px solid #c62828}
table{border-collapse:collapse;width:100%}td,th{padding:6px 8px;border-bottom:1px solid #eee;
vertical-align:top;text-align:left;font-size:.92em}th{font-weight:600;background:#fafafa}
.badge{display:inline-block;min-width:64px;white-space:nowrap;text-align:center;
border-radius:10px;padding:1px 8px;font-size:.85em;color:#fff}.pass{background:#2e7d32}
.warn{background:#f9a825;color:#212121}
.fail{background:#c62828}.unknown{background:#9e9e9e}
.cause{margin:8px 0;padding:10px 14px;border-left:5px solid #1565c0;background:#f5f9ff}
.cause.first{border-left-color:#c62828;background:#fff5f5}.score{display:inline-block;
height:8px;background:#1565c0;border-radius:4px;vertical-align:middle;margin-right:8px}
td.value{white-space:nowrap}.fix{color:#1b5e20}.chart{margin:10px 0}
footer{margin-top:32px;color:#757575;font-size:.85em}
"""


def _series(details: dict[str, Any], prefix: str = "") -> list[tuple[str, list[float]]]:
    """Numeric lists in a result's details (one level of nesting), short enough to be figures."""
    found: list[tuple[str, list[float]]] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix:
            found += _series(value, prefix=f"{key}.")
        elif (isinstance(value, list | tuple) and 3 <= len(value) <= MAX_SERIES_POINTS
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            found.append((name, [float(v) for v in value]))
    return found


def _check_row(r: CheckResult) -> str:
    spec = BY_ID.get(r.id)
    chart = ""
    if (spec is not None and spec.has_thresholds and isinstance(r.value, int | float)
            and not isinstance(r.value, bool)):
        chart = level_bar(float(r.value), r.warn, r.fail, direction=spec.direction,
                          status=r.status.value, unit=r.unit, width=220, height=28)
    fix = f'<div class="fix">{escape(r.fix)}</div>' if r.fix and r.status is not Status.PASS \
        else ""
    return (f'<tr data-check="{escape(r.id)}"><td><span class="badge {r.status.value}">'
            f'{escape(_status_word(r.status))}</span></td><td>{escape(check_title(r.id))}</td>'
            f'<td class="value">{escape(format_value(r))}</td><td>{chart}</td>'
            f'<td>{escape(r.message)}{fix}</td></tr>')


def _status_word(status: Status) -> str:
    # the window's and the terminal's words, not "pass"/"fail": a check is not an exam
    return step_word(status)


def _causes(d: Diagnosis) -> str:
    if not d.causes:
        return f"<p>{escape(d.summary())}</p>"
    titles = {r.id: check_title(r.id) for r in d.report.checks}
    # the confidence in words, and a bar of three fixed widths for it: never a percentage
    bar = {"likely": 120, "possible": 60, "less_likely": 24}
    out = []
    for i, cause in enumerate(d.causes):
        evidence = ", ".join(titles.get(cid, cid) for cid in cause.evidence)
        fix = (f'<div class="fix">{escape(cause.fix)}</div>' if i == 0 and cause.fix else "")
        out.append(
            f'<div class="cause{" first" if i == 0 else ""}" data-cause="{cause.key}" '
            f'data-confidence="{cause.confidence}">'
            f'<span class="score" style="width:{bar[cause.confidence]}px"></span>'
            f'<b>{escape(cause.title)}</b> — {escape(cause.confidence_label)}<br>'
            f'<span class="meta">{escape(_("Evidence: {checks}").format(checks=evidence))}'
            f'</span>{fix}</div>')
    return "".join(out)


def _charts(d: Diagnosis) -> str:
    blocks = []
    for r in d.report.checks:
        for key, points in _series(r.details):
            blocks.append('<div class="chart">' + series_chart(r, key, points) + "</div>")
    return "".join(blocks)


def series_chart(r: CheckResult, key: str, points: list[float]) -> str:
    """One series of ``r``'s details as a line chart titled with the check's title and unit,
    both axes labelled, the policy's levels drawn when they apply to each point."""
    spec = SERIES.get((r.id, key))
    if spec is None:   # a series no chart was designed for: its unit from its name, no levels
        unit = next((u for suffix, u in _UNIT_SUFFIX.items() if key.endswith(suffix)), None)
        spec = SeriesChart(None, unit or "", N_("samples, in order"), False)
    title = check_title(r.id) if spec.what is None else _("{title}: {what}").format(
        title=check_title(r.id), what=_(spec.what))
    warn = r.warn if spec.levels else None
    fail = r.fail if spec.levels else None
    unit = spec.unit or None
    return line_chart(
        points, title=title, unit=unit, warn=warn, fail=fail, x_label=_(spec.x_label),
        warn_label=_("warning level {level}").format(level=_level(warn, unit)) if warn is not None
        else "",
        fail_label=_("limit {level}").format(level=_level(fail, unit)) if fail is not None
        else "")


def _level(value: float | None, unit: str | None) -> str:
    text = f"{value:g}" if value is not None else ""
    return f"{text} {unit}" if unit else text


def render_html(d: Diagnosis, *, hostname: str | None = None, agent_id: str | None = None,
                created_at: datetime | None = None) -> str:
    """The whole report as one HTML document (a string)."""
    report = d.report
    created = (created_at or datetime.now(UTC)).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    host = hostname or platform.node()
    ready = report.ready
    headline = (_("READY (with warnings)") if ready and report.verdict is Status.WARN
                else _("READY") if ready else _("NOT READY"))
    meta = " · ".join(escape(x) for x in (
        host, *([agent_id] if agent_id else []), created,
        f"agent-kit {report.version}",
        f"{policy_title(report.policy_name)} {report.policy_version}",
        _("measured in {seconds:.1f} s").format(seconds=report.duration_s)))
    charts = _charts(d)
    charts_section = (f"<h2>{escape(_('Over the test'))}</h2>{charts}" if charts else "")
    footer = _("This report holds measurements only: no sound from your microphone is "
               "recorded, stored or sent.")
    return (
        f'<!doctype html><html lang="{current_language()}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{escape(_("Call quality report"))} — {escape(host)}</title>'
        f'<style>{_CSS}</style></head><body>'
        f'<h1>{escape(_("Call quality report"))}</h1><div class="meta">{meta}</div>'
        f'<div class="verdict {"ready" if ready else "notready"}" id="verdict">'
        f'<b>{escape(headline)}</b>{escape(d.summary())}</div>'
        f'<h2>{escape(_("Most likely cause"))}</h2><div id="causes">{_causes(d)}</div>'
        f'<h2>{escape(_("What we measured"))}</h2><table id="checks"><tr>'
        f'<th></th><th>{escape(_("check"))}</th><th>{escape(_("value"))}</th>'
        f'<th>{escape(_("levels"))}</th><th>{escape(_("what we found"))}</th></tr>'
        + "".join(_check_row(r) for r in report.checks) + "</table>"
        + charts_section
        + f"<footer>{escape(footer)}</footer></body></html>")
