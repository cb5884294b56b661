"""Pin the public API of shared.pki: a change to __all__ is a deliberate decision."""

from __future__ import annotations

import shared.pki
from shared.errors import Error
from shared.pki import errors


def test_all_is_pinned() -> None:
    assert sorted(shared.pki.__all__) == sorted(
        [
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
    )
    for name in shared.pki.__all__:
        assert hasattr(shared.pki, name)


def test_every_error_is_a_domain_error() -> None:
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, Error), name


def test_the_registry_does_not_load_grpc() -> None:
    """The key registry needs only the OIN check; shared.pki loads its gRPC part on use."""
    import subprocess
    import sys

    code = "import sys, shared.crypto.registry; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
