"""The one build step pyproject.toml cannot declare: the translations compiled into the wheel.

The ``.mo`` files are not committed (``make translations`` compiles them for a checkout).
Without them an installed portal would show the English msgids instead of its Russian
interface, so building the package (``pip wheel .``, ``python -m build``) compiles every
``review_portal/translations/<lang>/LC_MESSAGES/*.po`` into the build itself, as
``pybabel compile`` would, from a fresh clone too; the source tree is left as it is.
Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGS = "review_portal/translations/*/LC_MESSAGES/*.po"


class BuildPyWithCatalogs(build_py):
    """``build_py`` that also writes each catalog's ``.mo`` into the build directory."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree's .mo (make translations)
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path().glob(CATALOGS)):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parts[-3], domain=po.stem)
            mo = Path(self.build_lib, po.with_suffix(".mo"))
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as target:
                write_mo(target, catalog)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
