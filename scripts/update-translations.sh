#!/usr/bin/env bash
# Re-extract every user-facing message of agent_kit/ and bring the catalogs up to date.
#
#   scripts/update-translations.sh           extract -> agent_kit/core/locale/agent_kit.pot,
#                                             merge into each language's .po, compile the .mo
#   scripts/update-translations.sh compile   only compile the .po files into .mo
#
# Messages are the constant first argument of _() and N_(), and both of ngettext() (see
# agent_kit/core/i18n.py). After an
# extraction, new messages have an empty msgstr in every .po: translate them (ja, ko, sv), run
# "scripts/update-translations.sh compile", and commit the .po and .mo together.
# tests/test_i18n.py fails while any message lacks a translation or a .mo is stale.
#
# Messages are also the constant first argument of M_() (a message kept as id + parameters), and
# the constant help= texts and command docstrings of agent_kit/face/cli.py (agent-kit --help).
# The agent reads the compiled .mo with the standard library's gettext; Babel (a dependency)
# formats numbers and dates for the reader's language at run time and is needed here too.
set -euo pipefail
cd "$(dirname "$0")/.."
LANGS=(ja ko sv)
LOCALE=agent_kit/core/locale
POT=$LOCALE/agent_kit.pot
command -v pybabel >/dev/null || { echo "pybabel missing: pip install babel" >&2; exit 2; }

if [ "${1:-}" != compile ]; then
  python3 scripts/extract_messages.py   # the syntax tree: finds _() inside f-strings too
  for lang in "${LANGS[@]}"; do
    po=$LOCALE/$lang/LC_MESSAGES/agent_kit.po
    if [ -f "$po" ]; then
      # No fuzzy matching: a guessed translation of a new message is worse than none.
      pybabel -q update --no-fuzzy-matching --ignore-obsolete --width=100 \
        -D agent_kit -i "$POT" -d "$LOCALE" -l "$lang"
    else
      pybabel -q init -D agent_kit -i "$POT" -d "$LOCALE" -l "$lang" --width=100
    fi
  done
fi
# Compiled here rather than by "pybabel compile": its %-format checker mistakes text such as
# "5 % of" for a printf placeholder; brace placeholders are checked by tests/test_i18n.py.
python3 - "${LANGS[@]}" <<'PY'
import sys
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
missing = 0
for lang in sys.argv[1:]:
    base = f"agent_kit/core/locale/{lang}/LC_MESSAGES/agent_kit"
    with open(f"{base}.po", "rb") as fh:
        cat = read_po(fh)
    with open(f"{base}.mo", "wb") as fh:
        write_mo(fh, cat)   # fuzzy and empty translations are left out
    print(f"compiled {base}.mo")
    # an ngettext message has one msgstr per plural form: every one must be there
    todo = [m.id for m in cat if m.id and (not all(m.string if isinstance(m.string, tuple)
                                                   else (m.string,)) or m.fuzzy)]
    missing += len(todo)
    for msgid in todo:
        print(f"  {lang}: untranslated: {msgid!r}")
print(f"{missing} message(s) still to translate" if missing else "every message translated")
PY
