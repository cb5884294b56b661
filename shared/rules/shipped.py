"""The rules that ship with the package, located through :mod:`importlib.resources`.

The default rule of ``svb-client screen`` is package data, not a path relative to the
working directory, so the command works from any directory after a plain ``pip install``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from shared.rules.errors import RuleFormatError

SHIPPED_RULE: Final = "aio.yaml"
REGELRECHT_RULE: Final = ("regelrecht", "participatiewet_aio.yaml")
REGELRECHT_BINDING: Final = ("regelrecht", "participatiewet_aio.binding.yaml")


def _data_file(*parts: str) -> Path:
    resource = resources.files("shared.rules.data").joinpath(*parts)
    # The package is installed as files (pip never installs it zipped); a zip import would
    # give a resource without a file-system path, which the rule loader cannot read.
    path = Path(str(resource))
    if not path.is_file():
        raise RuleFormatError(
            f"the shipped rule {'/'.join(parts)} is missing from the installed package",
            expected="a complete installation of aio-screening (reinstall it)",
            file=str(path),
        )
    return path


def shipped_rule_path() -> Path:
    """The file of the default AIO rule (``shared/rules/data/aio.yaml``)."""
    return _data_file(SHIPPED_RULE)


def shipped_regelrecht() -> tuple[Path, Path]:
    """The AIO rule as a RegelRecht document and its binding file."""
    return _data_file(*REGELRECHT_RULE), _data_file(*REGELRECHT_BINDING)
