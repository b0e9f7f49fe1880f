#!/usr/bin/env bash
# Re-extract every user-facing message of agent_kit/ and bring the catalogs up to date.
#
#   scripts/update-translations.sh           extract -> agent_kit/locale/agent_kit.pot,
#                                             merge into each language's .po, compile the .mo
#   scripts/update-translations.sh compile   only compile the .po files into .mo
#
# Messages are the constant first argument of _() and N_() (see agent_kit/i18n.py). After an
# extraction, new messages have an empty msgstr in every .po: translate them (ja, ko, sv), run
# "scripts/update-translations.sh compile", and commit the .po and .mo together.
# tests/test_i18n.py fails while any message lacks a translation or a .mo is stale.
#
# Babel (pip install babel; in the "test" extra) is needed here only, never at run time: the
# agent reads the compiled .mo with the standard library's gettext.
set -euo pipefail
cd "$(dirname "$0")/.."
LANGS=(ja ko sv)
LOCALE=agent_kit/locale
POT=$LOCALE/agent_kit.pot
command -v pybabel >/dev/null || { echo "pybabel missing: pip install babel" >&2; exit 2; }

if [ "${1:-}" != compile ]; then
  pybabel -q extract --keyword=_ --keyword=N_ --no-default-keywords \
    --add-comments=TRANSLATORS: --add-location=file --sort-by-file --width=100 \
    --project=agent-kit --copyright-holder="agent-kit authors" \
    --msgid-bugs-address="" -o "$POT" agent_kit
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
pybabel compile --statistics -D agent_kit -d "$LOCALE"
python3 - "${LANGS[@]}" <<'PY'
import sys
from babel.messages.pofile import read_po
missing = 0
for lang in sys.argv[1:]:
    with open(f"agent_kit/locale/{lang}/LC_MESSAGES/agent_kit.po", "rb") as fh:
        cat = read_po(fh)
    todo = [m.id for m in cat if m.id and (not m.string or m.fuzzy)]
    missing += len(todo)
    for msgid in todo:
        print(f"  {lang}: untranslated: {msgid!r}")
print(f"{missing} message(s) still to translate" if missing else "every message translated")
PY
