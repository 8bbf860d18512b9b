"""Confirmation before an irreversible step, without JavaScript.

The page's button of such a step sends its form with ``step=preview``: the view checks who
acts as always, writes nothing, and answers with :func:`confirmation` — what will happen, in
words (counts, the numbers that will be taken), and a form that sends the same fields again
without ``step``, which does it. A form sent without ``step`` (a script, an older page) is
done at once: the confirmation is the interface's, the rules are the services'.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import render_template, request
from flask_babel import gettext as _

#: ``step`` of a form that asks what would happen.
PREVIEW = "preview"
#: Fields never carried into the confirming form (the token is the page's own).
NOT_CARRIED = frozenset({"csrf_token", "step"})


def previewing() -> bool:
    """Whether the form asks what would happen (nothing may be written then)."""
    return request.form.get("step") == PREVIEW


def carried_fields(**replace) -> list[tuple[str, str]]:
    """The sent fields to send again (each value of a repeated field), ``replace`` giving
    new values for some."""
    fields = [
        (name, value)
        for name, values in request.form.lists()
        if name not in NOT_CARRIED and name not in replace
        for value in values
    ]
    return fields + [(name, str(value)) for name, value in replace.items()]


def confirmation(
    title,
    consequences: Iterable,
    *,
    button,
    back: str,
    action: str | None = None,
    fields: list[tuple[str, str]] | None = None,
    items: Iterable = (),
    style: str = "primary",
    busy=None,
):
    """The confirmation page (200): ``consequences`` as a list, ``items`` (what the step
    acts on) below it, and a form to ``action`` (default: the URL asked) with ``fields``
    (default: those sent) and the ``button``; ``back`` leaves without doing anything."""
    return render_template(
        "confirm.html",
        title=title,
        consequences=[str(line) for line in consequences],
        items=[str(item) for item in items],
        button=button,
        back=back,
        action=action or request.path,
        fields=carried_fields() if fields is None else fields,
        style=style,
        busy=busy or _("Working, please wait…"),
    )
