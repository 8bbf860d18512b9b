"""Badges meet WCAG AA: the contrast ratio of their text to their background is at least
4.5:1 (small bold text is not "large text"), computed from the colours the pages use: the
state badges of ``portal.css`` and every Bootstrap ``text-bg-*`` badge a template uses, read
from the Bootstrap stylesheet the portal serves."""

from __future__ import annotations

import re
from pathlib import Path

import flask_bootstrap
import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTAL_CSS = ROOT / "review_portal" / "static" / "css" / "portal.css"
TEMPLATES = ROOT / "review_portal" / "templates"
BOOTSTRAP_CSS = (
    Path(flask_bootstrap.__file__).parent / "static" / "bootstrap5" / "css" / "bootstrap.min.css"
)
AA = 4.5


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_rgb(value: str) -> tuple[int, int, int]:
    value = value.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def test_contrast_of_known_colours():
    """The formula gives WCAG's reference values: black on white 21:1, the same colour 1:1,
    and the orange the state badges used to have 2.57:1 with white."""
    assert contrast(hex_rgb("#000"), hex_rgb("#fff")) == pytest.approx(21)
    assert contrast(hex_rgb("#777777"), hex_rgb("#777777")) == pytest.approx(1)
    assert round(contrast(hex_rgb("#fd7e14"), hex_rgb("#fff")), 2) == 2.57


def state_rules() -> list[tuple[str, str]]:
    """``(selector, declarations)`` of every rule of ``portal.css`` about a state badge."""
    css = re.sub(r"/\*.*?\*/", "", PORTAL_CSS.read_text(encoding="utf-8"), flags=re.S)
    return [
        (selector.strip(), body)
        for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)
        if ".state-" in selector
    ]


def declared(body: str, name: str) -> str | None:
    match = re.search(rf"(?:^|;)\s*{name}\s*:\s*(#[0-9a-fA-F]{{3,6}})", body)
    return match.group(1) if match else None


def test_state_badges_reach_aa():
    rules = state_rules()
    assert len(rules) >= 5
    for selector, body in rules:
        background, color = declared(body, "background-color"), declared(body, "color")
        assert background and color, selector
        ratio = contrast(hex_rgb(background), hex_rgb(color))
        assert ratio >= AA, f"{selector}: {ratio:.2f}:1"


def bootstrap_badge_colours() -> dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """``{name: (text colour, background)}`` of Bootstrap's ``text-bg-<name>`` classes."""
    css = BOOTSTRAP_CSS.read_text(encoding="utf-8")
    variables = {
        name: tuple(int(v) for v in value.split(","))
        for name, value in re.findall(r"--bs-([a-z]+)-rgb:(\d+,\d+,\d+)", css)
    }
    colours = {}
    for name, color, variable in re.findall(
        r"\.text-bg-([a-z]+)\{color:(#[0-9a-fA-F]{3,6})!important;"
        r"background-color:RGBA\(var\(--bs-([a-z]+)-rgb\)",
        css,
    ):
        colours[name] = (hex_rgb(color), variables[variable])
    return colours


def test_bootstrap_badges_used_by_the_templates_reach_aa():
    colours = bootstrap_badge_colours()
    used = set()
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        used.update(re.findall(r"text-bg-([a-z]+)", text))
        # A class chosen by an expression names its options as quoted words.
        for expression in re.findall(r"text-bg-\{\{(.*?)\}\}", text):
            used.update(w for w in re.findall(r"'([a-z]+)'", expression) if w in colours)
    assert {"primary", "secondary", "success", "info", "warning", "danger"} <= used
    for name in sorted(used):
        text, background = colours[name]
        ratio = contrast(text, background)
        assert ratio >= AA, f"text-bg-{name}: {ratio:.2f}:1"
