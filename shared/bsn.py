"""The BSN (burgerservicenummer): nine digits passing the elfproef (11-check).

The elfproef for a BSN ``d1 d2 … d9``::

    9·d1 + 8·d2 + 7·d3 + 6·d4 + 5·d5 + 4·d6 + 3·d7 + 2·d8 − 1·d9 ≡ 0 (mod 11)

and a BSN is never ``000000000``. A :class:`Bsn` always holds a valid number;
anything else is refused at the boundary with the offending position.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import BsnError

_WEIGHTS: Final = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def elfproef_sum(digits: str) -> int:
    """The weighted sum of the elfproef for nine digits (valid iff divisible by 11)."""
    return sum(w * (ord(c) - 48) for w, c in zip(_WEIGHTS, digits, strict=True))


def check_bsn(text: str) -> str:
    """Return ``text`` if it is a valid BSN, else raise :class:`BsnError` saying why.

    Leading zeros are significant: ``"012345672"`` is nine digits, ``12345672`` is not.
    """
    if not isinstance(text, str):
        raise BsnError(f"BSN must be text of nine digits, got {type(text).__name__}")
    if len(text) != 9:
        raise BsnError(f"BSN {text!r} has {len(text)} characters, expected exactly 9 digits")
    for position, char in enumerate(text, start=1):
        if not "0" <= char <= "9":
            raise BsnError(f"BSN {text!r} has {char!r} at position {position}, expected a digit")
    if text == "000000000":
        raise BsnError("BSN '000000000' is not a valid number")
    if elfproef_sum(text) % 11 != 0:
        raise BsnError(f"BSN {text!r} fails the elfproef (11-check)")
    return text


class Bsn(str):
    """A valid BSN, stored as its nine-digit text."""

    __slots__ = ()

    def __new__(cls, text: str) -> Bsn:
        return super().__new__(cls, check_bsn(text))

    def as_int(self) -> int:
        """The BSN as an integer (for compact columnar storage)."""
        return int(self)

    @classmethod
    def from_int(cls, value: int) -> Bsn:
        """Parse the integer form back into a BSN (zero-padded to nine digits)."""
        if value < 0 or value > 999_999_999:
            raise BsnError(f"BSN integer {value} is out of range 1..999999999")
        return cls(f"{value:09d}")


_WEIGHTS_ARRAY: Final = np.array(_WEIGHTS, dtype=np.int64)


def valid_bsn_mask(values: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Vectorised :func:`check_bsn` on integers: in 1..999999999 and passing the elfproef."""
    bsns = np.asarray(values, dtype=np.int64)
    digits = (np.abs(bsns)[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
    in_range = (bsns >= 1) & (bsns <= 999_999_999)
    return np.asarray(in_range & ((digits @ _WEIGHTS_ARRAY) % 11 == 0), dtype=np.bool_)


def complete_bsn(prefix8: int) -> int | None:
    """The ninth digit that makes ``prefix8`` (eight digits) a valid BSN, as a full BSN int.

    Returns None when no ninth digit satisfies the elfproef. Used by the synthetic generator.
    """
    digits = f"{prefix8:08d}"
    partial = sum(w * (ord(c) - 48) for w, c in zip(_WEIGHTS[:8], digits, strict=True))
    last = partial % 11  # need partial - last ≡ 0 (mod 11)
    if last > 9:
        return None
    value = prefix8 * 10 + last
    return value if value != 0 else None
