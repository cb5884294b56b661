"""Organisation identities between SVB, UWV and auditors: X.509 certificates and mutual TLS.

* :mod:`~shared.pki.oin`: the 20-digit OIN and its check;
* :mod:`~shared.pki.keystore`: ECDSA keys encrypted at rest, and the passphrase reader;
* :mod:`~shared.pki.ca`: a development CA issuing server and client certificates;
* :mod:`~shared.pki.identity`: :class:`Identity` from a verified peer certificate, validity
  at an injected time, path validation to trusted CAs;
* :mod:`~shared.pki.layout`: the directory layout of a PKI and of one party's TLS material;
* :mod:`~shared.pki.devpki`: what ``uwv-server pki init`` / ``pki issue`` write;
* :mod:`~shared.pki.tls`: gRPC server and channel credentials, and SIGHUP reloading.

Roles are not in certificates: :meth:`shared.crypto.registry.Registry.roles_for` maps an
identity's OIN to roles. Errors derive from :class:`~shared.pki.errors.PkiError` (tree in
that module). Usage: docs/identity.md.
"""

from shared.pki.ca import CertificateAuthority, Organisation, Profile
from shared.pki.devpki import (
    ADR,
    DEV_PARTIES,
    SVB,
    UWV,
    Issued,
    PartySpec,
    init_dev_pki,
    issue_party,
    open_ca,
)
from shared.pki.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    KeyAtRestError,
    OinError,
    PkiError,
    PkiLayoutError,
    UntrustedCertificate,
)
from shared.pki.identity import (
    AUTH_CONTEXT_PEM_KEY,
    Identity,
    check_validity,
    fingerprint,
    identity_from_auth_context,
    identity_of,
    load_certificate,
    load_certificates,
    peer_identity,
    verify_identity,
)
from shared.pki.keystore import (
    PASSPHRASE_ENV,
    generate_key,
    load_private_key,
    read_passphrase,
    save_private_key,
)
from shared.pki.layout import PartyFiles, PkiLayout
from shared.pki.oin import OIN_LENGTH, check_oin
from shared.pki.tls import (
    CertificateReloader,
    TlsMaterial,
    channel_credentials,
    reloading_server_credentials,
    server_credentials,
)

__all__ = [
    "ADR",
    "AUTH_CONTEXT_PEM_KEY",
    "DEV_PARTIES",
    "OIN_LENGTH",
    "PASSPHRASE_ENV",
    "SVB",
    "UWV",
    "CertificateAuthority",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateReloader",
    "Identity",
    "Issued",
    "KeyAtRestError",
    "OinError",
    "Organisation",
    "PartyFiles",
    "PartySpec",
    "PkiError",
    "PkiLayout",
    "PkiLayoutError",
    "Profile",
    "TlsMaterial",
    "UntrustedCertificate",
    "channel_credentials",
    "check_oin",
    "check_validity",
    "fingerprint",
    "generate_key",
    "identity_from_auth_context",
    "identity_of",
    "init_dev_pki",
    "issue_party",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "open_ca",
    "peer_identity",
    "read_passphrase",
    "reloading_server_credentials",
    "save_private_key",
    "server_credentials",
    "verify_identity",
]
