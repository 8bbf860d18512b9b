"""Checks of Russian registration numbers (a leaf module), by python-stdnum.

ИНН: 10 digits for an organization, 12 for an individual (entrepreneur); ОГРН: 13 digits,
ОГРНИП: 15 digits; control digits by the Federal Tax Service's algorithms. Only ASCII
digits count as digits: "²" or "٧" is not a digit of a registration number.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]+")


def is_valid_inn(value: str, length: int | None = None) -> bool:
    """True for a 10- or 12-digit ИНН with correct control digits (of ``length`` if given)."""
    from stdnum.ru import inn as stdnum_inn

    if not isinstance(value, str) or not _ASCII_DIGITS.fullmatch(value):
        return False
    if length is not None and len(value) != length:
        return False
    return stdnum_inn.is_valid(value)


def is_valid_ogrn(value: str) -> bool:
    """True for a 13-digit ОГРН or a 15-digit ОГРНИП with a correct control digit."""
    from stdnum.ru import ogrn as stdnum_ogrn

    if not isinstance(value, str) or not _ASCII_DIGITS.fullmatch(value):
        return False
    if len(value) == 15:
        # python-stdnum 2.2 takes the remainder modulo 13 as the digit, so it refuses every
        # real ОГРНИП whose remainder is 10–12; the Federal Tax Service's rule takes its
        # last digit (``% 13 % 10``).
        return value[0] in "34" and int(value[:14]) % 13 % 10 == int(value[14])
    return stdnum_ogrn.is_valid(value)


def with_inn_check_digits(body: str) -> str:
    """A whole ИНН from its body: 9 digits of an organization's (one check digit added) or
    10 of an individual's (two added)."""
    from stdnum.ru import inn as stdnum_inn

    if len(body) == 9:
        return body + stdnum_inn.calc_company_check_digit(body)
    return body + stdnum_inn.calc_personal_check_digits(body)
