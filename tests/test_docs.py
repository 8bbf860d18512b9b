"""The documentation stands alone: it lives in the repository and its links hold.

* No file of the repository refers to the design notes kept outside it (the sibling folder
  of the development machine): a clone has only ``README.md`` and ``docs/``.
* Every relative link of ``README.md`` and ``docs/**/*.md`` points to a file or folder of
  the repository (anchors are not checked).
* Every role of :class:`review_portal.enums.Role` has its Russian user guide in ``docs/ru/``,
  listed in the guides' table of contents.
* The workflow page names every state and transition of ``review_portal/workflow.py``.

The repository's files are what git tracks plus what it would add (ignored files, such as
``.venv`` and ``instance/``, are left out); without git, the tree minus the usual build and
environment folders.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from review_portal.enums import Role
from review_portal.workflow import TRANSITIONS, ReviewState

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Spelled in pieces so this file does not match itself.
FORBIDDEN = ("../" + "shared", "shared/" + "DESIGN", "DESIGN" + ".md")

#: Folders never part of the repository when git cannot say (the fallback walk).
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "venv",
    "instance",
    "build",
    "dist",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "artifacts",
}

#: The Russian guide of each role.
GUIDES = {
    Role.APPLICANT: "docs/ru/provider.md",
    Role.EXPERT: "docs/ru/expert.md",
    Role.COORDINATOR: "docs/ru/coordinator.md",
    Role.MUNICIPAL: "docs/ru/municipal.md",
    Role.ADMIN: "docs/ru/admin.md",
}

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def repository_files() -> list[Path]:
    """Every file of the repository, as described in the module's docstring."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        names = sorted({name for name in listed.decode("utf-8").split("\0") if name})
        return [ROOT / name for name in names if (ROOT / name).is_file()]
    files = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        if path.is_file():
            files.append(path)
    return files


def text_of(path: Path) -> str | None:
    """The file's text, or ``None`` for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(markdown: str) -> list[str]:
    """The link targets of ``markdown`` that point into the repository (code left out)."""
    prose = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    targets = _INLINE_LINK.findall(prose) + _REFERENCE.findall(prose)
    return [t for t in targets if not _EXTERNAL.match(t) and not t.startswith("#")]


def test_no_file_refers_to_design_notes_outside_the_repository():
    offenders = []
    for path in repository_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert offenders == [], "\n".join(offenders)


def test_docs_exist_and_the_readme_links_to_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = relative_links(readme)
    assert "docs/README.md" in links
    assert "docs/design/README.md" in links
    assert "docs/ru/README.md" in links


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_of_the_repository(path):
    broken = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        location = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (path.parent / location).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert broken == [], f"{path.relative_to(ROOT)}: broken links {broken}"


def test_every_role_has_a_russian_guide():
    assert set(GUIDES) == set(Role)
    contents = relative_links((DOCS / "ru" / "README.md").read_text(encoding="utf-8"))
    for role, guide in GUIDES.items():
        path = ROOT / guide
        assert path.is_file(), f"{role.value}: {guide} is missing"
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# Руководство"), f"{guide}: not a Russian guide"
        assert path.name in contents, f"{guide} is not listed in docs/ru/README.md"


def test_workflow_page_names_every_state_and_transition():
    page = (DOCS / "design" / "workflow.md").read_text(encoding="utf-8")
    missing = [f"state {s.value}" for s in ReviewState if f"`{s.value}`" not in page]
    missing += [f"transition {t.name}" for t in TRANSITIONS.values() if f"`{t.name}`" not in page]
    assert missing == [], f"docs/design/workflow.md does not describe: {missing}"
