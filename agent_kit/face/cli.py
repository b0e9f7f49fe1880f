"""The ``agent-kit`` command: parses options, calls the runner, renders. Nothing else.

Exit codes (check, diagnose, login, status): 0 ready, 1 not ready, 2 bad usage or input with a
one-line reason on stderr.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
import typer.main

from agent_kit.core.checks import GROUPS

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Is this computer ready to take contact-center calls? Start with "
                  "'agent-kit window' (or 'agent-kit check' in a terminal).",
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
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, metavar="",
                                                is_eager=True, help="Show the version.")]
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


# Help in plain words with a named value (URL, FILE...): typer would show <str>/<bool> tags.
CenterOpt = Annotated[str | None, typer.Option(
    "--center", metavar="URL", help="Your contact center's address (default: the one this "
    "computer was set up with).")]
PolicyOpt = Annotated[str | None, typer.Option(
    "--policy", metavar="FILE", help="A call-standards file from IT, used over the built-in "
    "standards.")]
OnlyOpt = Annotated[str | None, typer.Option(
    # a constant, so it is translated (tests/test_cli.py keeps the names equal to GROUPS)
    "--only", metavar="PARTS", help="Check only these parts, comma-separated: system, vpn, "
    "network, bandwidth, audio.")]
SkipOpt = Annotated[str | None, typer.Option(
    "--skip", metavar="PARTS", help="Leave these parts out (the names of --only).")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", metavar="", help="Print the result as one JSON object, for scripts.")]
DetailsOpt = Annotated[bool, typer.Option(
    "--details", metavar="", help="Show every measurement, not only the steps and what to "
    "fix.")]
ReflectorOpt = Annotated[str | None, typer.Option(
    "--reflector", metavar="HOST:PORT", help="For IT: test the connection to this address "
    "instead of the center's.")]
def _known_language(value: str | None) -> str | None:
    """An explicit --lang must be one we have (the OS locale may fall back to English)."""
    from agent_kit.core.i18n import SUPPORTED

    if value is not None and value.replace("-", "_").split("_")[0].lower() not in SUPPORTED:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SUPPORTED)}")
    return value


LangOpt = Annotated[str | None, typer.Option("--lang", metavar="LANG", help="Language: en, "
                                             "ja, ko, sv (default: the computer's).",
                                             callback=_known_language)]


@app.command()
def check(center: CenterOpt = None, policy: PolicyOpt = None, only: OnlyOpt = None,
          skip: SkipOpt = None, json_out: JsonOpt = False, reflector: ReflectorOpt = None,
          lang: LangOpt = None, details: DetailsOpt = False) -> None:
    """Check this computer, its connection, headset and room against the call standards."""
    from agent_kit.core.i18n import set_language
    from agent_kit.face.microphone_guide import TerminalMicrophoneGuide
    from agent_kit.face.terminal import terminal_progress, terminal_prompt
    from agent_kit.run.session import prepare_run

    set_language(lang)
    groups = parse_groups(only, skip)
    refl = parse_reflector(reflector)
    interactive = sys.stdin.isatty() and not json_out
    run = prepare_run(center=center, policy_path=policy, groups=groups, reflector=refl,
                      interactive=interactive, on_error=fail_usage,
                      prompt=terminal_prompt if interactive else None,
                      microphone=TerminalMicrophoneGuide() if interactive else None)
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
                 "--report", metavar="FILE", help="Where to save the report (default: "
                 "agent-kit-report-<date>.html in the current folder).")] = None,
             upload: Annotated[bool, typer.Option(
                 "--upload", metavar="", help="Send the report to IT (needs the setup with "
                 "your contact center).")] = False,
             ) -> None:
    """Why does my call sound bad? The full check, the likely cause and a report for IT."""
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
           start: Annotated[bool, typer.Option("--start", metavar="", help="Start the check "
                                               "as soon as the window opens.")]
           = False) -> None:
    """The check in a window, what agents use (double-clicking agent-kit opens it)."""
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

            return getpass.getpass(_("Setup code from IT: ")).strip()
        return sys.stdin.readline().strip()
    if not token:
        fail_usage(_("--token-file PATH, --token - (standard input) or --token TOKEN is "
                     "required (or set AGENT_KIT_ENROLL_TOKEN)"))
    return token


@app.command()
def enroll(center: Annotated[str, typer.Option("--center", metavar="URL",
                                               help="Your contact center's address, from IT.")],
           token: Annotated[str | None, typer.Option(
               "--token", envvar="AGENT_KIT_ENROLL_TOKEN", metavar="CODE",
               help="The setup code from IT (used once); '-' asks for it, or reads it from "
               "standard input. Prefer '-' or --token-file: a code typed here is visible to "
               "other programs on this computer.")] = None,
           token_file: Annotated[str | None, typer.Option(
               "--token-file", metavar="FILE", help="Read the setup code from this file "
               "(first line).")] = None,
           name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="Your name "
                                                    "as IT's dashboard shows it.")] = None,
           force: Annotated[bool, typer.Option("--force", metavar="", help="Set up again, "
                                               "replacing the current setup.")] = False) -> None:
    """Set this computer up with your contact center, once, with the setup code from IT."""
    from agent_kit.link.enrollment import EnrollError
    from agent_kit.link.enrollment import enroll as do_enroll

    token = read_token(token, token_file)
    try:
        enrollment = do_enroll(center, token, display_name=name, force=force)
    except EnrollError as exc:
        fail_usage(str(exc))
    from agent_kit.core.i18n import _

    # The check comes next, not the monitor: the service starts the monitor at login, and an
    # agent who has just set up wants to know whether the computer is ready.
    typer.echo(_("Enrolled as {agent} with {center}.").format(agent=enrollment.agent_id,
                                                             center=enrollment.center_url))
    typer.echo(_("Next, check that this computer is ready: agent-kit window (or agent-kit "
                 "check in a terminal)."))


@app.command()
def monitor(interval: Annotated[str | None, typer.Option(
                "--interval", metavar="SECONDS", help="Seconds between reports to the "
                "center (default: the center's, 15).")]
            = None, policy: PolicyOpt = None, only: OnlyOpt = None, skip: SkipOpt = None,
            lang: LangOpt = None,
            verbose: Annotated[bool, typer.Option(
                "--verbose", metavar="", help="For IT: also print the monitor's log (every "
                "measurement and delivery).")] = False) -> None:
    """Keep checking during the shift and report to the contact center (runs as a service)."""
    from agent_kit.core.i18n import set_language
    from agent_kit.face.monitor_command import run_monitor_command

    set_language(lang)
    seconds = parse_seconds(interval, "--interval")
    groups = parse_groups(only, skip) if (only or skip) else None
    raise typer.Exit(run_monitor_command(interval_s=seconds, policy_path=policy,
                                         groups=groups, lang=lang, verbose=verbose))


def parse_seconds(value: str | None, option: str) -> float | None:
    """A number of seconds given on the command line; anything else is one plain line, exit 2
    (typer's own message would be pydantic's)."""
    if value is None:
        return None
    from agent_kit.core.i18n import _

    try:
        return float(value.strip())
    except ValueError:
        fail_usage(_("{option} {value!r} is not a number of seconds (for example: {option} "
                     "15)").format(option=option, value=value))


@app.command()
def status(json_out: JsonOpt = False, lang: LangOpt = None) -> None:
    """Can this computer take calls now, and if not, why? (exit 0 yes, 1 no, 2 unknown)"""
    import json

    from agent_kit.core.i18n import set_language
    from agent_kit.face.login import local_gate, status_json, status_lines

    set_language(lang)
    view = local_gate()
    if json_out:
        typer.echo(json.dumps(status_json(view), ensure_ascii=False))
    else:
        # Exit 2 (not enrolled, no monitor) is a reason, not a state: stderr, as DESIGN says.
        typer.echo("\n".join(status_lines(view)), err=view.code == 2)
    raise typer.Exit(view.code)


@app.command()
def devices(policy: PolicyOpt = None, json_out: JsonOpt = False, lang: LangOpt = None) -> None:
    """The microphones and speakers found, and which ones calls will use."""
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
def login(command: Annotated[list[str], typer.Argument(help="The softphone command and its "
                                                       "arguments, after --.")],
          policy: PolicyOpt = None, lang: LangOpt = None) -> None:
    """Start the softphone (agent-kit login -- COMMAND) only when calls are allowed."""
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


def _no_type(ctx: object = None) -> None:
    return None


def _plain_help_option(command: object) -> None:
    """No ``<bool>`` tag beside ``--help`` in any command's help (typer makes that option
    itself, so its ``metavar`` and its words are set here, where the command tree exists)."""
    from agent_kit.core.i18n import _

    try:
        from typer._click import Context
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import Context  # type: ignore

    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None:
        option = get_help_option(Context(command))  # type: ignore[arg-type]
        if option is not None:
            option.metavar = ""
            option.help = _("Show this message and exit.")
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") == "argument":
            # an argument's type (<list[str]>) is shown whatever its metavar says
            param.display_type_rich = _no_type
    for sub in getattr(command, "commands", {}).values():
        _plain_help_option(sub)


def _help_headings() -> None:
    """The help's panel titles in the reader's language (typer reads them from module
    constants when it draws the help). "Usage:" itself is click's and stays as it is."""
    import typer.rich_utils as rich_utils

    from agent_kit.core.i18n import _

    rich_utils.OPTIONS_PANEL_TITLE = _("Options")
    rich_utils.ARGUMENTS_PANEL_TITLE = _("Arguments")
    rich_utils.COMMANDS_PANEL_TITLE = _("Commands")


def main() -> None:
    """Console-script entry point: a usage error is one line on stderr and exit 2."""
    from typer import Abort

    try:  # typer >= 0.20 vendors click; older releases use click itself
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore

    if len(sys.argv) == 1 and _double_clicked():
        sys.argv.append("window")
    from agent_kit.core.i18n import language_in_argv, set_language, translate_help

    command = typer.main.get_command(app)
    # --help in the language the command line asks for (else the OS locale)
    translate_help(command, set_language(language_in_argv(sys.argv)))
    _plain_help_option(command)
    if len(sys.argv) == 1 or "--help" in sys.argv:   # typer's help draws with rich: only then
        _help_headings()
    try:
        # the same name in the help and the errors however it was started (python -m...)
        code = command.main(prog_name="agent-kit", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        # typer's rich help prints itself while the error is made (its message is then
        # empty); a plain-text help comes back as the message: either way, shown once
        if exc.format_message().strip():
            typer.echo(exc.format_message())
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
