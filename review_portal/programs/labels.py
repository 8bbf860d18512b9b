"""The interface names of the program's metadata fields, in one place.

A leaf module: the program form, the version comparison and any other page that names a
field of :class:`~review_portal.programs.models.ProgramData` take the label from here, so a
field is called the same everywhere. Every name in ``ProgramData.DATA_FIELDS`` has a label
(the tests check it).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

#: The same texts as the program form's labels, so both share one catalog entry each.
FIELD_LABELS: dict[str, LazyString] = {
    "title": _l("Title of the program"),
    "direction": _l("Direction"),
    "level": _l("Level"),
    "program_type": _l("Type of program"),
    "age_min": _l("Age from (years)"),
    "age_max": _l("Age to (years)"),
    "total_hours": _l("Total hours"),
    "duration_months": _l("Duration (months)"),
    "study_form": _l("Form of study"),
    "uses_distance_learning": _l("Uses distance learning technologies (DOT/EO)"),
    "network_form": _l("Implemented in network form"),
    "group_min": _l("Group size from"),
    "group_max": _l("Group size to"),
    "adapted_for_disabilities": _l("Adapted for children with disabilities (OVZ)"),
    "multi_level": _l("Multi-level program"),
    "annotation": _l("Annotation"),
    "requested_registry_kind": _l("Requested registry"),
    "additional_registry_kinds": _l("Also asks to be included in"),
    "municipality_id": _l("Municipality where it runs"),
    "modules": _l("Modules"),
}
