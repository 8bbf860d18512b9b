"""Who may see the registry's pending changes, publish it, read the municipal registry and
exclude a program.

The published registry itself (``/registry``, its history, differences and exports) is
public and needs no predicate. What is not yet published is for the center's staff, and for
a municipal viewer only within their municipality.
"""

from __future__ import annotations

from review_portal.enums import Role
from review_portal.permissions import has_role, is_staff, is_staff_on


def is_municipal_viewer(user) -> bool:
    """An approved municipal viewer attached to a municipality."""
    return has_role(user, Role.MUNICIPAL) and user.municipality_id is not None


def can_view_pending_registry(user) -> bool:
    """Staff see every pending change; a municipal viewer those of their municipality."""
    return is_staff(user) or is_municipal_viewer(user)


def pending_scope(user) -> int | None:
    """The municipality whose pending changes ``user`` sees; ``None``: all of them (staff).

    Call only when :func:`can_view_pending_registry` holds.
    """
    if is_staff(user):
        return None
    return user.municipality_id


def can_publish_registry(user) -> bool:
    return is_staff(user)


def can_view_municipal_registry(user) -> bool:
    return is_municipal_viewer(user)


def can_exclude_program(user, program) -> bool:
    """Staff, while the program stands admitted — on its current review, or, during a
    renewal, on the review its registry entry rests on (``exclude_program`` checks it again
    under the review's lock)."""
    from review_portal.registry.queries import excludable_review

    review = excludable_review(program)
    return review is not None and is_staff_on(user, review)


#: Exposed to templates, so a link or a form shows exactly when the action is allowed.
TEMPLATE_PREDICATES = {
    "can_view_pending_registry": can_view_pending_registry,
    "can_publish_registry": can_publish_registry,
    "can_view_municipal_registry": can_view_municipal_registry,
    "can_exclude_program": can_exclude_program,
}
