"""The onboarding window (Tk, standard library): the check for people who never use a terminal.

Same run as ``agent-kit check``: ``session.prepare_run`` -> ``runner.run_checks`` -> the
``CheckReport``; only the rendering differs. The check runs in a worker thread; everything it
reports (a unit started or finished, a prompt for the microphone test, the final report) goes
through a queue that Tk's main loop drains every 50 ms, because Tk may only be touched from the
thread that created it.
"""

from __future__ import annotations

import queue
import threading
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any, NoReturn

from agent_kit.core.i18n import N_, _, current_language, set_language
from agent_kit.core.results import CheckReport, CheckResult, Status

# Unit names (probe_units.UNITS) shown as steps; unknown units fall back to their group.
_UNIT_LABEL = {
    "system": N_("Your computer"),
    "link": N_("Cable or Wi-Fi"),
    "vpn": N_("VPN"),
    "path": N_("Connection to the contact center"),
    "network": N_("Connection to the contact center"),
    "bandwidth": N_("Internet speed"),
    "audio": N_("Headset and room"),
    "headset": N_("Headset"),
    "room": N_("Microphone test and room noise"),
}
_GROUP_LABEL = {
    "system": N_("Your computer"),
    "vpn": N_("VPN"),
    "network": N_("Network connection"),
    "bandwidth": N_("Internet speed"),
    "audio": N_("Headset and room"),
}
LANGUAGES = (("en", "English"), ("ja", "日本語"), ("ko", "한국어"), ("sv", "Svenska"))

GREEN, RED, AMBER, GREY, BLUE = "#1b7f3a", "#c62828", "#a86b00", "#6d6d6d", "#0d47a1"
_STATUS_COLOUR = {Status.PASS: GREEN, Status.WARN: AMBER, Status.FAIL: RED,
                  Status.UNKNOWN: GREY}
_SYMBOL = {Status.PASS: "✔", Status.WARN: "!", Status.FAIL: "✘", Status.UNKNOWN: "?"}


class _RunFailed(Exception):
    """prepare_run refused the options (bad policy file, unreachable center...)."""


@dataclass(frozen=True)
class WindowOptions:
    center: str | None = None
    policy: str | None = None
    groups: frozenset[str] = field(default_factory=lambda: frozenset(
        ("system", "vpn", "network", "bandwidth", "audio")))
    reflector: tuple[str, int] | None = None
    report_dir: Path | None = None     # where diagnose reports go (default: Documents or home)


def _worst(results: list[CheckResult]) -> Status:
    if any(r.status is Status.FAIL for r in results):
        return Status.FAIL
    if any(r.status is Status.WARN for r in results):
        return Status.WARN
    if any(r.status is Status.UNKNOWN for r in results):
        return Status.UNKNOWN
    return Status.PASS


def _step_word(status: Status) -> str:
    return {Status.PASS: _("OK"), Status.WARN: _("needs attention"),
            Status.FAIL: _("problem found"), Status.UNKNOWN: _("could not measure")}[status]


def default_report_dir() -> Path:
    docs = Path.home() / "Documents"
    return docs if docs.is_dir() else Path.home()


class OnboardingWindow:
    """The window's widgets and the worker that runs the check; one instance per Tk root."""

    def __init__(self, root: tk.Tk, options: WindowOptions) -> None:
        self.root = root
        self.options = options
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.busy = False
        self.last_report: CheckReport | None = None
        self.last_report_path: str | None = None
        self._last_diagnosis: Any = None
        self._step_rows: dict[str, tuple[ttk.Frame, ttk.Label]] = {}
        root.title("agent-kit")
        root.minsize(720, 560)
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=11)
        self.fonts = {
            "title": tkfont.Font(root=root, family=base.actual("family"), size=18, weight="bold"),
            "verdict": tkfont.Font(root=root, family=base.actual("family"), size=24,
                                   weight="bold"),
            "prompt": tkfont.Font(root=root, family=base.actual("family"), size=16,
                                  weight="bold"),
            "bold": tkfont.Font(root=root, family=base.actual("family"), size=11, weight="bold"),
        }
        style = ttk.Style(root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Horizontal.TProgressbar", background=BLUE, troughcolor="#e4e4e4",
                        thickness=14)
        self.frame = ttk.Frame(root, padding=18)
        self.frame.pack(fill="both", expand=True)
        self._build()
        self._prompting_unit: str | None = None
        self._after_id = root.after(50, self._drain)
        root.bind("<Destroy>", self._on_destroy, add="+")

    def _on_destroy(self, event: tk.Event[tk.Misc]) -> None:
        if event.widget is self.root:
            self.root.after_cancel(self._after_id)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        for child in self.frame.winfo_children():
            child.destroy()
        f = self.frame
        top = ttk.Frame(f)
        top.pack(fill="x")
        self.title = ttk.Label(top, text=_("Is this computer ready for calls?"),
                               font=self.fonts["title"])
        self.title.pack(side="left")
        # A combobox, not an OptionMenu: a tk.StringVar could be garbage-collected from the
        # worker thread, which Tk refuses.
        self.lang_menu = ttk.Combobox(top, state="readonly", width=10,
                                      values=[name for _code, name in LANGUAGES])
        self.lang_menu.set(dict(LANGUAGES)[current_language()])
        self.lang_menu.bind("<<ComboboxSelected>>",
                            lambda _e: self._change_language(self.lang_menu.get()))
        self.lang_menu.pack(side="right")
        self.intro = ttk.Label(f, wraplength=680, justify="left", text=_(
            "This check tests your computer, your connection, the VPN, your internet speed, "
            "your headset and your room. It takes about half a minute. Put your headset on "
            "before you start."))
        self.intro.pack(fill="x", pady=(6, 10))
        self.steps = ttk.Frame(f)
        self.steps.pack(fill="x")
        self.prompt = tk.Label(f, text="", font=self.fonts["prompt"], fg="white", bg=BLUE,
                               wraplength=660, justify="center", padx=12, pady=10)
        self.progress = ttk.Progressbar(f, mode="determinate", maximum=100)
        self.progress.pack(fill="x", pady=(10, 6))
        self.verdict = tk.Label(f, text="", font=self.fonts["verdict"])
        self.verdict.pack(anchor="w")
        self.summary = ttk.Label(f, text="", wraplength=680, justify="left")
        self.summary.pack(fill="x")
        self.problems = ttk.Frame(f)
        self.problems.pack(fill="both", expand=True, pady=(6, 6))
        buttons = ttk.Frame(f)
        buttons.pack(fill="x", side="bottom")
        self.start_button = ttk.Button(buttons, text=_("Start the check"),
                                       command=self.start_check)
        self.start_button.pack(side="left")
        self.diagnose_button = ttk.Button(buttons, text=_("Why does my call sound bad?"),
                                          command=self.start_diagnose)
        self.diagnose_button.pack(side="left", padx=8)
        # Shown once a diagnosis wrote its report, in a row above the main buttons.
        self.report_buttons = ttk.Frame(f)
        self.open_button = ttk.Button(self.report_buttons, text=_("Open the report"),
                                      command=self._open_report)
        self.open_button.pack(side="left")
        self.send_button = ttk.Button(self.report_buttons, text=_("Send the report to IT"),
                                      command=self._send_report)
        self.send_button.pack(side="left", padx=8)
        self._buttons = buttons
        ttk.Button(buttons, text=_("Close"), command=self.root.destroy).pack(side="right")

    def _change_language(self, name: str) -> None:
        if self.busy:
            self.lang_menu.set(dict(LANGUAGES)[current_language()])
            return
        set_language({n: c for c, n in LANGUAGES}[name])
        self.last_report = None
        self._step_rows.clear()
        self._build()

    # ------------------------------------------------------------------ running
    def start_check(self) -> None:
        self._start(diagnose=False)

    def start_diagnose(self) -> None:
        self._start(diagnose=True)

    def _start(self, *, diagnose: bool) -> None:
        if self.busy:
            return
        self.busy = True
        self._set_buttons(enabled=False)
        self.report_buttons.pack_forget()
        self.verdict.configure(text=_("Checking…"), fg=BLUE)
        self.summary.configure(text="")
        for child in self.problems.winfo_children():
            child.destroy()
        for child in self.steps.winfo_children():
            child.destroy()
        self._step_rows.clear()
        self.progress.configure(value=0.0)
        threading.Thread(target=self._work, args=(diagnose,), name="onboarding-check",
                         daemon=True).start()

    def _work(self, diagnose: bool) -> None:
        """Worker thread: never touches Tk, only posts events."""
        from agent_kit.run.session import prepare_run

        def refuse(reason: str) -> NoReturn:
            raise _RunFailed(reason)

        try:
            run = prepare_run(center=self.options.center, policy_path=self.options.policy,
                              groups=set(self.options.groups), reflector=self.options.reflector,
                              interactive=True, on_error=refuse,
                              prompt=self._post_prompt)
            self.events.put(("units", [(u.name, u.group) for u in run.units]))

            def progress(event: str, unit: str, _elapsed: float,
                         results: list[CheckResult] | None) -> None:
                self.events.put((event, (unit, results)))

            if diagnose:
                from agent_kit.face.diagnose_flow import run_diagnosis, write_report

                diagnosis = run_diagnosis(run, progress=progress)
                report_dir = self.options.report_dir or default_report_dir()
                try:
                    written = write_report(diagnosis, str(report_dir))
                    path: str | None = written.path
                except OSError:
                    written, path = None, None
                self.events.put(("diagnosis", (diagnosis, written, path)))
            else:
                from agent_kit.run.runner import run_checks

                self.events.put(("report", run_checks(run.units, run.context,
                                                      progress=progress)))
        except _RunFailed as exc:
            self.events.put(("error", str(exc)))
        except Exception as exc:  # noqa: BLE001 - the window must say something, not vanish
            self.events.put(("error", f"{type(exc).__name__}: {exc}"))

    def _post_prompt(self, text: str) -> None:
        """Called by a probe thread (the runner names it ``probe-<unit>``)."""
        unit = threading.current_thread().name.removeprefix("probe-")
        self.events.put(("prompt", (unit, text)))

    def _drain(self) -> None:
        """Main thread: apply what the worker posted, then look again in 50 ms."""
        try:
            while True:
                kind, payload = self.events.get_nowait()
                self._apply(kind, payload)
        except queue.Empty:
            pass
        if self.root.winfo_exists():
            self._after_id = self.root.after(50, self._drain)

    def _apply(self, kind: str, payload: Any) -> None:
        if kind == "units":
            self._units_total = max(len(payload), 1)
            self._units_done = 0
            for name, group in payload:
                self._add_step(name, group)
        elif kind == "start":
            unit, _results = payload
            self._set_step(unit, _("measuring…"), BLUE)
        elif kind == "done":
            unit, results = payload
            status = _worst(results or [])
            self._set_step(unit, f"{_SYMBOL[status]} {_step_word(status)}",
                           _STATUS_COLOUR[status])
            self._units_done += 1
            self.progress.configure(value=100 * self._units_done / self._units_total)
            if unit == self._prompting_unit:   # its instructions are over
                self._show_prompt("")
        elif kind == "prompt":
            self._prompting_unit, text = payload
            self._show_prompt(str(text))
        elif kind == "report":
            self._finish(payload)
        elif kind == "diagnosis":
            diagnosis, written, path = payload
            self._last_diagnosis = (diagnosis, written)
            self._finish(diagnosis.report, diagnosis=diagnosis, report_path=path)
        elif kind == "error":
            self._show_prompt("")
            self.verdict.configure(text=_("The check could not run"), fg=RED)
            self.summary.configure(text=str(payload))
            self.busy = False
            self._set_buttons(enabled=True)
        elif kind == "sent":
            self._add_line(str(payload), GREEN if not payload.startswith("✘") else RED)
            self.send_button.state(["!disabled"])

    def _add_step(self, name: str, group: str) -> None:
        row = ttk.Frame(self.steps)
        row.pack(fill="x", pady=1)
        label = _(_UNIT_LABEL.get(name) or _GROUP_LABEL.get(group) or name)
        ttk.Label(row, text=label, width=34).pack(side="left")
        state = ttk.Label(row, text=_("waiting"), foreground=GREY)
        state.pack(side="left")
        self._step_rows[name] = (row, state)

    def _set_step(self, unit: str, text: str, colour: str) -> None:
        if unit in self._step_rows:
            self._step_rows[unit][1].configure(text=text, foreground=colour)

    def _show_prompt(self, text: str) -> None:
        if text:
            self.prompt.configure(text=text)
            self.prompt.pack(fill="x", pady=(10, 0), before=self.progress)
        else:
            self.prompt.configure(text="")
            self.prompt.pack_forget()

    # ------------------------------------------------------------------ results
    def _finish(self, report: CheckReport, *, diagnosis: Any = None,
                report_path: str | None = None) -> None:
        from agent_kit.face.terminal import check_title

        self.busy = False
        self.last_report = report
        self.last_report_path = report_path
        self._show_prompt("")
        self.progress.configure(value=100)
        self._set_buttons(enabled=True)
        self.start_button.configure(text=_("Check again"))
        if report.ready:
            text = _("READY (with warnings)") if report.verdict is Status.WARN else _("READY")
            self.verdict.configure(text=text, fg=GREEN)
            self.summary.configure(text=_("You can take calls."))
        else:
            n = sum(1 for r in report.checks if r.blocks)
            self.verdict.configure(text=_("NOT READY"), fg=RED)
            self.summary.configure(text=_(
                "{count} problem(s) must be fixed before you take calls. Do what is written "
                "below, then press “Check again”.").format(count=n))
        if diagnosis is not None:
            self._add_line(diagnosis.summary(), BLUE, bold=True)
            if diagnosis.likely is not None:
                self._add_line(diagnosis.likely.advice, GREEN)
        bad = sorted((r for r in report.checks if r.status in (Status.FAIL, Status.WARN)
                      or (r.status is Status.UNKNOWN and r.blocks)),
                     key=lambda r: (not r.blocks, r.status is not Status.FAIL))
        for r in bad:
            self._add_line(f"{_SYMBOL[r.status]} {check_title(r.id)}: {r.message}",
                           _STATUS_COLOUR[r.status], bold=True)
            if r.fix:   # no-break space: the arrow stays with the first word when wrapped
                self._add_line(f"→\u00a0{r.fix}", "#1b1b1b", indent=22)
        if report_path:
            self._add_line(_("Report saved: {path}").format(path=report_path), GREY)
            self.report_buttons.pack(fill="x", side="bottom", pady=(0, 8), after=self._buttons)

    def _add_line(self, text: str, colour: str, *, bold: bool = False, indent: int = 0) -> None:
        label = ttk.Label(self.problems, text=text, foreground=colour,
                          wraplength=680 - indent, justify="left")
        if bold:
            label.configure(font=self.fonts["bold"])
        label.pack(fill="x", anchor="w", padx=(indent, 0), pady=(0, 2))

    def _set_buttons(self, *, enabled: bool) -> None:
        flag = "!disabled" if enabled else "disabled"
        for button in (self.start_button, self.diagnose_button):
            button.state([flag])
        self.lang_menu.configure(state="readonly" if enabled else "disabled")

    def _open_report(self) -> None:
        if self.last_report_path:
            import webbrowser

            webbrowser.open(Path(self.last_report_path).as_uri())

    def _send_report(self) -> None:
        if self._last_diagnosis is None or self._last_diagnosis[1] is None:
            return
        self.send_button.state(["disabled"])
        diagnosis, written = self._last_diagnosis

        def work() -> None:
            from agent_kit.face.diagnose_flow import send_report

            sent = send_report(diagnosis, written)
            self.events.put(("sent", _("Sent to IT: {url}").format(url=sent["url"])
                             if "url" in sent else "✘ " + _(
                                 "the report was not sent: {reason}").format(
                                 reason=sent.get("error", ""))))

        threading.Thread(target=work, name="report-upload", daemon=True).start()


def widget_texts(widget: tk.Misc) -> list[str]:
    """Every non-empty text shown in a widget tree, in layout order (tests and screen readers)."""
    texts: list[str] = []
    try:
        text = str(widget.cget("text"))
    except tk.TclError:
        text = ""
    if text and widget.winfo_ismapped():
        texts.append(text)
    for child in widget.winfo_children():
        texts += widget_texts(child)
    return texts


def run_window(options: WindowOptions, *, autostart: bool = False,
               make_root: Callable[[], tk.Tk] = tk.Tk) -> int:
    """Open the window and run until it is closed: 0 when the last check said ready, else 1."""
    root = make_root()
    window = OnboardingWindow(root, options)
    if autostart:
        root.after(200, window.start_check)
    root.mainloop()
    return 0 if window.last_report is not None and window.last_report.ready else 1
