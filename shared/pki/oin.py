"""The organisation identification number (OIN) of Dutch government organisations.

An OIN is 20 decimal digits, issued by Logius and listed in the COR (Centrale OIN
Raadpleegvoorziening). The first eight digits name the source register the number was
derived from (``00000001`` RSIN, ``00000003`` KvK, ``00000004`` OIN register itself, …); the
format has no check digit, so a well-formed OIN can only be confirmed by the COR. PKIoverheid
and Digikoppeling carry it in the certificate subject's ``serialNumber`` attribute (OID
2.5.4.5), which is where :mod:`shared.pki.identity` reads it.
"""

from __future__ import annotations

from typing import Final

from shared.pki.errors import OinError

OIN_LENGTH: Final = 20


def check_oin(value: str, *, where: str = "OIN") -> str:
    """``value`` if it is exactly 20 ASCII digits, else :class:`OinError` saying what it is."""
    if not isinstance(value, str):
        raise OinError(f"{where}: an OIN is a string of {OIN_LENGTH} digits, got {type(value)}")
    if len(value) != OIN_LENGTH or not (value.isascii() and value.isdigit()):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise OinError(
            f"{where}: an OIN is exactly {OIN_LENGTH} digits (e.g. 00000001234567890000), "
            f"got {shown!r} ({len(value)} characters)"
        )
    return value
