"""The key block's HPKE against RFC 9180's own test vectors (Appendix A, JSON form).

``tests/data/rfc9180/base_mode_vectors.json`` holds the base-mode (mode 0) vectors of the
suites the format uses or could use: DHKEM(X25519) 0x0020 and DHKEM(P-256) 0x0010 with
HKDF-SHA256 and AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305, first three encryptions each;
taken from the official test-vectors.json (see the README beside it).

The vectors pin ``cryptography``'s HPKE (which the format calls) to the standard: the RFC's
recipient key opens the RFC's ``enc`` and ciphertexts to the RFC's plaintexts, with the RFC's
``info`` and ``aad``. Encryption cannot be replayed from a vector (the ephemeral key is drawn
inside the library), so the seal direction is checked by round trip and by the size of
``enc``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.sealed import ReceiverKey, Recipient
from shared.sealed._hpke import key_block_length, open_file_key, seal_file_key, suite_for
from shared.sealed.errors import NotAddressedToUs

VECTORS = Path(__file__).resolve().parents[2] / "data" / "rfc9180" / "base_mode_vectors.json"
KEMS = {0x0010: hpke.KEM.P256, 0x0020: hpke.KEM.X25519}
AEADS = {
    0x0001: hpke.AEAD.AES_128_GCM,
    0x0002: hpke.AEAD.AES_256_GCM,
    0x0003: hpke.AEAD.CHACHA20_POLY1305,
}


def _vectors() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return data


def _private(v: dict[str, Any]) -> x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey:
    raw = bytes.fromhex(v["skRm"])
    if v["kem_id"] == 0x0020:
        return x25519.X25519PrivateKey.from_private_bytes(raw)
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def _public_raw(key: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(key, x25519.X25519PrivateKey):
        return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _id(v: dict[str, Any]) -> str:
    return f"kem{v['kem_id']:#06x}-kdf{v['kdf_id']:#06x}-aead{v['aead_id']:#06x}"


def test_the_vector_file_has_the_suites_the_format_uses() -> None:
    suites = {(v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) for v in _vectors()}
    assert (0, 0x0020, 0x0001, 0x0002) in suites
    assert (0, 0x0010, 0x0001, 0x0002) in suites


@pytest.mark.parametrize("v", _vectors(), ids=_id)
def test_recipient_key_matches_the_vector(v: dict[str, Any]) -> None:
    assert _public_raw(_private(v)).hex() == v["pkRm"]


@pytest.mark.parametrize("v", _vectors(), ids=_id)
def test_first_encryption_opens_to_the_vector_plaintext(v: dict[str, Any]) -> None:
    suite = hpke.Suite(KEMS[v["kem_id"]], hpke.KDF.HKDF_SHA256, AEADS[v["aead_id"]])
    first = v["encryptions"][0]  # sequence number 0: what single-shot Open (§6.1) is
    blob = bytes.fromhex(v["enc"]) + bytes.fromhex(first["ct"])
    plaintext = rust_openssl.hpke._decrypt_with_aad(
        suite,
        blob,
        _private(v),
        info=bytes.fromhex(v["info"]),
        aad=bytes.fromhex(first["aad"]),
    )
    assert plaintext.hex() == first["pt"]


@pytest.mark.parametrize("v", _vectors(), ids=_id)
def test_an_altered_vector_ciphertext_is_refused(v: dict[str, Any]) -> None:
    suite = hpke.Suite(KEMS[v["kem_id"]], hpke.KDF.HKDF_SHA256, AEADS[v["aead_id"]])
    first = v["encryptions"][0]
    ct = bytearray(bytes.fromhex(first["ct"]))
    ct[0] ^= 1
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag or ValueError, either refuses
        rust_openssl.hpke._decrypt_with_aad(
            suite,
            bytes.fromhex(v["enc"]) + bytes(ct),
            _private(v),
            info=bytes.fromhex(v["info"]),
            aad=bytes.fromhex(first["aad"]),
        )


@pytest.mark.parametrize("p256", [False, True], ids=["x25519", "p256"])
def test_key_block_round_trip_and_length(p256: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1()) if p256 else x25519.X25519PrivateKey.generate()
    receiver = ReceiverKey(key, "00000001811128806000")
    recipient = Recipient("00000001811128806000", key.public_key())
    suite = suite_for(recipient.public_key)
    assert suite.kem_id == (0x0010 if p256 else 0x0020)
    block = seal_file_key(b"k" * 32, recipient.public_key, suite, info=b"info")
    assert len(block) == key_block_length(suite)
    assert open_file_key(block, receiver, suite, info=b"info") == b"k" * 32
    with pytest.raises(NotAddressedToUs):
        open_file_key(block, receiver, suite, info=b"other info")
