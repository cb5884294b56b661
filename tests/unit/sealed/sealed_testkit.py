"""Test identities for sealed files: a development CA, sender and receiver certificates.

Made with ``cryptography``'s x509 API directly, independent of :mod:`shared.pki`, so the
format's tests do not depend on how the project's CA issues certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.sealed import MessageKind, ReceiverKey, Recipient, SenderKey, TrustedSenders

NOW = datetime(2026, 12, 1, 19, 0, 0, tzinfo=UTC)
SVB_OIN = "00000001002220647000"
UWV_OIN = "00000001811128806000"
OTHER_OIN = "00000001234567890000"


def clock() -> datetime:
    return NOW


def _name(org: str, oin: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _usage(*, sign: bool = False, agree: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=agree,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str = "Test CA", oin: str = "00000004000000000000") -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name, oin, name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def issue(
        self,
        public_key: object,
        org: str,
        oin: str,
        *,
        usage: x509.KeyUsage,
        eku: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(org, oin, org))
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def sender(
        self,
        org: str,
        oin: str,
        *,
        ed25519_key: bool = False,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
    ) -> SenderKey:
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            ed25519.Ed25519PrivateKey.generate()
            if ed25519_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        cert = self.issue(
            key.public_key(),
            org,
            oin,
            usage=_usage(sign=True),
            not_before=not_before,
            not_after=not_after,
        )
        return SenderKey(key, [cert])

    def receiver(self, org: str, oin: str, *, p256: bool = False) -> tuple[ReceiverKey, Recipient]:
        key: ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if p256 else x25519.X25519PrivateKey.generate()
        )
        cert = self.issue(key.public_key(), org, oin, usage=_usage(agree=True), eku=())
        return ReceiverKey(key, oin), Recipient.from_certificate(cert)


ALL_KINDS = frozenset(MessageKind)


def trusted(ca: Ca, authorised: dict[str, frozenset[MessageKind]] | None = None) -> TrustedSenders:
    table = authorised or {SVB_OIN: ALL_KINDS, UWV_OIN: ALL_KINDS}
    return TrustedSenders([ca.cert], table, clock)
