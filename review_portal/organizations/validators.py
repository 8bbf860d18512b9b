"""Checks of Russian registration numbers by their control digits (a leaf module).

ИНН: 10 digits for an organization, 12 for an individual (entrepreneur); ОГРН: 13 digits,
ОГРНИП: 15 digits. The algorithms are those of the Federal Tax Service.
"""

from __future__ import annotations

_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def is_valid_inn(value: str, length: int | None = None) -> bool:
    """True for a 10- or 12-digit ИНН with correct control digits (of ``length`` if given)."""
    if not value.isdigit() or len(value) not in (10, 12):
        return False
    if length is not None and len(value) != length:
        return False
    if len(value) == 10:
        return _check_digit(value[:9], _INN10) == int(value[9])
    return _check_digit(value[:10], _INN12_1) == int(value[10]) and _check_digit(
        value[:11], _INN12_2
    ) == int(value[11])


def is_valid_ogrn(value: str) -> bool:
    """True for a 13-digit ОГРН or a 15-digit ОГРНИП with a correct control digit."""
    if not value.isdigit():
        return False
    if len(value) == 13:
        return int(value[:12]) % 11 % 10 == int(value[12])
    if len(value) == 15:
        return int(value[:14]) % 13 % 10 == int(value[14])
    return False
