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
            and n.func.id in ("_", "N_", "M_")]


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


def _catalog(lang: str) -> dict[str, str]:
    with open(PACKAGE / "core" / "locale" / lang / "LC_MESSAGES" / "agent_kit.po", "rb") as fh:
        cat = read_po(fh)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def _fields(text: str) -> list[tuple[str, str, str | None]]:
    """The replacement fields of a str.format template: (name, format spec, conversion)."""
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
        compiled = {m.id: m.string for m in read_mo(fh) if m.id}
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
        [sys.executable, "-m", "agent_kit.face.cli", "check", "--only", "system", "--lang", "ja"],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin",
                                                       "AGENT_KIT_HOME": "/nonexistent"})
    assert out.returncode in (0, 1), out.stderr
    assert "CPU負荷" in out.stdout or "CPU 負荷" in out.stdout, out.stdout
    assert "準備完了" in out.stdout or "準備未完了" in out.stdout, out.stdout
