"""The ``diagnose`` flow shared by the CLI and the window: run, rank, write the report, upload."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from agent_kit.evaluate.diagnosis import Diagnosis, default_report_path
from agent_kit.core.i18n import _


@dataclass(frozen=True)
class WrittenReport:
    path: str        # absolute path of the HTML file
    html: str


def write_report(d: Diagnosis, path: str | None = None) -> WrittenReport:
    """Render and write the HTML report; ``OSError`` when the folder is not writable."""
    from agent_kit.link.state_folder import load_enrollment
    from agent_kit.face.html_report import render_html

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
    from agent_kit.link.state_folder import load_enrollment
    from agent_kit.link.report_upload import UploadError, upload_report

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
                         on_error: Callable[[str], NoReturn]) -> bool:
    """What ``agent-kit diagnose`` does; returns whether the workstation is ready."""
    from agent_kit.evaluate.diagnosis import render_diagnosis_terminal, run_diagnosis
    from agent_kit.run.session import _terminal_progress, prepare_run

    if report_path is not None and not Path(report_path).expanduser().parent.is_dir():
        on_error(f"--report {report_path!r}: no such folder")
    run = prepare_run(center=center, policy_path=policy, groups=groups, reflector=reflector,
                      interactive=sys.stdin.isatty() and not json_out, on_error=on_error)
    diagnosis = run_diagnosis(run, progress=_terminal_progress if sys.stderr.isatty() else None)
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
        render_diagnosis_terminal(diagnosis, written.path)
        if sent is not None and "url" in sent:
            print(_("Sent to IT: {url}").format(url=sent["url"]))
    if sent is not None and "error" in sent:
        print(f"agent-kit: {_('the report was not sent: {reason}').format(reason=sent['error'])}",
              file=sys.stderr)
    return diagnosis.report.ready
