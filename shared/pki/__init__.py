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

Names are imported on first use (PEP 562), so that a light user such as the key registry,
which needs only the OIN check, does not load gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_LAZY: dict[str, str] = {
    "ADR": "shared.pki.devpki",
    "AUTH_CONTEXT_PEM_KEY": "shared.pki.identity",
    "CertificateAuthority": "shared.pki.ca",
    "CertificateError": "shared.pki.errors",
    "CertificateExpired": "shared.pki.errors",
    "CertificateNotYetValid": "shared.pki.errors",
    "CertificateReloader": "shared.pki.tls",
    "DEV_PARTIES": "shared.pki.devpki",
    "Identity": "shared.pki.identity",
    "Issued": "shared.pki.devpki",
    "KeyAtRestError": "shared.pki.errors",
    "OIN_LENGTH": "shared.pki.oin",
    "OinError": "shared.pki.errors",
    "Organisation": "shared.pki.ca",
    "PASSPHRASE_ENV": "shared.pki.keystore",
    "PartyFiles": "shared.pki.layout",
    "PartySpec": "shared.pki.devpki",
    "PkiError": "shared.pki.errors",
    "PkiLayout": "shared.pki.layout",
    "PkiLayoutError": "shared.pki.errors",
    "Profile": "shared.pki.ca",
    "SVB": "shared.pki.devpki",
    "TlsMaterial": "shared.pki.tls",
    "UWV": "shared.pki.devpki",
    "UntrustedCertificate": "shared.pki.errors",
    "channel_credentials": "shared.pki.tls",
    "check_oin": "shared.pki.oin",
    "check_validity": "shared.pki.identity",
    "fingerprint": "shared.pki.identity",
    "generate_key": "shared.pki.keystore",
    "identity_from_auth_context": "shared.pki.identity",
    "identity_of": "shared.pki.identity",
    "init_dev_pki": "shared.pki.devpki",
    "issue_party": "shared.pki.devpki",
    "load_certificate": "shared.pki.identity",
    "load_certificates": "shared.pki.identity",
    "load_private_key": "shared.pki.keystore",
    "open_ca": "shared.pki.devpki",
    "peer_identity": "shared.pki.identity",
    "read_passphrase": "shared.pki.keystore",
    "reloading_server_credentials": "shared.pki.tls",
    "save_private_key": "shared.pki.keystore",
    "server_credentials": "shared.pki.tls",
    "verify_identity": "shared.pki.identity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
