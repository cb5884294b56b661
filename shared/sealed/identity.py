"""Who signs and who can open: X.509 identities with the OIN in the subject ``serialNumber``.

* A **sender** signs with the private key of its certificate: Ed25519 (RFC 8032, pure
  Ed25519) or ECDSA over P-256 with SHA-256 (FIPS 186-5, signature DER-encoded as in
  RFC 5758 §3.2). Its certificate chain (leaf first) travels in the header.
* A **recipient** is an encryption key the sender encrypts to: X25519 (RFC 7748) or P-256,
  certified by a certificate whose ``keyUsage`` allows ``keyAgreement`` (RFC 5280 §4.2.1.3),
  with the same OIN in its subject. Its id is the SHA-256 of its SubjectPublicKeyInfo.
  Encryption and signing keys are separate keys, as RFC 5280 and PKIoverheid keep them.
* A receiver checks the sender with a :class:`SenderVerifier`: the chain to its trust
  anchors at an injected ``now``, the OIN, and whether that OIN may send this kind of file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from shared.sealed.errors import SignerRefused
from shared.sealed.header import MessageKind

SigningPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
EncryptionPublicKey = x25519.X25519PublicKey | ec.EllipticCurvePublicKey
EncryptionPrivateKey = x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey


def oin_of(cert: x509.Certificate) -> str:
    """The OIN in the subject's ``serialNumber`` (20 digits); :class:`SignerRefused` if absent."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    subject = cert.subject.rfc4514_string()
    if len(values) != 1:
        raise SignerRefused(
            f"certificate {subject}: expected one subject serialNumber with the OIN, "
            f"found {len(values)}"
        )
    oin = str(values[0].value)
    if len(oin) != 20 or not (oin.isascii() and oin.isdigit()):
        raise SignerRefused(f"certificate {subject}: serialNumber {oin!r} is not a 20-digit OIN")
    return oin


def key_id(public_key: EncryptionPublicKey) -> str:
    """SHA-256 over the key's SubjectPublicKeyInfo (DER), lower-case hex."""
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _check_encryption_key(key: object, where: str) -> None:
    if isinstance(key, x25519.X25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return
    raise SignerRefused(f"{where}: the key is not X25519 or P-256, so no file can be sealed to it")


@dataclass(frozen=True)
class Recipient:
    """A public encryption key and the OIN it belongs to: what a sender seals a file to."""

    oin: str
    public_key: EncryptionPublicKey

    def __post_init__(self) -> None:
        _check_encryption_key(self.public_key, f"recipient {self.oin}")

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> Recipient:
        """The recipient a certificate names; its ``keyUsage`` must allow ``keyAgreement``.

        The certificate's chain is the caller's to verify (it comes from the receiver's
        published configuration, not from a file)."""
        where = f"encryption certificate {cert.subject.rfc4514_string()}"
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise SignerRefused(f"{where}: has no keyUsage; keyAgreement is required") from None
        if not usage.key_agreement:
            raise SignerRefused(f"{where}: its keyUsage does not allow keyAgreement")
        public = cert.public_key()
        _check_encryption_key(public, where)
        assert isinstance(public, x25519.X25519PublicKey | ec.EllipticCurvePublicKey)
        return cls(oin=oin_of(cert), public_key=public)


class ReceiverKey:
    """The receiver's private encryption key, with its OIN; never printed, never pickled."""

    def __init__(self, private_key: EncryptionPrivateKey, oin: str) -> None:
        _check_encryption_key(private_key.public_key(), f"receiver {oin}")
        self._private = private_key
        self.recipient = Recipient(oin=oin, public_key=private_key.public_key())

    def __repr__(self) -> str:
        return f"ReceiverKey(oin={self.recipient.oin}, key_id={self.recipient.key_id[:16]}…)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a receiver key is not pickled")

    @property
    def oin(self) -> str:
        return self.recipient.oin

    @property
    def key_id(self) -> str:
        return self.recipient.key_id

    @property
    def unsafe_private_key(self) -> EncryptionPrivateKey:
        """For :mod:`shared.sealed._hpke` only."""
        return self._private


class SenderKey:
    """A signing key and the certificate chain (leaf first) that names its OIN."""

    def __init__(self, private_key: SigningPrivateKey, chain: Sequence[x509.Certificate]) -> None:
        if not chain:
            raise SignerRefused("a sender needs its certificate (leaf first)")
        leaf = chain[0]
        spki = PublicFormat.SubjectPublicKeyInfo
        mine = private_key.public_key().public_bytes(Encoding.DER, spki)
        theirs = leaf.public_key().public_bytes(Encoding.DER, spki)
        if mine != theirs:
            raise SignerRefused("the signing key does not belong to the sender certificate")
        if isinstance(private_key, ec.EllipticCurvePrivateKey) and not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise SignerRefused("an ECDSA sender key must be on P-256")
        self._private = private_key
        self.chain = tuple(chain)
        self.oin = oin_of(leaf)

    def __repr__(self) -> str:
        return f"SenderKey(oin={self.oin})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a sender key is not pickled")

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            return self._private.sign(data)
        return self._private.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_signature(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """True iff ``signature`` over ``data`` verifies under the certificate's key."""
    try:
        key = cert.public_key()
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Party:
    """A sender whose certificate verified: its OIN, organisation and certificate fingerprint."""

    oin: str
    organisation: str
    subject: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.organisation} (OIN {self.oin})"


class SenderVerifier(Protocol):
    """Decides whether a certificate chain is a sender this receiver accepts for ``kind``,
    and whether a sender's reply certificate is an encryption key of that same sender."""

    def verify(self, chain: Sequence[x509.Certificate], kind: MessageKind) -> Party: ...

    def verify_recipient(self, cert: x509.Certificate, oin: str) -> Recipient: ...


def _digital_signature(
    _policy: object, cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is None or not usage.digital_signature:
        raise ValueError("the sender certificate's keyUsage must allow digitalSignature")


def _key_agreement(_policy: object, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is None or not usage.key_agreement:
        raise ValueError("an encryption certificate's keyUsage must allow keyAgreement")


class TrustedSenders:
    """A :class:`SenderVerifier`: RFC 5280 path validation to ``anchors`` at ``clock()``, and an
    authorisation table OIN → kinds it may send.

    The path rules are ``cryptography``'s (RFC 5280 with the CA/B web-PKI profile for CA
    certificates); for the leaf, ``keyUsage`` must allow ``digitalSignature`` and any extended
    key usage is accepted (a sender signs with the certificate it also uses for TLS, client or
    server).
    """

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        authorised: Mapping[str, frozenset[MessageKind]],
        clock: Callable[[], datetime],
    ) -> None:
        if not anchors:
            raise SignerRefused("no trusted CA certificates given")
        self._store = Store(list(anchors))
        self._authorised = dict(authorised)
        self._clock = clock

    def _path(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        what: str,
        usage: Callable[[object, x509.Certificate, x509.KeyUsage | None], None],
    ) -> None:
        subject = leaf.subject.rfc4514_string()
        now = self._clock()
        if now > leaf.not_valid_after_utc:
            raise SignerRefused(
                f"{what} {subject} expired at "
                f"{leaf.not_valid_after_utc.isoformat()} (checked at {now.isoformat()})"
            )
        if now < leaf.not_valid_before_utc:
            raise SignerRefused(
                f"{what} {subject} is not valid before "
                f"{leaf.not_valid_before_utc.isoformat()} (checked at {now.isoformat()})"
            )
        ee = ExtensionPolicy.permit_all().require_present(
            x509.KeyUsage, Criticality.AGNOSTIC, usage
        )
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, list(intermediates))
        except VerificationError as exc:
            raise SignerRefused(f"{what} {subject} does not chain to a trusted CA: {exc}") from None

    def verify_recipient(self, cert: x509.Certificate, oin: str) -> Recipient:
        """The recipient an encryption certificate names, if it chains to our anchors at
        ``clock()``, allows keyAgreement and belongs to ``oin``."""
        self._path(cert, (), "encryption certificate", _key_agreement)
        recipient = Recipient.from_certificate(cert)
        if recipient.oin != oin:
            raise SignerRefused(
                f"the reply certificate is of OIN {recipient.oin}, the sender is OIN {oin}"
            )
        return recipient

    def verify(self, chain: Sequence[x509.Certificate], kind: MessageKind) -> Party:
        if not chain:
            raise SignerRefused("the file carries no sender certificate")
        leaf, *intermediates = chain
        subject = leaf.subject.rfc4514_string()
        self._path(leaf, intermediates, "sender certificate", _digital_signature)
        oin = oin_of(leaf)
        allowed = self._authorised.get(oin, frozenset())
        if kind not in allowed:
            shown = ", ".join(sorted(k.value for k in allowed)) or "nothing"
            raise SignerRefused(
                f"sender {subject} (OIN {oin}) is not authorised to send a {kind.value}; "
                f"it may send: {shown}"
            )
        orgs = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return Party(
            oin=oin,
            organisation=str(orgs[0].value) if orgs else subject,
            subject=subject,
            fingerprint=hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
        )
