"""Identifiers for batches and runs that can never look like personal data.

Run and batch ids end up in UWV's audit log, which refuses any label containing a valid BSN
(nine digits passing the elfproef). A UUID's hex groups contain such a run a few percent of
the time, so ids here are drawn from letters only: 128 random bits as 32 letters a–p.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

_ALPHABET = "abcdefghijklmnop"


def new_id(prefix: str, random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """``prefix-`` followed by 32 letters (128 random bits); contains no digit at all."""
    letters = "".join(_ALPHABET[b >> 4] + _ALPHABET[b & 15] for b in random_bytes(16))
    return f"{prefix}-{letters}"
