"""The byte layout of a sealed file (see ``docs/sealed-files.md`` for the full description).

::

    magic        8   89 41 49 4f 0d 0a 1a 0a   ("\\x89AIO\\r\\n\\x1a\\n", PNG-style: a transfer
                                               that rewrites line ends or strips the 8th bit
                                               breaks it visibly)
    version      1   0x01
    header_len   4   uint32 big-endian, <= 256 KiB
    header       header_len bytes of canonical JSON (shared.sealed.header)
    key_block    enc ‖ ct of HPKE (shared.sealed._hpke); its length follows from the suite
    sig_len      2   uint16 big-endian, <= 256
    header_sig   sig_len bytes: Sign(sender, "aio-sealed/1 header" ‖ 0x00 ‖ SHA-256(all above))
    frames       one or more: flag (1: 0x00 more, 0x01 last) ‖ ct_len (4, uint32 BE) ‖ ct
    sig_len      2
    trailer_sig  Sign(sender, "aio-sealed/1 transcript" ‖ 0x00 ‖ SHA-256(magic … last frame))
    (end of file: any byte after the trailer is refused)
"""

from __future__ import annotations

from typing import Final

MAGIC: Final = b"\x89AIO\r\n\x1a\n"
VERSION: Final = 1
MAX_SIGNATURE_BYTES: Final = 256
FLAG_MORE: Final = 0x00
FLAG_LAST: Final = 0x01
HEADER_SIGNATURE_CONTEXT: Final = b"aio-sealed/1 header\x00"
TRANSCRIPT_SIGNATURE_CONTEXT: Final = b"aio-sealed/1 transcript\x00"
KEY_INFO_CONTEXT: Final = b"aio-sealed/1 key\x00"
"""HPKE ``info`` = this ‖ SHA-256(magic ‖ version ‖ header_len ‖ header): 49 bytes, within the
64 bytes RFC 9180 §7.2.1 says every implementation must accept."""
SEALED_CONTENT_TYPE: Final = "application/vnd.aio.sealed"
"""The content type of the sealed file itself (its payload's is in the header)."""
