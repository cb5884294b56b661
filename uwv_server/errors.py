"""Errors of the UWV server, rooted in :class:`shared.errors.Error`."""

from __future__ import annotations

from shared.errors import Error, InputError


class StoreError(Error):
    """The polis store is missing, corrupt or cannot be written."""


class ImportRefused(InputError):
    """A polis extract has invalid rows; nothing was imported. Lists the rows with reasons."""

    def __init__(self, path: str, problems: list[tuple[int, str]], total: int) -> None:
        self.problems = problems
        self.total = total
        shown = "\n".join(f"  line {line}: {reason}" for line, reason in problems)
        more = f"\n  … and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(
            f"{path}: {total} invalid row(s), nothing imported (use --skip-invalid to import "
            f"the valid rows and write the rejects next to the store):\n{shown}{more}"
        )
