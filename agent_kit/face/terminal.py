"""Show a ``CheckReport`` in a terminal, or as the contract's JSON.

By default a short screen that fits 80x24: one row per step (the window's rows, with its
words), then each problem in plain words with its fix on a line of its own, then READY or NOT
READY. ``--details`` shows every check with its message instead of the steps. Progress while
the check runs is one line that rewrites itself on a terminal, and plain lines otherwise (a
log, a pipe). All wrapping goes through ``agent_kit.face.text_wrap``.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

from agent_kit.core.checks import BY_ID
from agent_kit.core.i18n import M_, _, ngettext, render
from agent_kit.core.policy import policy_title
from agent_kit.core.results import (
    CheckReport,
    CheckResult,
    Status,
    number_text,
    unit_text,
    value_text,
)
from agent_kit.face.check_steps import (
    Step,
    plain_finding,
    plain_title,
    step_label,
    step_word,
    steps,
    unit_of,
    worst,
)
from agent_kit.face.text_wrap import display_width, labelled, pad, truncate, wrap

SYMBOL = {Status.PASS: "✔", Status.WARN: "!", Status.FAIL: "✘", Status.UNKNOWN: "?"}
_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
          Status.UNKNOWN: "magenta"}
MAX_WIDTH = 120          # wider lines are hard to read; a wide terminal gets 120 columns
TITLE_COLUMN_MAX = 34    # the --details table's check column, at most
FIX_INDENT = "   "       # the "Fix:" line sits under its problem, indented


# ------------------------------------------------------------------------------ progress

class ProgressLine:
    """The runner's progress on ``stream``: on a terminal one line, rewritten in place, that
    names the steps being measured; elsewhere one plain line when a step starts and ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._running: dict[str, str] = {}   # unit -> its label, in start order
        self._done = 0
        self._shown = False
        self._lock = threading.Lock()

    def __call__(self, event: str, unit: str, elapsed: float,
                 results: list[CheckResult] | None) -> None:
        """A ``ProgressFn`` (``agent_kit.run.runner``)."""
        label = step_label(unit, unit)
        with self._lock:
            if event == "start":
                self._running[unit] = label
            else:
                self._running.pop(unit, None)
                self._done += 1
            if self.tty:
                self._draw()
            elif event == "start":
                self._write(_("measuring: {step}").format(step=label) + "\n")
            else:
                word = step_word(worst(results or []))
                # rendered: the seconds in the reader's format ("1,2 s" in Swedish)
                self._write(render(M_("{step}: {result} ({seconds:.1f} s)", step=label,
                                      result=word, seconds=elapsed)) + "\n")

    def _draw(self) -> None:
        if not self._running:
            self._clear_locked()
            return
        from agent_kit.face.text_wrap import terminal_width

        text = _("Checking: {steps} … ({done} done)").format(
            steps=", ".join(self._running.values()), done=self._done)
        # one column short of the edge: a line that reaches it makes some terminals wrap,
        # and a wrapped line can no longer be rewritten with a carriage return
        self._write("\r\x1b[K" + truncate(text, terminal_width(self.stream) - 1))
        self._shown = True

    def _clear_locked(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def clear(self) -> None:
        """Remove the progress line (before the report or a prompt is printed)."""
        with self._lock:
            self._clear_locked()

    def prompt(self, text: str) -> None:
        """An instruction of the microphone test, set apart, the progress line redrawn after."""
        from agent_kit.face.text_wrap import terminal_width

        with self._lock:
            self._clear_locked()
            lines = wrap(text, min(terminal_width(self.stream), MAX_WIDTH), first=">>> ")
            self._write("\n" + "\n".join(lines) + "\n\n")
            if self.tty and self._running:
                self._draw()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # a closed pipe must not stop the check
            pass


_progress: ProgressLine | None = None


def progress_line() -> ProgressLine:
    """The one progress line of this process (on stderr)."""
    global _progress
    if _progress is None or _progress.stream is not sys.stderr:
        _progress = ProgressLine(sys.stderr)
    return _progress


def terminal_progress(event: str, unit: str, elapsed: float,
                      results: list[CheckResult] | None) -> None:
    """The runner's progress on stderr (see ``ProgressLine``)."""
    progress_line()(event, unit, elapsed, results)


def terminal_prompt(text: str) -> None:
    """An instruction of the microphone test, set apart on stderr."""
    progress_line().prompt(text)


# ------------------------------------------------------------------------------ values

def report_json(report: CheckReport) -> str:
    """The contract's JSON object (DESIGN.md), as ``--json`` prints it."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


def format_value(result: CheckResult) -> str:
    """A reading with its unit ("18.4 %"), "yes"/"no", or "—" when there is none."""
    v = result.value
    if v is None:
        return "—"
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    # the reader's decimal sign ("77,7" in Swedish); a state's word in the reader's language
    text = number_text(v) if isinstance(v, int | float) else value_text(v)
    # a count needs no unit word ("2", not "2 count")
    shown_unit = result.unit if result.unit not in (None, "count") else None
    return f"{text} {unit_text(shown_unit)}" if shown_unit and not isinstance(v, str) else text


def check_title(check_id: str) -> str:
    """The check's human title in the current language."""
    return _(BY_ID[check_id].title) if check_id in BY_ID else check_id


# ------------------------------------------------------------------------------ problems

@dataclass(frozen=True)
class Problem:
    """One item of "What to do": checks that share a finding and a fix are one item."""

    status: Status
    blocks: bool
    text: str            # "Headset: no microphone found", "Jitter is too high: 45 ms ..."
    fix: str | None


def problems(report: CheckReport) -> list[Problem]:
    """Every check that did not pass, one item per distinct finding and fix, blocking first.

    Six room checks that could not record say so once, under the step's name ("Microphone
    test and room noise"), not six times under six titles.
    """
    unit_sizes: dict[str, int] = {}
    for r in report.checks:
        unit_sizes[unit_of(r)] = unit_sizes.get(unit_of(r), 0) + 1
    told = _told_at_the_top(report)
    # a group that could not run blocks readiness, whatever its checks' unknown_blocks
    gap_ids = {cid for gap in report.not_checked for cid in gap.check_ids}

    def blocking(r: CheckResult) -> bool:
        return r.blocks or r.id in gap_ids

    grouped: dict[tuple[str, str, bool], list[CheckResult]] = {}
    order = sorted((r for r in report.checks if r.status is not Status.PASS
                    and r.id not in told),
                   key=lambda r: (not blocking(r), _RANK[r.status]))
    for r in order:
        grouped.setdefault((plain_finding(r), r.fix or "", blocking(r)), []).append(r)
    items = []
    for (finding, fix, blocks), same in grouped.items():
        status = worst(same)
        if finding != same[0].message:        # a level finding names its check itself
            text = finding
        else:
            text = _("{title}: {message}").format(title=_names(same, unit_sizes),
                                                   message=finding)
        items.append(Problem(status, blocks, text, fix or None))
    return items


_RANK = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.PASS: 3}


def _needs_center() -> set[str]:
    from agent_kit.run.units import UNITS

    return {cid for u in UNITS if u.needs_center for cid in u.check_ids}


def _shows_notice(report: CheckReport) -> bool:
    """The not-enrolled notice heads the screen when it is why a group could not run (the
    path or the bandwidth test); a VPN route that cannot be told says so in its own words."""
    needs = _needs_center()
    return report.not_enrolled is not None and any(
        set(g.check_ids) & needs for g in report.not_checked)


def _told_at_the_top(report: CheckReport) -> set[str]:
    """The checks the not-enrolled notice explains: they could not measure because this
    computer has no center yet, so their "no center configured" is not repeated below it."""
    if not _shows_notice(report):
        return set()
    needs = _needs_center()
    return {r.id for r in report.checks if r.status is Status.UNKNOWN and r.id in needs}


def notice_lines(report: CheckReport, width: int) -> list[tuple[str, str | None]]:
    """The not-enrolled notice, said once above everything: what is wrong, what to do."""
    notice = report.not_enrolled
    if notice is None or not _shows_notice(report):
        return []
    out: list[tuple[str, str | None]] = [(line, "bold") for line in wrap(notice.message, width)]
    out += [(line, None) for line in labelled(_("What to do:") + " ", notice.fix, width,
                                              indent=FIX_INDENT)]
    return [*out, ("", None)]


def _names(same: list[CheckResult], unit_sizes: dict[str, int]) -> str:
    """The checks' plain titles, or their step's name when they are the whole step."""
    units: dict[str, list[CheckResult]] = {}
    for r in same:
        units.setdefault(unit_of(r), []).append(r)
    names: list[str] = []
    for unit, results in units.items():
        if len(results) > 1 and len(results) == unit_sizes.get(unit):
            names.append(step_label(unit, results[0].group))
        else:
            names += [plain_title(r.id) for r in results]
    text = names[0]
    for name in names[1:]:   # "A, B" in English, "A、B" in Japanese
        text = _("{first}, {second}").format(first=text, second=name)
    return text


# ------------------------------------------------------------------------------ rendering

def report_lines(report: CheckReport, width: int = 80, *,
                 details: bool = False) -> list[tuple[str, str | None]]:
    """The report as (line, style) pairs no wider than ``width`` display columns."""
    out: list[tuple[str, str | None]] = notice_lines(report, width)
    if details:
        out += _detail_table(report, width)
    else:
        out += _step_rows(steps(report), width)
    items = problems(report)
    blocking = [i for i in items if i.blocks]
    others = [i for i in items if not i.blocks]
    if items:
        out.append(("", None))
    # under a heading rather than "(blocks login)" after each: one line instead of four
    for heading, group in ((_("Fix these before you take calls:"), blocking),
                           (_("Also worth fixing:") if blocking else _("What to do:"), others)):
        if not group:
            continue
        out.append((heading, "bold"))
        for item in group:
            for n, line in enumerate(wrap(item.text, width, first=SYMBOL[item.status] + " ")):
                out.append((line, _STYLE[item.status] if n == 0 else None))
            if item.fix:
                out += [(line, None) for line in labelled(_("Fix:") + " ", item.fix, width,
                                                          indent=FIX_INDENT)]
    out.append(("", None))
    out += _verdict(report, width, details=details)
    return out


def _step_rows(rows: list[Step], width: int) -> list[tuple[str, str | None]]:
    label_w = min(max((display_width(s.label) for s in rows), default=0), width // 2)
    out: list[tuple[str, str | None]] = []
    for s in rows:
        label = truncate(s.label, label_w)
        out.append((f"{SYMBOL[s.status]} {pad(label, label_w)}  {step_word(s.status)}",
                    _STYLE[s.status] if s.status is not Status.PASS else None))
    return out


def _detail_table(report: CheckReport, width: int) -> list[tuple[str, str | None]]:
    """Every check: symbol, title, what we found (the message holds the reading: no value
    column repeating it)."""
    titles = [check_title(r.id) for r in report.checks]
    title_w = min(max((display_width(t) for t in titles), default=0), TITLE_COLUMN_MAX)
    lead = 2 + title_w + 2
    out: list[tuple[str, str | None]] = []
    for r, title in zip(report.checks, titles, strict=True):
        style = _STYLE[r.status] if r.status is not Status.PASS else None
        first = f"{SYMBOL[r.status]} {pad(truncate(title, title_w), title_w)}  "
        if width - lead >= 30:
            lines = wrap(r.message, width, first=first, rest=" " * lead)
        else:   # too narrow for two columns: the message under its title
            lines = [first.rstrip(), *wrap(r.message, width, first="    ")]
        out += [(line, style if n == 0 else None) for n, line in enumerate(lines)]
    return out


def _verdict(report: CheckReport, width: int, *, details: bool) -> list[tuple[str, str | None]]:
    if report.ready:
        headline = _("READY (with warnings)") if report.verdict is Status.WARN else _("READY")
        text, style = headline + " — " + _("you can take calls."), "bold green"
    else:
        text, style = _("NOT READY") + " — " + not_ready_summary(report), "bold red"
    out: list[tuple[str, str | None]] = [(line, style if n == 0 else None)
                                         for n, line in enumerate(wrap(text, width))]
    if details:
        out += [(line, None) for line in wrap(_(
            "policy {name} {version}, {seconds:.1f} s").format(
                name=policy_title(report.policy_name), version=report.policy_version,
                seconds=report.duration_s), width)]
    else:
        out += [(line, "dim") for line in wrap(_("Every measurement: add --details"), width)]
    return out


def not_ready_summary(report: CheckReport) -> str:
    """Why a report is not ready, in one sentence: how many problems to fix, then what could
    not be checked (a workstation whose network was never tested is not ready either)."""
    count = sum(1 for r in report.checks if r.blocks)
    parts = []
    if count or not report.not_checked:
        parts.append(ngettext("{count} problem to fix before you take calls",
                              "{count} problems to fix before you take calls",
                              count).format(count=count))
    if report.not_checked:
        parts.append(_("not checked: {what}").format(what=", ".join(
            dict.fromkeys(step_label(g.unit, g.group) for g in report.not_checked))))
    text = parts[0]
    for part in parts[1:]:
        text = _("{first}; {second}").format(first=text, second=part)
    return text


def render_terminal(report: CheckReport, stream: TextIO | None = None, *,
                    details: bool = False, width: int | None = None) -> None:
    """Print the report (short by default, every check with ``details``) to ``stream``."""
    from rich.console import Console
    from rich.text import Text

    if _progress is not None:
        _progress.clear()
    console = Console(file=stream or sys.stdout, highlight=False)
    columns = min(width or console.width, MAX_WIDTH)
    for line, style in report_lines(report, columns, details=details):
        # Text, not markup: a message may hold "[" (device names, addresses)
        console.print(Text(line, style=style or ""), soft_wrap=True)
