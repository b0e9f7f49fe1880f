"""Write agent_kit/core/locale/agent_kit.pot: every constant first argument of _() and N_(),
and the (singular, plural) of ngettext().

Walks the Python syntax tree (so calls inside f-strings are found too, which pybabel's
tokenizer-based extractor misses on Python 3.11) -- the same rule tests/test_i18n.py checks.
Run by scripts/update-translations.sh; needs Babel (a build/test dependency only).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parents[1]
HELP_FILE = "agent_kit/face/cli.py"


def help_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every constant ``help=`` keyword and command docstring-free help in
    ``path``: what ``agent-kit --help`` shows, translated at run time."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "help" and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str) and kw.value.value:
                    found.append((node.lineno, kw.value.value))
        if isinstance(node, ast.FunctionDef) and _is_command(node):
            doc = ast.get_docstring(node)   # cleaned as typer cleans it (inspect.getdoc)
            if doc:
                found.append((node.lineno, doc))
    return found


def _is_command(node: ast.FunctionDef) -> bool:
    """Decorated ``@app.command(...)`` or ``@app.callback(...)``: its docstring is its help."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
               and d.func.attr in ("command", "callback") for d in node.decorator_list)


def main() -> int:
    catalog = Catalog(project="agent-kit", copyright_holder="agent-kit authors",
                      msgid_bugs_address="", charset="utf-8")
    for path in sorted((ROOT / "agent_kit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        calls = [n for n in ast.walk(ast.parse(path.read_text("utf-8"), rel))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id in ("_", "N_", "M_", "ngettext") and n.args]
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            arg = call.args[0]
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value):
                continue
            msgid: str | tuple[str, str] = arg.value
            if call.func.id == "ngettext":   # (singular, plural): one msgstr per plural form
                plural = call.args[1] if len(call.args) > 1 else None
                if not (isinstance(plural, ast.Constant) and isinstance(plural.value, str)):
                    continue
                msgid = (arg.value, plural.value)
            catalog.add(msgid, locations=[(rel, call.lineno)],
                        flags=("python-brace-format",) if "{" in arg.value else ())
        if rel == HELP_FILE:   # the command line's help= texts (core.i18n.translate_help)
            for lineno, text in help_texts(path):
                catalog.add(text, locations=[(rel, lineno)])
    for message in catalog:
        # Messages use str.format, never %: Babel guesses "python-format" from text like
        # "5 % of", and its compile check would then reject a correct translation.
        message.flags.discard("python-format")
    out = ROOT / "agent_kit" / "core" / "locale" / "agent_kit.pot"
    with open(out, "wb") as fh:
        write_po(fh, catalog, width=100, include_lineno=False, sort_by_file=True)
    print(f"{len(catalog)} messages -> {out.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
