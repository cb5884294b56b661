"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0).

The signature covers the pre-authentication encoding ``PAE(type, body) = "DSSEv1" SP
LEN(type) SP type SP LEN(body) SP body`` (lengths as ASCII decimals), so a signature over
a rule bundle can never be replayed as an approval or a run statement: the payload type is
signed too. The JSON form is ``{"payload": b64, "payloadType": ..., "signatures":
[{"keyid": ..., "sig": b64}]}`` as in the DSSE spec.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

from shared.crypto.errors import SignatureInvalid
from shared.crypto.keys import SigningKey
from shared.crypto.registry import KeyEntry, Registry, Role

MAX_ENVELOPE_BYTES: Final = 2_000_000
"""A rule bundle is a few kilobytes; a statement less. Two megabytes bounds what we parse."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A payload, its type, and signatures ``(key id, signature)`` over its PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "payloadType": self.payload_type,
                "signatures": [
                    {"keyid": k, "sig": base64.b64encode(s).decode("ascii")}
                    for k, s in self.signatures
                ],
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse the JSON form; anything else raises :class:`SignatureInvalid`."""
        if len(data) > MAX_ENVELOPE_BYTES:
            raise SignatureInvalid(
                f"the envelope has {len(data)} bytes, at most {MAX_ENVELOPE_BYTES}"
            )
        try:
            doc = json.loads(data)
            sigs = tuple(
                (str(s["keyid"]), base64.b64decode(s["sig"], validate=True))
                for s in doc["signatures"]
            )
            env = cls(
                str(doc["payloadType"]), base64.b64decode(doc["payload"], validate=True), sigs
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SignatureInvalid(
                "not a signed envelope (expected DSSE JSON with payload, payloadType, signatures)"
            ) from None
        return env

    def verify(self, registry: Registry, role: Role, payload_type: str) -> KeyEntry:
        """The registered key with ``role`` whose signature verifies; else a clear refusal.

        Refuses: a wrong payload type, no signatures, a signature that does not verify, and a
        valid signature by a key without ``role`` (:class:`~shared.crypto.errors.RoleError`).
        """
        if self.payload_type != payload_type:
            raise SignatureInvalid(
                f"the envelope carries {self.payload_type!r}, expected {payload_type!r}"
            )
        if not self.signatures:
            raise SignatureInvalid("the envelope is not signed")
        message = pae(self.payload_type, self.payload)
        last: Exception | None = None
        for key_id, sig in self.signatures:
            try:
                entry = registry.entry(key_id)
            except Exception as exc:
                last = exc
                continue
            if not entry.key.verify(sig, message):
                last = SignatureInvalid(f"the signature of key {key_id} ({entry.name}) is invalid")
                continue
            return registry.require(key_id, role)
        assert last is not None
        raise last


def sign(payload_type: str, payload: bytes, key: SigningKey) -> Envelope:
    """An envelope with one signature by ``key``."""
    return Envelope(payload_type, payload, ((key.key_id, key.sign(pae(payload_type, payload))),))
