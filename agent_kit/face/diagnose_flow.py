"""The ``diagnose`` flow shared by the CLI and the window: run, rank, write the report, upload."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agent_kit.core.i18n import _
from agent_kit.evaluate.diagnosis import Diagnosis, diagnose_report

if TYPE_CHECKING:
    from agent_kit.run.runner import ProgressFn
    from agent_kit.run.session import PreparedRun


def run_diagnosis(run: PreparedRun, *, progress: ProgressFn | None = None) -> Diagnosis:
    """The full check (same units and policy as ``check``), then the ranking."""
    from agent_kit.run.runner import run_checks

    report = (run_checks(run.units, run.context) if progress is None
              else run_checks(run.units, run.context, progress=progress))
    return diagnose_report(report)


def default_report_path(now: Callable[[], Any] | None = None) -> str:
    """``agent-kit-report-YYYYMMDD-HHMMSS.html`` in the current folder."""
    from datetime import datetime

    stamp = (now or datetime.now)().strftime("%Y%m%d-%H%M%S")
    return f"agent-kit-report-{stamp}.html"


def render_diagnosis_terminal(d: Diagnosis, report_path: str | None, stream: Any = None, *,
                              details: bool = False) -> None:
    """The check table, then the likely cause with its fix, then where the report is."""
    import sys

    from rich.console import Console

    from agent_kit.face.terminal import check_title, render_terminal

    out = stream or sys.stdout
    render_terminal(d.report, out, details=details)
    console = Console(file=out, highlight=False)
    console.print()
    console.print(f"[bold]{_('Why does my call sound bad?')}[/] {d.summary()}")
    titles = {r.id: check_title(r.id) for r in d.report.checks}
    for n, cause in enumerate(d.causes[:3], start=1):
        evidence = ", ".join(titles.get(cid, cid) for cid in cause.evidence)
        console.print(f" {n}. [bold]{cause.title}[/] — "
                      + _("Evidence: {checks}").format(checks=evidence))
        console.print(f"    {cause.advice}")
    if report_path:
        console.print()
        console.print(_("Report: {path}").format(path=report_path))


@dataclass(frozen=True)
class WrittenReport:
    path: str        # absolute path of the HTML file
    html: str


def write_report(d: Diagnosis, path: str | None = None) -> WrittenReport:
    """Render and write the HTML report; ``OSError`` when the folder is not writable."""
    from agent_kit.face.html_report import render_html
    from agent_kit.link.state_folder import load_enrollment

    try:
        enrollment = load_enrollment()
    except ValueError:
        enrollment = None
    html = render_html(d, agent_id=enrollment.agent_id if enrollment else None)
    target = Path(path or default_report_path()).expanduser()
    if target.is_dir():
        target = target / default_report_path()
    target.write_text(html, encoding="utf-8")
    return WrittenReport(path=str(target.resolve()), html=html)


def send_report(d: Diagnosis, written: WrittenReport) -> dict[str, str]:
    """Upload to the enrolled center: {"report_id", "url"} or {"error": plain words}."""
    from agent_kit.link.report_upload import UploadError, upload_report
    from agent_kit.link.state_folder import load_enrollment

    try:
        enrollment = load_enrollment()
    except ValueError as exc:
        return {"error": str(exc)}
    if enrollment is None:
        return {"error": _("this computer is not enrolled with a center: run 'agent-kit "
                           "enroll' first")}
    try:
        result = upload_report(enrollment, written.html)
    except UploadError as exc:
        return {"error": str(exc)}
    return {"report_id": result.report_id, "url": result.url}


def run_diagnose_command(*, center: str | None, policy: str | None, groups: set[str],
                         reflector: tuple[str, int] | None, json_out: bool,
                         report_path: str | None, upload: bool,
                         on_error: Callable[[str], NoReturn], details: bool = False) -> bool:
    """What ``agent-kit diagnose`` does; returns whether the workstation is ready."""
    from agent_kit.face.terminal import terminal_progress, terminal_prompt
    from agent_kit.run.session import prepare_run

    if report_path is not None and not Path(report_path).expanduser().parent.is_dir():
        on_error(f"--report {report_path!r}: no such folder")
    interactive = sys.stdin.isatty() and not json_out
    run = prepare_run(center=center, policy_path=policy, groups=groups, reflector=reflector,
                      interactive=interactive, on_error=on_error,
                      prompt=terminal_prompt if interactive else None)
    diagnosis = run_diagnosis(run, progress=terminal_progress)
    try:
        written = write_report(diagnosis, report_path)
    except OSError as exc:
        on_error(f"cannot write the report: {exc}")
    sent = send_report(diagnosis, written) if upload else None
    if json_out:
        import json

        data = diagnosis.to_json()
        data["report"] = written.path
        if sent is not None:
            data["upload"] = sent
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        render_diagnosis_terminal(diagnosis, written.path, details=details)
        if sent is not None and "url" in sent:
            print(_("Sent to IT: {url}").format(url=sent["url"]))
    if sent is not None and "error" in sent:
        print(f"agent-kit: {_('the report was not sent: {reason}').format(reason=sent['error'])}",
              file=sys.stderr)
    return diagnosis.report.ready
