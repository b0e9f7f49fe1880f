"""Every user-facing message is translated in every shipped language, and the .mo are current.

The messages are collected here from the source itself (the constant first argument of every
``_()``/``N_()`` call in agent_kit/), independently of the extraction tool the update script
uses, so a message added without re-running ``scripts/update-translations.sh`` fails too.
"""

from __future__ import annotations

import ast
import gettext
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from agent_kit.core import i18n

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agent_kit"
SHIPPED = tuple(lang for lang in i18n.SUPPORTED if lang != "en")


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id in ("_", "N_", "M_", "ngettext")]


def code_msgids() -> dict[str, str]:
    """msgid -> first place it occurs, for every constant _()/N_() argument in agent_kit/."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for call in _calls(tree):
            if call.args and isinstance(call.args[0], ast.Constant) \
                    and isinstance(call.args[0].value, str):
                found.setdefault(call.args[0].value,
                                 f"{path.relative_to(ROOT)}:{call.lineno}")
    # the command line's constant help= texts (translated by core.i18n.translate_help)
    cli = PACKAGE / "face" / "cli.py"
    for node in ast.walk(ast.parse(cli.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "help" and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str) and kw.value.value:
                    found.setdefault(kw.value.value, f"agent_kit/face/cli.py:{node.lineno}")
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                and d.func.attr in ("command", "callback") for d in node.decorator_list):
            doc = ast.get_docstring(node)
            if doc:
                found.setdefault(doc, f"agent_kit/face/cli.py:{node.lineno}")
    return found


def _translated(m) -> bool:
    """A message with its translation (every plural form, for an ngettext message)."""
    forms = m.string if isinstance(m.string, tuple) else (m.string,)
    return bool(m.id) and all(forms) and not m.fuzzy


def _key(msgid: str | tuple[str, ...] | list[str]) -> str:
    """An ngettext message is known by its singular, as code_msgids() finds it."""
    return msgid if isinstance(msgid, str) else msgid[0]


def _forms(msgstr: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    """A msgstr as the .po reader gives it (the .mo reader gives plural forms as a list)."""
    return msgstr if isinstance(msgstr, str) else tuple(msgstr)


def _catalog(lang: str) -> dict[str, str | tuple[str, ...]]:
    with open(PACKAGE / "core" / "locale" / lang / "LC_MESSAGES" / "agent_kit.po", "rb") as fh:
        cat = read_po(fh)
    return {_key(m.id): _forms(m.string) for m in cat if _translated(m)}


def _fields(text: str | tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """The replacement fields of a str.format template: (name, format spec, conversion). An
    ngettext translation (one text per plural form) has them when every form has the same."""
    if isinstance(text, tuple):
        forms = [_fields(form) for form in text]
        return forms[0] if all(f == forms[0] for f in forms) else sorted(sum(forms, []))
    return sorted((name, spec or "", conv) for _lit, name, spec, conv
                  in string.Formatter().parse(text) if name is not None)


def test_messages_are_constant_strings() -> None:
    """_() of an f-string or a formatted string cannot be translated: format after _()."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for call in _calls(ast.parse(path.read_text("utf-8"))):
            arg = call.args[0] if call.args else None
            if arg is None or isinstance(arg, ast.JoinedStr | ast.BinOp) or (
                    isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
                    and arg.func.attr == "format"):
                bad.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not bad, f"_() must get a constant msgid (use _('... {{x}}').format(x=...)): {bad}"


def test_the_collector_sees_known_messages() -> None:
    ids = code_msgids()
    assert "READY" in ids and "CPU load" in ids and len(ids) > 50


@pytest.mark.parametrize("lang", SHIPPED)
def test_every_message_is_translated(lang: str) -> None:
    translated = _catalog(lang)
    missing = {m: where for m, where in code_msgids().items() if m not in translated}
    assert not missing, (
        f"{len(missing)} message(s) lack a {lang} translation; run "
        f"scripts/update-translations.sh, translate, then compile: {missing}")


@pytest.mark.parametrize("lang", SHIPPED)
def test_translations_keep_the_placeholders(lang: str) -> None:
    wrong = {msgid: text for msgid, text in _catalog(lang).items()
             if _fields(msgid) != _fields(text)}
    assert not wrong, f"{lang}: placeholders differ from the msgid: {wrong}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_mo_is_compiled_from_the_current_po(lang: str) -> None:
    with open(PACKAGE / "core" / "locale" / lang / "LC_MESSAGES" / "agent_kit.mo", "rb") as fh:
        compiled = {_key(m.id): _forms(m.string) for m in read_mo(fh) if m.id}
    assert compiled == _catalog(lang), (
        f"{lang}: agent_kit.mo is stale; run scripts/update-translations.sh compile")


@pytest.mark.parametrize(("lang", "ready"), [("ja", "準備完了"), ("ko", "준비 완료"),
                                             ("sv", "REDO")])
def test_runtime_reads_the_catalog_with_the_standard_library(lang: str, ready: str) -> None:
    """What the agent does at run time: stdlib gettext, no Babel."""
    t = gettext.translation(i18n.DOMAIN, i18n.LOCALE_DIR, languages=[lang])
    assert t.gettext("READY") == ready
    try:
        assert i18n.set_language(lang) == lang
        assert i18n._("READY") == ready
        assert i18n.set_language("xx") == "en" and i18n._("READY") == "READY"
    finally:
        i18n.set_language("en")


def test_os_locale_picks_the_language() -> None:
    env = {"LANG": "sv_SE.UTF-8", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", "from agent_kit.core import i18n; print(i18n.set_language(None), "
                               "i18n._('READY'))"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout.split()
    assert out == ["sv", "REDO"]


def test_lang_option_translates_the_check_output() -> None:
    out = subprocess.run(
        # --details: the short view names the step (パソコン), the full table every check
        [sys.executable, "-m", "agent_kit.face.cli", "check", "--only", "system", "--lang", "ja",
         "--details"],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin",
                                                       "AGENT_KIT_HOME": "/nonexistent"})
    assert out.returncode in (0, 1), out.stderr
    assert "CPU負荷" in out.stdout or "CPU 負荷" in out.stdout, out.stdout
    assert "準備完了" in out.stdout or "準備未完了" in out.stdout, out.stdout


# ---------------------------------------------------------------- the glossary, values, progress

GLOSSARY = PACKAGE / "core" / "locale" / "glossary.toml"


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalogs_use_the_glossary(lang: str) -> None:
    """A message whose English names computer, ISP, cable or IT uses the glossary's one word."""
    import re
    import tomllib

    glossary = tomllib.loads(GLOSSARY.read_text("utf-8"))
    wrong = []
    for term, spec in glossary.items():
        word = spec[lang]
        for msgid, text in _catalog(lang).items():
            if re.search(spec["match"], msgid) and (
                    word.lower() not in text.lower() if lang == "sv" else word not in text):
                wrong.append((term, msgid, text))
    assert not wrong, f"{lang}: not the glossary's word: {wrong}"


# Words that stay as they are in every language (names of things, units, standards).
_LATIN_KEPT = {"Wi-Fi", "USB", "Bluetooth", "VPN", "ISP", "IT", "MOS", "CPU", "RTT", "ms", "s",
               "Mbit", "dB", "dBFS", "agent", "kit", "center", "HTML", "JSON", "CSV", "URL",
               "TOML", "HOST", "PORT", "CMD", "ARGS", "stdout", "root", "raw", "Npcap", "OS",
               "en", "ja", "ko", "sv", "ID", "Web", "SQM", "QoS", "Linux", "Windows", "CAP_NET_RAW"}


def _english_left(text: str) -> list[str]:
    """Latin-letter words of a ja/ko text that are not names kept in every language."""
    import re

    return [w for w in re.findall(r"[A-Za-z][A-Za-z_-]{2,}", re.sub(r"\{[^}]*\}", "", text))
            if w not in _LATIN_KEPT and w.split("-")[0] not in _LATIN_KEPT]


@pytest.mark.parametrize("lang", SHIPPED)
def test_values_progress_and_status_words_are_translated(lang: str) -> None:
    """What the terminal shows beside the messages: a state's value ("wired", "clean",
    "builtin"), the progress lines, the status word of "Headset check: UNKNOWN", the shipped
    policy's name. None may stay English."""
    from agent_kit.core.policy import DEFAULT_POLICY_NAME, policy_title
    from agent_kit.core.results import VALUE_WORDS, Status, value_text
    from agent_kit.face.check_steps import step_word
    from agent_kit.face.terminal import ProgressLine
    from agent_kit.run.units import UNITS

    shown = {f"value {v}": value_text(v, lang) for v in VALUE_WORDS}
    shown["policy"] = policy_title(DEFAULT_POLICY_NAME, lang)
    import io

    try:
        i18n.set_language(lang)
        for unit in (u.name for u in UNITS):
            err = io.StringIO()   # not a terminal: one plain line per start and end
            progress = ProgressLine(err)
            progress("start", unit, 0.0, None)
            progress("done", unit, 1.25, [])
            shown[f"progress {unit}"] = err.getvalue()
        shown.update({f"status {s}": step_word(s) for s in Status})   # "Headset check: ..."
    finally:
        i18n.set_language("en")
    if lang == "sv":
        # Swedish is written in Latin letters: what is shown must differ from the English
        # (except words Swedish writes alike) and use the decimal comma
        english = {f"value {v}": v for v in VALUE_WORDS}
        left = {k: v for k, v in shown.items() if k in english
                and v in (english[k], VALUE_WORDS[k.split()[1]]) and v not in _LATIN_KEPT}
        assert "1,2 s" in shown["progress system"] or "1,3 s" in shown["progress system"]
    else:
        left = {k: v for k, v in shown.items() if _english_left(v)}
    assert not left, f"{lang}: English left: {left}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_help_is_translated(lang: str) -> None:
    """``agent-kit --help`` and a command's help in the language ``--lang`` names."""
    env = {"PATH": "/usr/bin:/bin", "AGENT_KIT_HOME": "/nonexistent", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "agent_kit.face.cli", "check", "--help",
                          "--lang", lang], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    t = i18n.translation(lang)
    english = "Leave these parts out (the names of --only)."
    expected = t.gettext(english)
    flat = " ".join(out.stdout.split())   # the help is wrapped to the terminal's width
    assert expected != english and " ".join(expected.split()) in flat, out.stdout
    assert english not in flat
    # typer's own words too: the panel title and the --help option's help
    for word in ("Options", "Show this message and exit."):
        assert t.gettext(word) != word and t.gettext(word) in flat and word not in flat, word


# ---------------------------------------------------------------- messages as id + parameters

def test_a_message_renders_in_each_language_with_its_numbers() -> None:
    msg = i18n.M_("{median:.1f} ms round trip to the center (95 % of packets within "
                  "{p95:.1f} ms)", median=0.1, p95=12.25)
    assert i18n.render(msg, "en") == ("0.1 ms round trip to the center (95 % of packets "
                                      "within 12.2 ms)")
    assert "0,1 ms" in i18n.render(msg, "sv") and "12,2 ms" in i18n.render(msg, "sv")
    assert "0.1 ms" in i18n.render(msg, "ja")
    # the same digits in every language (Python's rounding), only the sign differs
    assert i18n.format_number(2.675, 2, "sv") == format(2.675, ".2f").replace(".", ",")


def test_a_message_survives_json_and_nests() -> None:
    reason = i18n.M_("no packet came back from the reflector")
    msg = i18n.join(i18n.M_("the path test to the center did not run: {reason}", reason=reason),
                    "probe said: timeout")
    again = i18n.Msg.from_json(msg.to_json())
    assert again == msg
    assert i18n.render(again, "en") == ("the path test to the center did not run: no packet "
                                        "came back from the reflector probe said: timeout")
    ja = i18n.render(again, "ja")
    assert "reflector" not in ja and "probe said: timeout" in ja
    assert i18n.Msg.from_json({"id": 3}) is None and i18n.Msg.from_json("text") is None


def test_a_stored_message_whose_catalog_does_not_fit_still_reads() -> None:
    """A field renamed since the message was stored: the English text, not a crash."""
    msg = i18n.Msg("CPU {load:.0f} % busy on {cores} cores", {"load": 12.0})
    assert i18n.render(msg, "sv") == "CPU {load:.0f} % busy on {cores} cores" or \
        "12" in i18n.render(msg, "sv")


def test_a_result_carries_its_message_ids_in_json() -> None:
    from agent_kit.core.policy import load_policy
    from agent_kit.evaluate.system import evaluate_system
    from probes.system import PowerReading, SystemReading

    reading = SystemReading(cpu_load_pct=97.0, logical_cores=4, physical_cores=2,
                            memory_available_mb=900.0, memory_total_mb=8000.0,
                            disk_free_gb=50.0, disk_path="/", uptime_days=0.4,
                            power=PowerReading(has_battery=False, on_battery=False,
                                               charge_pct=None, minutes_left=None))
    try:
        i18n.set_language("ko")
        cpu = evaluate_system(reading, load_policy(None))[0]
    finally:
        i18n.set_language("en")
    data = cpu.to_json()
    assert data["message_id"] == "CPU {load:.0f} % busy on {cores} cores"
    assert data["message_params"] == {"load": 97.0, "cores": 4}
    assert data["fix_id"] and data["fix"] == cpu.fix   # the text of the run's language (ko)
    assert cpu.message_in("en") == "CPU 97 % busy on 4 cores"
    assert cpu.message_in("sv") != cpu.message_in("en") and cpu.message != cpu.message_in("en")
