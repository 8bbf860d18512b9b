"""Quotation marks nested as each language writes them: «Шахматы „Калейдоскоп“».

A leaf module (it imports nothing of the portal), so every package may quote a title —
the audit log's sentences included, which :mod:`review_portal.i18n` (it reads the settings,
which write the audit) could not give them without an import cycle."""

from __future__ import annotations

#: Each language's quotation marks: the outer pair, and the pair for quotes inside them.
QUOTES = {"ru": ("«", "»", "„", "“"), "en": ("“", "”", "‘", "’")}
#: Marks that always open or always close a quotation; ``“`` and ``"`` open or close by
#: where they stand (``“`` closes a Russian inner quote „…“ but opens an English one).
_OPENING, _CLOSING, _EITHER = "«„", "»”", '“"'
#: Before an opening mark: the start of the text, a space, or one of these.
_BEFORE_OPENING = "([{—–-/«„"


def _marks(text: str) -> list[tuple[int, bool]]:
    """The positions of the quotation marks in ``text``, each with whether it opens."""
    marks = []
    for index, char in enumerate(text):
        if char in _OPENING:
            marks.append((index, True))
        elif char in _CLOSING:
            marks.append((index, False))
        elif char in _EITHER:
            before = text[index - 1] if index else " "
            marks.append((index, before.isspace() or before in _BEFORE_OPENING))
    return marks


def quote_in(language: str, text) -> str:
    """``text`` in ``language``'s quotation marks, its own quotes made inner ones:
    ``Шахматы «Калейдоскоп»`` → ``«Шахматы „Калейдоскоп“»``. A text already wrapped in one
    pair of quotes is not quoted twice; an inner quote left open is closed at the end, and
    a closing mark that closes nothing is left out."""
    outer_open, outer_close, inner_open, inner_close = QUOTES.get(language, QUOTES["ru"])
    text = " ".join(str(text).split())
    marks = _marks(text)
    if len(marks) >= 2 and marks[0] == (0, True) and marks[-1] == (len(text) - 1, False):
        # «Калейдоскоп» as a whole: its own pair is the outer one when it closes last.
        depth, closes_at_end = 0, True
        for index, opens in marks:
            depth += 1 if opens else -1
            if depth == 0 and index != len(text) - 1:
                closes_at_end = False
                break
        if closes_at_end:
            text = text[1:-1]
            marks = [(index - 1, opens) for index, opens in marks[1:-1]]
    chars, depth = list(text), 0
    for index, opens in marks:
        if opens:
            chars[index], depth = inner_open, depth + 1
        elif depth:
            chars[index], depth = inner_close, depth - 1
        else:
            chars[index] = ""
    return f"{outer_open}{''.join(chars)}{inner_close * depth}{outer_close}"
