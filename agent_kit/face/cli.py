"""The ``agent-kit`` command: parses options, calls the runner, renders. Nothing else.

Exit codes (check, diagnose, login, status): 0 ready, 1 not ready, 2 bad usage or input with a
one-line reason on stderr.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from agent_kit.core.checks import GROUPS

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Verify a contact-center agent's home workstation.",
                  pretty_exceptions_enable=False)


def fail_usage(reason: str) -> NoReturn:
    """One line on stderr, exit 2."""
    typer.echo(f"agent-kit: {reason}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _version(value: bool) -> None:
    if value:
        from agent_kit.core.build_info import version_line  # + commit and build date when frozen

        typer.echo(version_line())
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version,
                                                is_eager=True, help="Print the version.")]
          = False) -> None:
    """agent-kit: is this workstation ready to take calls?"""


def parse_groups(only: str | None, skip: str | None) -> set[str]:
    def names(value: str, option: str) -> set[str]:
        items = {g.strip() for g in value.split(",") if g.strip()}
        bad = sorted(items - set(GROUPS))
        if bad or not items:
            fail_usage(f"{option}: unknown group {', '.join(bad) or repr(value)} "
                       f"(groups: {', '.join(GROUPS)})")
        return items

    if only and skip:
        fail_usage("--only and --skip cannot be used together")
    selected = names(only, "--only") if only else set(GROUPS)
    if skip:
        selected -= names(skip, "--skip")
    if not selected:
        fail_usage("--skip leaves no group to check")
    return selected


def parse_reflector(value: str | None) -> tuple[str, int] | None:
    from agent_kit.core.wire.addresses import parse_host_port

    if value is None:
        return None
    try:
        return parse_host_port(value)
    except ValueError as exc:
        fail_usage(f"--reflector {exc}")


CenterOpt = Annotated[str | None, typer.Option("--center", help="Center URL (default: the one "
                                               "this workstation enrolled with).")]
PolicyOpt = Annotated[str | None, typer.Option("--policy", help="Call-standards TOML file "
                                               "merged over the default policy.")]
OnlyOpt = Annotated[str | None, typer.Option("--only", help=f"Only these groups "
                                             f"({','.join(GROUPS)}).")]
SkipOpt = Annotated[str | None, typer.Option("--skip", help="Skip these groups.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DetailsOpt = Annotated[bool, typer.Option("--details", help="Show every measurement, not only "
                                          "the steps and what to fix.")]
ReflectorOpt = Annotated[str | None, typer.Option("--reflector", help="Path-test target "
                                                  "HOST:PORT instead of the center's.")]
def _known_language(value: str | None) -> str | None:
    """An explicit --lang must be one we have (the OS locale may fall back to English)."""
    from agent_kit.core.i18n import SUPPORTED

    if value is not None and value.replace("-", "_").split("_")[0].lower() not in SUPPORTED:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SUPPORTED)}")
    return value


LangOpt = Annotated[str | None, typer.Option("--lang", help="Language of messages: en, ja, "
                                             "ko, sv (default: the OS locale).",
                                             callback=_known_language)]


@app.command()
def check(center: CenterOpt = None, policy: PolicyOpt = None, only: OnlyOpt = None,
          skip: SkipOpt = None, json_out: JsonOpt = False, reflector: ReflectorOpt = None,
          lang: LangOpt = None, details: DetailsOpt = False) -> None:
    """Onboarding check: every probe group, judged against the call standards."""
    from agent_kit.core.i18n import set_language
    from agent_kit.face.terminal import terminal_progress, terminal_prompt
    from agent_kit.run.session import prepare_run

    set_language(lang)
    groups = parse_groups(only, skip)
    refl = parse_reflector(reflector)
    interactive = sys.stdin.isatty() and not json_out
    run = prepare_run(center=center, policy_path=policy, groups=groups, reflector=refl,
                      interactive=interactive, on_error=fail_usage,
                      prompt=terminal_prompt if interactive else None)
    report = run.execute(progress=terminal_progress)
    if json_out:
        from agent_kit.face.terminal import report_json

        typer.echo(report_json(report))
    else:
        from agent_kit.face.terminal import render_terminal

        render_terminal(report, details=details)
    raise typer.Exit(EXIT_READY if report.ready else EXIT_NOT_READY)


@app.command()
def diagnose(center: CenterOpt = None, policy: PolicyOpt = None, only: OnlyOpt = None,
             skip: SkipOpt = None, json_out: JsonOpt = False, reflector: ReflectorOpt = None,
             lang: LangOpt = None, details: DetailsOpt = False,
             report: Annotated[str | None, typer.Option(
                 "--report", help="Where to write the HTML report (default: "
                 "agent-kit-report-<date>.html in the current folder).")] = None,
             upload: Annotated[bool, typer.Option(
                 "--upload", help="Send the report to the center (needs enrollment).")] = False,
             ) -> None:
    """Why does my call sound bad? The full check, the likely cause, an HTML report."""
    from agent_kit.core.i18n import set_language
    from agent_kit.face.diagnose_flow import run_diagnose_command

    set_language(lang)
    groups = parse_groups(only, skip)
    refl = parse_reflector(reflector)
    ready = run_diagnose_command(center=center, policy=policy, groups=groups, reflector=refl,
                                 json_out=json_out, report_path=report, upload=upload,
                                 on_error=fail_usage, details=details)
    raise typer.Exit(EXIT_READY if ready else EXIT_NOT_READY)


@app.command()
def window(center: CenterOpt = None, policy: PolicyOpt = None, only: OnlyOpt = None,
           skip: SkipOpt = None, reflector: ReflectorOpt = None, lang: LangOpt = None,
           start: Annotated[bool, typer.Option("--start", help="Start the check at once.")]
           = False) -> None:
    """The onboarding window (what double-clicking agent-kit opens)."""
    from agent_kit.core.i18n import set_language

    set_language(lang)
    groups = parse_groups(only, skip)
    refl = parse_reflector(reflector)
    try:
        import tkinter

        from agent_kit.face.window import WindowOptions, run_window
    except ImportError as exc:
        fail_usage(f"cannot open a window: {exc}")
    try:
        code = run_window(WindowOptions(center=center, policy=policy, groups=frozenset(groups),
                                        reflector=refl), autostart=start)
    except tkinter.TclError as exc:
        fail_usage(f"cannot open a window: {exc}")
    raise typer.Exit(code)


def read_token(token: str | None, token_file: str | None) -> str:
    """The enrollment token from ``--token-file PATH``, ``--token -`` (standard input, first
    line) or ``--token VALUE``: the first two keep it out of the process list and the shell's
    history, where any local user could read it while it is valid."""
    from agent_kit.core.i18n import _

    if token_file is not None:   # before --token (which $AGENT_KIT_ENROLL_TOKEN may fill)
        try:
            with open(token_file, encoding="utf-8") as fh:
                return fh.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail_usage(_("cannot read the enrollment token from {path} ({error})").format(
                path=token_file, error=getattr(exc, "strerror", None) or exc))
    if token == "-":
        if sys.stdin is None:
            fail_usage(_("--token -: there is no standard input to read the token from"))
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass(_("Enrollment token: ")).strip()
        return sys.stdin.readline().strip()
    if not token:
        fail_usage(_("--token-file PATH, --token - (standard input) or --token TOKEN is "
                     "required (or set AGENT_KIT_ENROLL_TOKEN)"))
    return token


@app.command()
def enroll(center: Annotated[str, typer.Option("--center", help="The center's URL.")],
           token: Annotated[str | None, typer.Option(
               "--token", envvar="AGENT_KIT_ENROLL_TOKEN",
               help="One-time enrollment token from IT; '-' reads it from standard input "
               "(or $AGENT_KIT_ENROLL_TOKEN). Prefer --token-file or '-': a value given here "
               "is visible in the process list.")] = None,
           token_file: Annotated[str | None, typer.Option(
               "--token-file", help="Read the enrollment token from this file (first "
               "line).")] = None,
           name: Annotated[str | None, typer.Option("--name", help="Display name for IT's "
                                                    "dashboard.")] = None,
           force: Annotated[bool, typer.Option("--force", help="Replace an existing "
                                               "enrollment.")] = False) -> None:
    """One-time enrollment of this workstation with its center."""
    from agent_kit.link.enrollment import EnrollError
    from agent_kit.link.enrollment import enroll as do_enroll

    token = read_token(token, token_file)
    try:
        enrollment = do_enroll(center, token, display_name=name, force=force)
    except EnrollError as exc:
        fail_usage(str(exc))
    from agent_kit.core.i18n import _

    typer.echo(_("Enrolled as {agent} with {center}. Now run: agent-kit monitor").format(
        agent=enrollment.agent_id, center=enrollment.center_url))


@app.command()
def monitor(interval: Annotated[float | None, typer.Option(
                "--interval", help="Seconds between heartbeats (default: the center's, 15).")]
            = None, policy: PolicyOpt = None, only: OnlyOpt = None, skip: SkipOpt = None,
            lang: LangOpt = None) -> None:
    """The probe loop of a shift: keeps measuring, keeps the gate, sends heartbeats."""
    from agent_kit.core.i18n import set_language
    from agent_kit.face.monitor_command import run_monitor_command

    set_language(lang)
    groups = parse_groups(only, skip) if (only or skip) else None
    raise typer.Exit(run_monitor_command(interval_s=interval, policy_path=policy,
                                         groups=groups, lang=lang))


@app.command()
def status(json_out: JsonOpt = False, lang: LangOpt = None) -> None:
    """The gate now and why: exit 0 open, 1 closed, 2 not enrolled or no monitor running."""
    import json

    from agent_kit.core.i18n import set_language
    from agent_kit.face.login import local_gate, render_lines, status_json

    set_language(lang)
    view = local_gate()
    if json_out:
        typer.echo(json.dumps(status_json(view), ensure_ascii=False))
    else:
        # Exit 2 (not enrolled, no monitor) is a reason, not a state: stderr, as DESIGN says.
        typer.echo("\n".join(render_lines(view.headline, view.reasons, view.notes)),
                   err=view.code == 2)
    raise typer.Exit(view.code)


@app.command()
def devices(policy: PolicyOpt = None, json_out: JsonOpt = False, lang: LangOpt = None) -> None:
    """Audio devices found, each classified, with the ones calls will use."""
    import json

    from agent_kit.core.i18n import set_language
    from agent_kit.core.policy import PolicyError, load_policy
    from agent_kit.face.devices import inventory_json, render_lines
    from probes.audio.devices import list_audio_devices

    set_language(lang)
    try:
        rules = load_policy(policy)
    except PolicyError as exc:
        fail_usage(f"invalid policy: {exc}")
    inventory = list_audio_devices()
    if json_out:
        typer.echo(json.dumps(inventory_json(inventory, rules), ensure_ascii=False))
    else:
        typer.echo("\n".join(render_lines(inventory, rules)))


@app.command(context_settings={"allow_interspersed_args": False})
def login(command: Annotated[list[str], typer.Argument(help="The softphone command, after --.")],
          policy: PolicyOpt = None, lang: LangOpt = None) -> None:
    """Start the softphone (agent-kit login -- CMD ARGS) only when the gate is open."""
    from agent_kit.core.i18n import set_language
    from agent_kit.core.policy import PolicyError
    from agent_kit.face.login import (
        center_unreachable_rule,
        decide_login,
        render_lines,
        start_command,
    )

    set_language(lang)
    try:
        rule = center_unreachable_rule(policy)
    except PolicyError as exc:
        fail_usage(f"invalid policy: {exc}")
    decision = decide_login(center_unreachable=rule)
    typer.echo("\n".join(render_lines(decision.headline, decision.reasons, decision.notes)),
               err=True)
    if not decision.allowed:
        raise typer.Exit(decision.code)
    try:
        start_command(command)
    except ValueError as exc:
        fail_usage(str(exc))


def _double_clicked() -> bool:
    """No arguments, no terminal, and a screen: started from a file manager or the desktop."""
    from agent_kit.face.graphical_session import has_graphical_session

    if sys.stdin is not None and sys.stdin.isatty():
        return False
    return has_graphical_session()


def main() -> None:
    """Console-script entry point: a usage error is one line on stderr and exit 2."""
    from typer import Abort

    try:  # typer >= 0.20 vendors click; older releases use click itself
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore

    if len(sys.argv) == 1 and _double_clicked():
        sys.argv.append("window")
    from typer.main import get_command

    from agent_kit.core.i18n import language_in_argv, set_language, translate_help

    command = get_command(app)
    # --help in the language the command line asks for (else the OS locale)
    translate_help(command, set_language(language_in_argv(sys.argv)))
    try:
        code = command(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else "agent-kit --help")
        sys.exit(0)
    except UsageError as exc:
        hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"agent-kit: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except Abort:
        typer.echo("agent-kit: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
