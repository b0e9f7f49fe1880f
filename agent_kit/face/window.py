"""The onboarding window (Tk, standard library): the check for people who never use a terminal.

Same run as ``agent-kit check``: ``session.prepare_run`` -> ``runner.run_checks`` -> the
``CheckReport``; only the rendering differs. The check runs in a worker thread; everything it
reports (a unit started or finished, a step of the microphone test, the final report) goes
through a queue that Tk's main loop drains every 50 ms, because Tk may only be touched from the
thread that created it.

The window has one size for the whole run (it fits a 1366x768 or 1280x800 screen with its task
bar): the problem list scrolls inside it and the buttons stay pinned at the bottom, so neither a
long list nor a wrapping prompt can push "Check again" and "Close" off the screen. A workstation
that is not enrolled says so once, at the top, with a field for the setup code IT gives.
"""

from __future__ import annotations

import queue
import threading
import tkinter as tk
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any, NoReturn

from agent_kit.core.i18n import _, current_language, set_language
from agent_kit.core.results import CheckReport, CheckResult, Status
from agent_kit.face.check_steps import step_label, worst
from agent_kit.face.microphone_panel import MicrophonePanel
from agent_kit.face.scrolled_frame import ScrolledFrame
from agent_kit.run.microphone_step import MicrophoneInUse

LANGUAGES = (("en", "English"), ("ja", "日本語"), ("ko", "한국어"), ("sv", "Svenska"))

GREEN, RED, AMBER, GREY, BLUE = "#1b7f3a", "#c62828", "#a86b00", "#6d6d6d", "#0d47a1"
_STATUS_COLOUR = {Status.PASS: GREEN, Status.WARN: AMBER, Status.FAIL: RED,
                  Status.UNKNOWN: GREY}
_SYMBOL = {Status.PASS: "✔", Status.WARN: "!", Status.FAIL: "✘", Status.UNKNOWN: "?"}
LIST_BG = "#ffffff"
SETUP_BG = "#fff4e0"
_WRAP_SLACK_PX = 4
# label -> (the text it shows, with the window's line breaks; the sentence as written)
_SENTENCES: weakref.WeakKeyDictionary[tk.Misc, tuple[str, str]] = weakref.WeakKeyDictionary()

# The window's one size. 1366x768 laptops are the smallest common screen: 768 px minus a task
# bar (40-48 px) and a title bar (about 30 px) leaves about 690 px.
WINDOW_WIDTH, WINDOW_HEIGHT = 860, 640
SCREEN_RESERVED = (40, 128)   # px of a screen the window leaves free: borders, task bar, title


def window_size(screen_width: int, screen_height: int) -> tuple[int, int]:
    """The window's size on a screen of this size: the design size, smaller on tiny screens."""
    return (min(WINDOW_WIDTH, screen_width - SCREEN_RESERVED[0]),
            min(WINDOW_HEIGHT, screen_height - SCREEN_RESERVED[1]))


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


def _step_word(status: Status) -> str:
    # "not measured", the report's word (check_steps.step_word says "could not measure")
    return {Status.PASS: _("OK"), Status.WARN: _("needs attention"),
            Status.FAIL: _("problem found"), Status.UNKNOWN: _("not measured")}[status]


def default_report_dir() -> Path:
    docs = Path.home() / "Documents"
    return docs if docs.is_dir() else Path.home()


def _collect_on_tk_thread() -> None:
    """Collect cyclic garbage now, on Tk's thread. Tk objects with a finaliser (fonts, images,
    variables) that the cyclic collector frees on a worker thread make Tcl abort the process;
    collecting here before a worker starts leaves it nothing of Tk's to collect."""
    import gc

    gc.collect()


def _is_enrolled() -> bool:
    from agent_kit.link.state_folder import load_enrollment

    try:
        return load_enrollment() is not None
    except ValueError:   # unreadable: enrolling again is the fix, so offer the field
        return False


class _WindowGuide:
    """The run layer's ``MicrophoneGuide`` for the window: probe threads post, Tk applies."""

    def __init__(self, events: queue.Queue[tuple[str, Any]]) -> None:
        self.events = events
        self.go = threading.Event()
        self.level_dbfs: float | None = None   # newest level; read by the main thread

    def ready(self, microphone: MicrophoneInUse, timeout_s: float) -> bool:
        self.go.clear()
        self.events.put(("mic-ready", microphone))
        return self.go.wait(timeout_s)

    def phase(self, text: str, seconds: float) -> None:
        self.events.put(("mic-phase", (text, seconds)))

    def level(self, dbfs: float) -> None:
        self.level_dbfs = dbfs   # a float assignment: no lock needed, only the newest counts

    def finished(self) -> None:
        self.events.put(("mic-done", None))


class OnboardingWindow:
    """The window's widgets and the worker that runs the check; one instance per Tk root."""

    def __init__(self, root: tk.Tk, options: WindowOptions) -> None:
        self.root = root
        self.options = options
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.busy = False
        self.enrolling = False
        self.last_report: CheckReport | None = None
        self.last_report_path: str | None = None
        self._last_diagnosis: Any = None
        self._step_rows: dict[str, tuple[ttk.Label, ttk.Label]] = {}
        self._guide = _WindowGuide(self.events)
        self._mic_active = False
        root.title("agent-kit")
        width, height = window_size(root.winfo_screenwidth(), root.winfo_screenheight())
        # An explicit geometry: Tk then never resizes the window to its content, so a longer
        # list or a wrapping prompt cannot make it grow past the screen.
        root.geometry(f"{width}x{height}")
        root.minsize(min(width, 640), min(height, 480))
        self.wrap = width - 2 * 16 - 24     # label width inside the padding and the scrollbar
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=11)
        family = base.actual("family")
        self.fonts = {
            "title": tkfont.Font(root=root, family=family, size=17, weight="bold"),
            "verdict": tkfont.Font(root=root, family=family, size=20, weight="bold"),
            "prompt": tkfont.Font(root=root, family=family, size=14, weight="bold"),
            "bold": tkfont.Font(root=root, family=family, size=11, weight="bold"),
        }
        style = ttk.Style(root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Horizontal.TProgressbar", background=BLUE, troughcolor="#e4e4e4",
                        thickness=12)
        self.frame = ttk.Frame(root, padding=16)
        self.frame.pack(fill="both", expand=True)
        self._build()
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
        f.columnconfigure(0, weight=1)
        top = ttk.Frame(f)
        top.grid(row=0, column=0, sticky="ew")
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
        self.setup = tk.Frame(f, background=SETUP_BG, padx=10, pady=8)
        self._build_setup(self.setup)
        if not _is_enrolled():
            self.setup.grid(row=1, column=0, sticky="ew", pady=(8, 0))
        self.intro = ttk.Label(f, justify="left")
        self._set_wrapped(self.intro, _(
            "This check tests your computer, your connection, the VPN, your internet speed, "
            "your headset and your room. It takes about half a minute. Put your headset on "
            "before you start."), self.wrap)
        self.intro.grid(row=2, column=0, sticky="ew", pady=(8, 6))
        self.steps = ttk.Frame(f)
        self.steps.grid(row=3, column=0, sticky="ew")
        self.steps.columnconfigure((1, 3), weight=1)   # titles take what they need
        self.progress = ttk.Progressbar(f, mode="determinate", maximum=100)
        self.progress.grid(row=4, column=0, sticky="ew", pady=(8, 4))
        self.verdict = tk.Label(f, text="", font=self.fonts["verdict"])
        self.verdict.grid(row=5, column=0, sticky="w")
        self.summary = ttk.Label(f, text="", justify="left")
        self.summary.grid(row=6, column=0, sticky="ew")
        # Row 7 takes whatever height is left: the problem list, or the microphone step.
        f.rowconfigure(7, weight=1)
        self.problem_list = ScrolledFrame(f, background=LIST_BG)
        self.problem_list.grid(row=7, column=0, sticky="nsew", pady=(6, 6))
        self.problems = self.problem_list.inner
        self.mic_panel = MicrophonePanel(f, fonts=self.fonts, on_ready=self._microphone_ready,
                                         wrap=self.wrap - 30)
        self.prompt = self.mic_panel.prompt
        # Shown once a diagnosis wrote its report, in a row above the main buttons.
        self.report_buttons = ttk.Frame(f)
        self.open_button = ttk.Button(self.report_buttons, text=_("Open the report"),
                                      command=self._open_report)
        self.open_button.pack(side="left")
        self.send_button = ttk.Button(self.report_buttons, text=_("Send the report to IT"),
                                      command=self._send_report)
        self.send_button.pack(side="left", padx=8)
        buttons = ttk.Frame(f)
        buttons.grid(row=9, column=0, sticky="ew")
        self.start_button = ttk.Button(buttons, text=_("Start the check"),
                                       command=self.start_check)
        self.start_button.pack(side="left")
        self.diagnose_button = ttk.Button(buttons, text=_("Why does my call sound bad?"),
                                          command=self.start_diagnose)
        self.diagnose_button.pack(side="left", padx=8)
        self.close_button = ttk.Button(buttons, text=_("Close"), command=self.root.destroy)
        self.close_button.pack(side="right")
        self._buttons = buttons

    def _build_setup(self, box: tk.Frame) -> None:
        """Not enrolled: say so once, and take the setup code IT gives (``agent-kit enroll``)."""
        self.setup_text = tk.Label(box, background=SETUP_BG, justify="left", anchor="w",
                                   font=self.fonts["bold"])
        self._set_wrapped(self.setup_text, _(
            "This computer is not set up yet, so the connection and the internet speed cannot "
            "be checked. Ask IT for your setup code and enter it here."), self.wrap - 20,
            font=self.fonts["bold"])
        self.setup_text.pack(fill="x")
        row = tk.Frame(box, background=SETUP_BG)
        row.pack(fill="x", pady=(6, 0))
        # The button first, on the right: the entries shrink, the button never does.
        self.enroll_button = ttk.Button(row, text=_("Set up"), command=self.start_enroll)
        self.enroll_button.pack(side="right")
        self.center_entry: ttk.Entry | None = None
        if self.options.center is None:   # nobody told the window where the center is
            tk.Label(row, text=_("Center address"), background=SETUP_BG).pack(side="left")
            self.center_entry = ttk.Entry(row, width=24)
            self.center_entry.pack(side="left", padx=(6, 12))
        tk.Label(row, text=_("Setup code"), background=SETUP_BG).pack(side="left")
        self.code_entry = ttk.Entry(row, width=20)
        self.code_entry.pack(side="left", padx=(6, 8), fill="x", expand=True)
        self.code_entry.bind("<Return>", lambda _e: self.start_enroll())
        self.setup_error = tk.Label(box, text="", background=SETUP_BG, foreground=RED,
                                    justify="left", anchor="w")

    def _change_language(self, name: str) -> None:
        if self.busy or self.enrolling:
            self.lang_menu.set(dict(LANGUAGES)[current_language()])
            return
        set_language({n: c for c, n in LANGUAGES}[name])
        self.last_report = None
        self._step_rows.clear()
        self._build()

    # ------------------------------------------------------------------ enrolling
    def start_enroll(self) -> None:
        """Enroll with the setup code (the same code and call as ``agent-kit enroll``)."""
        if self.busy or self.enrolling:
            return
        code = self.code_entry.get().strip()
        center = (self.center_entry.get().strip() if self.center_entry is not None
                  else self.options.center or "")
        if not center:
            self._setup_failed(_("Enter the center address IT gave you."))
            return
        if not code:
            self._setup_failed(_("Enter the setup code IT gave you."))
            return
        self.enrolling = True
        _collect_on_tk_thread()
        self.enroll_button.state(["disabled"])
        self._set_buttons(enabled=False)
        self.setup_error.configure(foreground=BLUE)
        self._set_wrapped(self.setup_error, _("Setting up…"), self.wrap - 20)
        self.setup_error.pack(fill="x", pady=(4, 0))

        def work() -> None:
            from agent_kit.link.enrollment import EnrollError, enroll

            try:
                enroll(center, code)
            except EnrollError as exc:
                self.events.put(("enroll-failed", str(exc)))
            except Exception as exc:  # noqa: BLE001 - the window must say something
                self.events.put(("enroll-failed", f"{type(exc).__name__}: {exc}"))
            else:
                self.events.put(("enrolled", None))

        threading.Thread(target=work, name="enroll", daemon=True).start()

    def _setup_failed(self, text: str) -> None:
        self.setup_error.configure(foreground=RED)
        self._set_wrapped(self.setup_error, text, self.wrap - 20)
        self.setup_error.pack(fill="x", pady=(4, 0))

    # ------------------------------------------------------------------ running
    def start_check(self) -> None:
        self._start(diagnose=False)

    def start_diagnose(self) -> None:
        self._start(diagnose=True)

    def _start(self, *, diagnose: bool) -> None:
        if self.busy or self.enrolling:
            return
        self.busy = True
        self._set_buttons(enabled=False)
        self.report_buttons.grid_remove()
        # What the intro says matters before the start; its lines go to the list now.
        self.intro.grid_remove()
        self.verdict.configure(text=_("Checking…"), fg=BLUE)
        self.summary.configure(text="")
        self.problem_list.clear()
        for child in self.steps.winfo_children():
            child.destroy()
        self._step_rows.clear()
        self.progress.configure(value=0.0)
        _collect_on_tk_thread()
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
                              prompt=self._post_prompt, microphone=self._guide)
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
        """Called by a probe thread when the guide is not used (plain instructions)."""
        self.events.put(("mic-phase", (text, 0.0)))

    def _microphone_ready(self) -> None:
        """The person pressed "Start the microphone test"."""
        self.mic_panel.pressed()
        self._guide.go.set()

    def _drain(self) -> None:
        """Main thread: apply what the worker posted, then look again in 50 ms."""
        try:
            while True:
                kind, payload = self.events.get_nowait()
                self._apply(kind, payload)
        except queue.Empty:
            pass
        if self._mic_active:
            self.mic_panel.tick(self._guide.level_dbfs)
        if self.root.winfo_exists():
            self._after_id = self.root.after(50, self._drain)

    def _apply(self, kind: str, payload: Any) -> None:
        if kind == "units":
            self._units_total = max(len(payload), 1)
            self._units_done = 0
            for index, (name, group) in enumerate(payload):
                self._add_step(index, name, group)
        elif kind == "start":
            unit, _results = payload
            self._set_step(unit, _("measuring…"), BLUE)
        elif kind == "done":
            unit, results = payload
            status = worst(results or [])
            self._set_step(unit, f"{_SYMBOL[status]} {_step_word(status)}",
                           _STATUS_COLOUR[status])
            self._units_done += 1
            self.progress.configure(value=100 * self._units_done / self._units_total)
        elif kind == "mic-ready":
            self._show_microphone(True)
            self.mic_panel.ask_ready(payload)
        elif kind == "mic-phase":
            text, seconds = payload
            self._show_microphone(True)
            self._guide.level_dbfs = None
            self.mic_panel.start_phase(str(text), float(seconds))
        elif kind == "mic-done":
            self._show_microphone(False)
        elif kind == "report":
            self._finish(payload)
        elif kind == "diagnosis":
            diagnosis, written, path = payload
            self._last_diagnosis = (diagnosis, written)
            self._finish(diagnosis.report, diagnosis=diagnosis, report_path=path)
        elif kind == "error":
            self._show_microphone(False)
            self.verdict.configure(text=_("The check could not run"), fg=RED)
            self._set_wrapped(self.summary, str(payload), self.wrap)
            self.busy = False
            self._set_buttons(enabled=True)
        elif kind == "sent":
            text, ok = payload
            self._add_line(str(text), GREEN if ok else RED)
            self.send_button.state(["!disabled"])
        elif kind == "enrolled":
            self.enrolling = False
            self.setup.grid_remove()
            self._set_buttons(enabled=True)
            self.start_check()   # what the agent came for: the check, now with the center
        elif kind == "enroll-failed":
            self.enrolling = False
            self.enroll_button.state(["!disabled"])
            self._set_buttons(enabled=True)
            self._setup_failed(str(payload))

    def _show_microphone(self, shown: bool) -> None:
        """The microphone step takes the problem list's place while it runs."""
        if shown and not self._mic_active:
            self.problem_list.grid_remove()
            self.mic_panel.grid(row=7, column=0, sticky="nsew", pady=(6, 6))
        elif not shown and self._mic_active:
            self.mic_panel.grid_remove()
            self.mic_panel.prompt.pack_forget()
            self.problem_list.grid()
        self._mic_active = shown

    def _add_step(self, index: int, name: str, group: str) -> None:
        # Two columns: seven steps in four rows leave the list room on a small screen.
        row, column = divmod(index, 2)
        label = step_label(name, group)
        title = ttk.Label(self.steps, text=label)
        title.grid(row=row, column=column * 2, sticky="w", pady=1)
        state = ttk.Label(self.steps, text=_("waiting"), foreground=GREY)
        state.grid(row=row, column=column * 2 + 1, sticky="w", padx=(8, 12))
        self._step_rows[name] = (title, state)

    def _set_step(self, unit: str, text: str, colour: str) -> None:
        if unit in self._step_rows:
            self._step_rows[unit][1].configure(text=text, foreground=colour)

    # ------------------------------------------------------------------ results
    def _finish(self, report: CheckReport, *, diagnosis: Any = None,
                report_path: str | None = None) -> None:
        from agent_kit.face.terminal import check_title

        self.busy = False
        self.last_report = report
        self.last_report_path = report_path
        self._show_microphone(False)
        self.progress.configure(value=100)
        self._set_buttons(enabled=True)
        self.start_button.configure(text=_("Check again"))
        blocking = [r for r in report.checks if r.blocks]
        if report.ready:
            text = _("READY (with warnings)") if report.verdict is Status.WARN else _("READY")
            self.verdict.configure(text=text, fg=GREEN)
            self._set_wrapped(self.summary, _("You can take calls."), self.wrap)
        else:
            self.verdict.configure(text=_("NOT READY"), fg=RED)
            self._set_wrapped(self.summary, (_(
                "One problem must be fixed before you take calls. Do what is written below, "
                "then press “Check again”.") if len(blocking) == 1 else _(
                "{count} problems must be fixed before you take calls. Do what is written "
                "below, then press “Check again”.").format(count=len(blocking))), self.wrap)
        # the top cause's evidence first: its fix is the diagnosis's one fix (the same text as
        # the check's), so it is shown once, under the check, not again as "advice"
        top = diagnosis.likely.evidence if diagnosis is not None and diagnosis.likely else ()
        if diagnosis is not None:
            self._add_line(diagnosis.summary(), BLUE, bold=True)
        bad = sorted((r for r in report.checks if r.status in (Status.FAIL, Status.WARN)
                      or (r.status is Status.UNKNOWN and r.blocks)),
                     key=lambda r: (r.id not in top, top.index(r.id) if r.id in top else 0,
                                    not r.blocks, r.status is not Status.FAIL))
        for r in bad:
            self._add_line(f"{_SYMBOL[r.status]} {check_title(r.id)}: {r.message}",
                           _STATUS_COLOUR[r.status], bold=True)
            if r.fix:   # no-break space: the arrow stays with the first word when wrapped
                self._add_line(f"→\u00a0{r.fix}", "#1b1b1b", indent=22)
        self._add_not_measured(report, check_title)
        if report_path:
            self._add_line(_("Report saved: {path}").format(path=report_path), GREY)
            self.report_buttons.grid(row=8, column=0, sticky="ew", pady=(0, 6))

    def _add_not_measured(self, report: CheckReport, title: Callable[[str], str]) -> None:
        """Checks that could not measure (and do not block): one line per reason, so "no
        center configured" is said once with the checks it concerns, never once per check."""
        by_reason: dict[str, list[str]] = {}
        for r in report.checks:
            if r.status is Status.UNKNOWN and not r.blocks:
                by_reason.setdefault(r.message, []).append(title(r.id))
        not_set_up = _("no center configured")
        for reason, titles in by_reason.items():
            names = ", ".join(titles)
            if not_set_up in reason:   # "no center configured", "cannot tell: no center..."
                text = _("Not measured until this computer is set up: {checks}").format(
                    checks=names)
            else:
                text = _("Could not measure {checks}: {reason}").format(checks=names,
                                                                        reason=reason)
            self._add_line(f"{_SYMBOL[Status.UNKNOWN]} {text}", GREY)

    def _add_line(self, text: str, colour: str, *, bold: bool = False, indent: int = 0) -> None:
        font = self.fonts["bold"] if bold else tkfont.nametofont("TkDefaultFont")
        label = tk.Label(self.problems, foreground=colour, background=LIST_BG, font=font,
                         justify="left", anchor="w")
        self._set_wrapped(label, text, self.wrap - 30 - indent, font=font)
        label.pack(fill="x", anchor="w", padx=(6 + indent, 6), pady=(2, 2))

    def _set_wrapped(self, label: tk.Label | ttk.Label, text: str, width_px: int, *,
                     font: tkfont.Font | None = None) -> None:
        """Show ``text`` on ``label`` broken into lines of at most ``width_px`` pixels by the
        terminal's rules (``text_wrap``): Tk's own ``wraplength`` would start a Japanese line
        with "、" or split a number from its counter. The window has a fixed size, so the
        width is known once and the text is wrapped once, when it is set."""
        from agent_kit.face.text_wrap import wrap_measured

        measure = (font or tkfont.nametofont("TkDefaultFont")).measure
        # a few pixels of slack: a line measured character by character can come out a pixel
        # or two narrower than Tk draws it whole (kerning, font fallback for CJK)
        shown = "\n".join(wrap_measured(text, width_px - _WRAP_SLACK_PX, measure))
        label.configure(text=shown, wraplength=0)
        _SENTENCES[label] = (shown, text)

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
        _collect_on_tk_thread()

        def work() -> None:
            from agent_kit.face.diagnose_flow import send_report

            sent = send_report(diagnosis, written)
            # The report's number, not its address: the address is IT's dashboard, which the
            # agent cannot open; the number is what to quote when IT calls back.
            if "report_id" in sent:
                self.events.put(("sent", (_("Sent to IT (report number {number}).").format(
                    number=sent["report_id"]), True)))
            else:
                self.events.put(("sent", ("✘ " + _("the report was not sent: {reason}").format(
                    reason=sent.get("error", "")), False)))

        threading.Thread(target=work, name="report-upload", daemon=True).start()


def widget_texts(widget: tk.Misc, *, as_shown: bool = False) -> list[str]:
    """Every non-empty text shown in a widget tree, in layout order (tests and screen readers).

    A sentence the window broke into lines (``_set_wrapped``) is given whole, as written,
    unless ``as_shown``: then with the line breaks the person sees."""
    texts: list[str] = []
    try:
        text = str(widget.cget("text"))
    except tk.TclError:
        text = ""
    if text and widget.winfo_ismapped():
        shown, sentence = _SENTENCES.get(widget, (None, text))
        texts.append(sentence if shown == text and not as_shown else text)
    for child in widget.winfo_children():
        texts += widget_texts(child, as_shown=as_shown)
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
