"""Fill Russian translations into the catalog from a JSON file of {"msgid" or "context|msgid": "перевод"}.

Usage: .venv/bin/python scripts/translate.py translations.json
Entries already translated are left alone unless the JSON names them.
"""

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

CATALOG = (
    Path(__file__).resolve().parent.parent / "review_portal/translations/ru/LC_MESSAGES/messages.po"
)


def main(path: str) -> None:
    wanted = json.loads(Path(path).read_text(encoding="utf-8"))
    with CATALOG.open("rb") as f:
        catalog = read_po(f)
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = f"{message.context}|{message.id}" if message.context else message.id
        if isinstance(message.id, tuple):
            key = message.id[0]
        if key in wanted:
            message.string = wanted[key]
            message.flags.discard("fuzzy")
        elif not message.string:
            missing.append(key)
    with CATALOG.open("wb") as f:
        write_po(f, catalog, width=100)
    if missing:
        print("still untranslated:", *missing, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
