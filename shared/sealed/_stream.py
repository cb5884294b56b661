"""The payload: STREAM over AES-256-GCM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7), laid out
as Tink's AES-GCM-HKDF streaming AEAD and age's payload do.

* ``payload_key ‖ nonce_prefix = HKDF-SHA256(ikm=file_key, salt=SHA-256(prefix),
  info="aio-sealed/1 payload", L=32+7)`` (RFC 5869), where ``prefix`` is the file from its
  first byte to the end of the header;
* chunk ``i`` (from 0) is ``AES-256-GCM(payload_key, nonce_i, plaintext_i, aad="")`` with the
  12-byte ``nonce_i = nonce_prefix (7) ‖ uint32_be(i) ‖ last (1: 0x01 on the last chunk,
  else 0x00)``.

The counter makes a chunk decrypt only at its own position (reordering, dropping and
inserting fail), the last-flag makes the end explicit (truncation at a chunk boundary fails:
the chunk before the cut was sealed with flag 0x00, so it is not a valid last chunk).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.sealed.errors import TamperedFile

TAG_BYTES: Final = 16
NONCE_PREFIX_BYTES: Final = 7
MAX_CHUNKS: Final = 1 << 32
_INFO: Final = b"aio-sealed/1 payload"


class ChunkCipher:
    """Seals and opens the chunks of one file, each at its position."""

    def __init__(self, file_key: bytes, prefix_digest: bytes) -> None:
        okm = HKDF(
            algorithm=hashes.SHA256(),
            length=32 + NONCE_PREFIX_BYTES,
            salt=prefix_digest,
            info=_INFO,
        ).derive(file_key)
        self._aead = AESGCM(okm[:32])
        self._prefix = okm[32:]

    def _nonce(self, index: int, last: bool) -> bytes:
        if not 0 <= index < MAX_CHUNKS:
            raise TamperedFile(f"chunk {index}: beyond the 2^32 chunks a file may have")
        return self._prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")

    def seal(self, index: int, last: bool, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._nonce(index, last), plaintext, None)

    def open(self, index: int, last: bool, ciphertext: bytes) -> bytes:
        try:
            return self._aead.decrypt(self._nonce(index, last), ciphertext, None)
        except InvalidTag:
            where = "last chunk" if last else "chunk"
            raise TamperedFile(
                f"{where} {index} fails authentication: it was altered, or chunks were "
                "reordered, dropped or inserted"
            ) from None
