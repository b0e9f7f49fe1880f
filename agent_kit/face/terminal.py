"""Show a ``CheckReport``: a terminal table with colours and fixes, or the contract's JSON."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from agent_kit.core.checks import BY_ID, unit_title
from agent_kit.core.i18n import M_, _, render
from agent_kit.core.policy import policy_title
from agent_kit.core.results import (
    CheckReport,
    CheckResult,
    Status,
    number_text,
    unit_text,
    value_text,
)

_SYMBOL = {Status.PASS: "✔", Status.WARN: "!", Status.FAIL: "✘", Status.UNKNOWN: "?"}
_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
          Status.UNKNOWN: "magenta"}


def terminal_progress(event: str, unit: str, elapsed: float,
                      results: list[CheckResult] | None) -> None:
    """The runner's progress on stderr: a line when a unit starts and when it is done."""
    if event == "start":
        print("  … " + _("measuring {unit}").format(unit=_(unit_title(unit))), file=sys.stderr,
              flush=True)
    else:
        print("  ✓ " + render(M_("{unit} done ({seconds:.1f} s)", unit=M_(unit_title(unit)),
                                 seconds=elapsed)), file=sys.stderr, flush=True)


def terminal_prompt(text: str) -> None:
    """An instruction of the microphone test, set apart on stderr."""
    print(f"\n>>> {text}\n", file=sys.stderr, flush=True)


def report_json(report: CheckReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


def format_value(result: CheckResult) -> str:
    v = result.value
    if v is None:
        return "—"
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    # the reader's decimal sign ("77,7" in Swedish); a state's word in the reader's language
    text = number_text(v) if isinstance(v, int | float) else value_text(v)
    return f"{text} {unit_text(result.unit)}" if result.unit and not isinstance(v, str) else text


def check_title(check_id: str) -> str:
    """The check's human title in the current language."""
    return _(BY_ID[check_id].title) if check_id in BY_ID else check_id


def render_terminal(report: CheckReport, stream: TextIO | None = None) -> None:
    """A table, one line per check, then the fixes, then READY / NOT READY."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout, highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("")
    table.add_column(_("check"))
    table.add_column(_("value"), justify="right")
    table.add_column(_("what we found"))
    for r in report.checks:
        title = check_title(r.id)
        table.add_row(f"[{_STYLE[r.status]}]{_SYMBOL[r.status]}[/]", title, format_value(r),
                      r.message)
    console.print(table)
    fixes = [r for r in report.checks if r.fix and r.status is not Status.PASS]
    if fixes:
        console.print()
        console.print(f"[bold]{_('What to do:')}[/]")
        # One item per distinct fix: six room checks that cannot record share one action.
        grouped: dict[tuple[bool, str], list[CheckResult]] = {}
        for r in sorted(fixes, key=lambda r: not r.blocks):
            grouped.setdefault((r.blocks, r.fix or ""), []).append(r)
        for n, ((blocks, fix), same) in enumerate(grouped.items(), start=1):
            blocking = f" [bold red]({_('blocks login')})[/]" if blocks else ""
            titles = ", ".join(check_title(r.id) for r in same)
            console.print(f" {n}. {titles}{blocking}: {fix}")
    console.print()
    if report.ready:
        headline = _("READY (with warnings)") if report.verdict is Status.WARN else _("READY")
        console.print(f"[bold green]{headline}[/] — " + _(
            "policy {name} {version}, {seconds:.1f} s").format(
            name=policy_title(report.policy_name), version=report.policy_version,
            seconds=report.duration_s))
    else:
        n = sum(1 for r in report.checks if r.blocks)
        console.print(f"[bold red]{_('NOT READY')}[/] — " + _(
            "{count} problem(s) must be fixed before you take calls (policy {name} "
            "{version})").format(count=n, name=policy_title(report.policy_name),
                                 version=report.policy_version))
