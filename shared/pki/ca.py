"""A local development certificate authority, made with ``cryptography``'s x509 API.

Stands in for PKIoverheid in the demo and the tests. It issues two profiles:

* **server** (``serverAuth``): SAN ``DNS:localhost``, ``IP:127.0.0.1`` and ``IP:::1`` by
  default, so a client dialling ``localhost:PORT`` verifies the host name;
* **client** (``clientAuth``): an organisation's certificate.

Both carry the organisation as the subject's ``O`` and its OIN (:mod:`shared.pki.oin`) as the
subject's ``serialNumber``, as PKIoverheid organisation certificates do. The role of an
organisation is *not* in the certificate: UWV maps OINs to roles in its key registry
(:meth:`shared.crypto.registry.Registry.roles_for`), so a role change needs no new certificate.

The profile follows RFC 5280 closely enough for ``cryptography``'s own path validation
(:func:`shared.pki.identity.verify_identity`): a critical ``basicConstraints``, ``keyUsage``,
subject and authority key identifiers on every certificate. The CA's private key is written
only inside its directory (:mod:`shared.pki.layout`), encrypted.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.pki.errors import CertificateError
from shared.pki.keystore import PrivateKey
from shared.pki.oin import check_oin

DEFAULT_DNS_NAMES: tuple[str, ...] = ("localhost",)
DEFAULT_IP_ADDRESSES: tuple[str, ...] = ("127.0.0.1", "::1")
MAX_DAYS = 3650
BACKDATE = timedelta(minutes=5)
"""Certificates start a little before ``now`` so a peer whose clock lags slightly accepts them."""


class Profile(enum.StrEnum):
    """What a leaf certificate is for (its extended key usage)."""

    SERVER = "server"
    CLIENT = "client"
    SEALING = "sealing"
    """An encryption key for sealed files (``shared.sealed``): keyUsage keyAgreement only, no
    extended key usage; it can neither sign nor authenticate a TLS connection."""


@dataclass(frozen=True)
class Organisation:
    """Who a certificate is issued to: the organisation's name and its OIN (checked)."""

    name: str
    oin: str

    def __post_init__(self) -> None:
        check_oin(self.oin, where=f"OIN of {self.name!r}")
        if not self.name.strip() or len(self.name) > 64:
            raise CertificateError(
                f"organisation name {self.name!r}: expected 1 to 64 characters (X.520 ub-name)"
            )


def _name(org: Organisation, common_name: str) -> x509.Name:
    if not common_name.strip() or len(common_name) > 64:
        raise CertificateError(f"common name {common_name!r}: expected 1 to 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org.name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, org.oin),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _window(now: datetime, days: int) -> tuple[datetime, datetime]:
    if now.tzinfo is None:
        raise CertificateError("`now` must be timezone-aware (UTC)")
    if not 1 <= days <= MAX_DAYS:
        raise CertificateError(f"validity of {days} days: expected 1 to {MAX_DAYS}")
    return now - BACKDATE, now + timedelta(days=days)


class CertificateAuthority:
    """A CA certificate with its private key; issues server and client certificates."""

    def __init__(self, certificate: x509.Certificate, key: PrivateKey) -> None:
        if certificate.public_key() != key.public_key():
            raise CertificateError("the CA key does not belong to the CA certificate")
        self.certificate = certificate
        self._key = key

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.certificate.subject.rfc4514_string()!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a CA is not pickled; open it from its directory with the passphrase")

    @property
    def unsafe_key(self) -> PrivateKey:
        """The CA's private key: only to save it inside the CA directory."""
        return self._key

    @classmethod
    def create(
        cls, org: Organisation, *, now: datetime, days: int, key: PrivateKey
    ) -> CertificateAuthority:
        """A new self-signed root CA for ``org``, valid ``days`` from ``now``."""
        start, end = _window(now, days)
        name = _name(org, f"{org.name} development CA")
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        org: Organisation,
        *,
        profile: Profile,
        now: datetime,
        days: int,
        common_name: str | None = None,
        dns_names: Sequence[str] = DEFAULT_DNS_NAMES,
        ip_addresses: Sequence[str] = DEFAULT_IP_ADDRESSES,
    ) -> x509.Certificate:
        """A leaf certificate for ``org`` with ``profile``'s key usage, valid ``days`` from ``now``.

        ``dns_names`` and ``ip_addresses`` are used for the server profile only (its SAN).
        ``now`` may lie in the past or future: tests use that for expired and not-yet-valid
        certificates. The validity is clipped to the CA's own.
        """
        start, end = _window(now, days)
        end = min(end, self.certificate.not_valid_after_utc)
        if end <= start:
            raise CertificateError("the CA expires before the certificate would start")
        eku = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if profile is Profile.SERVER
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        sealing = profile is Profile.SEALING
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(org, common_name or org.name))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not sealing,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=sealing,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if not sealing:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        if profile is Profile.SERVER:
            try:
                san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
                san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
            except ValueError as exc:
                raise CertificateError(f"server certificate address: {exc}") from None
            if not san:
                raise CertificateError("a server certificate needs at least one DNS name or IP")
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self._key, hashes.SHA256())
