"""The key block: a fresh 32-byte file key sealed to the recipient with HPKE (RFC 9180).

Base mode (``mode_base``, §5.1.1) single-shot ``Seal``/``Open`` (§6.1), through
``cryptography``'s HPKE implementation (which is tested against the RFC's vectors; so is our
use of it, in ``tests/unit/sealed/test_hpke_vectors.py``). The ciphersuite follows the
recipient's key: DHKEM(X25519, HKDF-SHA256) ``0x0020`` or DHKEM(P-256, HKDF-SHA256)
``0x0010``, with HKDF-SHA256 ``0x0001`` and AES-256-GCM ``0x0002``. The key block is
``enc ‖ ct``, exactly as ``Suite.encrypt`` returns it: 32 + 48 bytes for X25519, 65 + 48 for
P-256.
"""

from __future__ import annotations

from typing import Final, Literal

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from shared.sealed.errors import NotAddressedToUs
from shared.sealed.header import Suite
from shared.sealed.identity import EncryptionPublicKey, ReceiverKey

KEM_P256: Final[Literal[0x0010]] = 0x0010
KEM_X25519: Final[Literal[0x0020]] = 0x0020
KDF_HKDF_SHA256: Final[Literal[0x0001]] = 0x0001
AEAD_AES_256_GCM: Final[Literal[0x0002]] = 0x0002
FILE_KEY_BYTES: Final = 32
_TAG: Final = 16
_ENC_BYTES: Final = {KEM_X25519: 32, KEM_P256: 65}


def suite_for(public_key: EncryptionPublicKey) -> Suite:
    if isinstance(public_key, x25519.X25519PublicKey):
        return Suite(kem_id=KEM_X25519, kdf_id=KDF_HKDF_SHA256, aead_id=AEAD_AES_256_GCM)
    return Suite(kem_id=KEM_P256, kdf_id=KDF_HKDF_SHA256, aead_id=AEAD_AES_256_GCM)


def key_block_length(suite: Suite) -> int:
    return _ENC_BYTES[suite.kem_id] + FILE_KEY_BYTES + _TAG


def _suite(suite: Suite) -> hpke.Suite:
    kem = hpke.KEM.X25519 if suite.kem_id == KEM_X25519 else hpke.KEM.P256
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def seal_file_key(
    file_key: bytes, public_key: EncryptionPublicKey, suite: Suite, info: bytes
) -> bytes:
    """``enc ‖ ct``: ``file_key`` sealed to ``public_key`` with HPKE base mode and ``info``."""
    if len(file_key) != FILE_KEY_BYTES:
        raise ValueError("a file key has 32 bytes")
    return _suite(suite).encrypt(file_key, public_key, info=info)


def open_file_key(block: bytes, receiver: ReceiverKey, suite: Suite, info: bytes) -> bytes:
    """The file key in ``block``; :class:`NotAddressedToUs` if our key cannot open it."""
    private = receiver.unsafe_private_key
    wanted = KEM_X25519 if isinstance(private, x25519.X25519PrivateKey) else KEM_P256
    if suite.kem_id != wanted or (
        isinstance(private, ec.EllipticCurvePrivateKey)
        and not isinstance(private.curve, ec.SECP256R1)
    ):
        raise NotAddressedToUs(
            f"the key block is for KEM 0x{suite.kem_id:04x}, our key is for 0x{wanted:04x}"
        )
    try:
        key = _suite(suite).decrypt(block, private, info=info)
    except Exception:  # cryptography raises InvalidTag or ValueError: both mean "not ours"
        raise NotAddressedToUs(
            "the key block does not open with our key: the file was sealed to another key, "
            "or its header or key block was altered"
        ) from None
    if len(key) != FILE_KEY_BYTES:
        raise NotAddressedToUs("the key block holds no 32-byte file key")
    return key
