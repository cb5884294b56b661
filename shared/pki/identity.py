"""Who is on the other end: an :class:`Identity` from a verified peer certificate.

Two entry points:

* :func:`peer_identity` for a certificate the TLS handshake has already verified against the
  CA bundle (gRPC exposes it in ``context.auth_context()["x509_pem_cert"]``;
  :func:`identity_from_auth_context` reads it from there). It checks the validity window
  against an injected ``now`` (BoringSSL checks it against the wall clock during the handshake;
  this repeats the check at the time the caller decides, testably) and reads the OIN and the
  organisation from the subject.
* :func:`verify_identity` additionally validates the certificate path to trusted CA
  certificates with ``cryptography``'s RFC 5280 verifier (for certificates that did not come
  through a TLS handshake, e.g. a sealed file's signer, and in tests).

Expired and not-yet-valid certificates raise distinct errors whose messages give both times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from shared.pki.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    OinError,
    UntrustedCertificate,
)
from shared.pki.oin import check_oin

AUTH_CONTEXT_PEM_KEY: Final = "x509_pem_cert"
"""The key under which gRPC's ``auth_context()`` holds the peer's verified certificate."""
MAX_CERTIFICATE_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class Identity:
    """An organisation, as named by a verified certificate.

    ``oin`` is the subject's ``serialNumber`` (20 digits), ``organisation`` its ``O``,
    ``subject`` the whole subject (RFC 4514), ``fingerprint`` the SHA-256 of the
    certificate's DER (lower-case hex), and the validity window in UTC.
    """

    oin: str
    organisation: str
    subject: str
    fingerprint: str
    not_before: datetime
    not_after: datetime

    def __str__(self) -> str:
        return f"{self.organisation} (OIN {self.oin})"


def load_certificate(data: bytes, *, where: str = "certificate") -> x509.Certificate:
    """A certificate from PEM or DER bytes; :class:`CertificateError` if it is neither."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"{where}: larger than {MAX_CERTIFICATE_BYTES} bytes")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateError(f"{where}: not a PEM or DER X.509 certificate") from None


def load_certificates(data: bytes, *, where: str = "CA bundle") -> list[x509.Certificate]:
    """All certificates of a PEM bundle; at least one."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"{where}: not a PEM bundle of X.509 certificates") from None
    return certs


def check_validity(cert: x509.Certificate, now: datetime, *, where: str = "certificate") -> None:
    """:class:`CertificateExpired` / :class:`CertificateNotYetValid` unless valid at ``now``."""
    if now.tzinfo is None:
        raise CertificateError("`now` must be timezone-aware (UTC)")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > end:
        raise CertificateExpired(
            f"{where} of {_subject(cert)} expired at {end.isoformat()} "
            f"(checked at {now.astimezone(UTC).isoformat()})"
        )
    if now < start:
        raise CertificateNotYetValid(
            f"{where} of {_subject(cert)} is not valid before {start.isoformat()} "
            f"(checked at {now.astimezone(UTC).isoformat()})"
        )


def identity_of(cert: x509.Certificate, *, where: str = "certificate") -> Identity:
    """The identity a certificate names (no validity or trust check)."""
    subject = cert.subject
    oins = subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    orgs = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(oins) != 1:
        raise CertificateError(
            f"{where} of {_subject(cert)}: expected one subject serialNumber holding the "
            f"organisation's OIN, found {len(oins)}"
        )
    if len(orgs) != 1:
        raise CertificateError(
            f"{where} of {_subject(cert)}: expected one subject O (organisation), found {len(orgs)}"
        )
    try:
        oin = check_oin(str(oins[0].value), where=f"{where} subject serialNumber")
    except OinError as exc:
        raise CertificateError(str(exc)) from None
    return Identity(
        oin=oin,
        organisation=str(orgs[0].value),
        subject=_subject(cert),
        fingerprint=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def peer_identity(data: bytes, *, now: datetime) -> Identity:
    """The identity in a peer certificate the TLS handshake verified (PEM or DER).

    Checks the validity window at ``now`` and the subject's OIN and O; the chain is not
    checked again (use :func:`verify_identity` for a certificate from elsewhere).
    """
    cert = load_certificate(data, where="peer certificate")
    check_validity(cert, now, where="peer certificate")
    return identity_of(cert, where="peer certificate")


def identity_from_auth_context(
    auth_context: Mapping[str, Sequence[bytes]], *, now: datetime
) -> Identity:
    """The identity of a gRPC peer from ``ServicerContext.auth_context()``.

    :class:`UntrustedCertificate` if the peer presented no certificate (a plaintext or
    one-way TLS connection).
    """
    pems = auth_context.get(AUTH_CONTEXT_PEM_KEY) or ()
    if not pems:
        raise UntrustedCertificate(
            "the peer presented no client certificate (mutual TLS is required)"
        )
    return peer_identity(pems[0], now=now)


def verify_identity(
    data: bytes,
    *,
    trust_anchors: Sequence[x509.Certificate],
    now: datetime,
    intermediates: Sequence[x509.Certificate] = (),
) -> Identity:
    """Validate a client certificate's path to ``trust_anchors`` at ``now``; its identity.

    The path rules are RFC 5280's as ``cryptography`` implements them, including the extended
    key usage clientAuth on the leaf. :class:`UntrustedCertificate` says why a path fails.
    """
    cert = load_certificate(data)
    check_validity(cert, now)
    if not trust_anchors:
        raise UntrustedCertificate("no trusted CA certificates given")
    # The Web PKI profile demands a subjectAltName on every leaf; an organisation certificate
    # names its holder in the subject (O, serialNumber = OIN), so the SAN is optional here.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust_anchors)))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(cert, list(intermediates))
    except VerificationError as exc:
        raise UntrustedCertificate(
            f"certificate of {_subject(cert)} is not issued by a trusted CA for client "
            f"authentication: {exc}"
        ) from None
    return identity_of(cert)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the certificate's DER, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()
