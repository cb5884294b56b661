"""The exception root of the ``shared`` package.

Every error a user can cause derives from :class:`Error` and says what was wrong,
where (file, line, field, BSN position, household id) and what was expected.
Low-level failures (``ValueError`` from a parser, TenSEAL's ``RuntimeError``)
are turned into one of these at the boundary, never leaked raw.

Hierarchy::

    Error
    ├── InputError            bad input from a user or a peer (file rows, fields, messages)
    │   ├── BsnError          a BSN that is not nine digits passing the elfproef
    │   └── PeriodError       a malformed reference period
    ├── NormError             no norm in force for a category and date
    ├── CryptoError           ciphertexts, contexts and keys that are corrupt or unsafe
    └── IntegrityError        a result that cannot be right (out of documented range)
"""

from __future__ import annotations


class Error(Exception):
    """Root of all domain errors raised by this project."""

    def diagnostics(self) -> str:
        """A text for the user: what went wrong and what is expected."""
        return str(self)


class InputError(Error):
    """Bad input: a file row, a field or a message that does not have the expected form."""


class BsnError(InputError):
    """A BSN that is not nine digits passing the elfproef."""


class PeriodError(InputError):
    """A reference period that is not ``YYYY-MM..YYYY-MM`` with start <= end."""


class NormError(Error):
    """No norm is in force for the asked category and date."""


class CryptoError(Error):
    """A ciphertext, context or key that is corrupt, oversized or unsafe to accept."""


class IntegrityError(Error):
    """A result outside its documented range: reported, never turned into a decision."""
