"""The development CA: what it issues, and what verification refuses (clock injected)."""

from __future__ import annotations

import ipaddress
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pki_testkit import NOW, PASSPHRASE

from shared.pki import (
    ADR,
    SVB,
    UWV,
    CertificateAuthority,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    Organisation,
    PartySpec,
    PkiLayout,
    PkiLayoutError,
    Profile,
    UntrustedCertificate,
    generate_key,
    init_dev_pki,
    issue_party,
    load_certificate,
    open_ca,
    peer_identity,
    verify_identity,
)


def _cert(root: Path, party: str) -> bytes:
    return PkiLayout(root).party(party).cert.read_bytes()


def _anchors(root: Path) -> list[x509.Certificate]:
    return [load_certificate(PkiLayout(root).ca_cert.read_bytes())]


def test_init_writes_the_documented_layout(pki: Path) -> None:
    layout = PkiLayout(pki)
    assert layout.ca_cert.is_file() and layout.ca_key.is_file()
    for party in ("server", "svb", "auditor", "uwv-operator"):
        files = layout.party(party)
        assert files.cert.is_file() and files.key.is_file()
        assert files.ca_bundle.read_bytes() == layout.ca_cert.read_bytes()
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.ca_key.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in layout.ca_key.read_bytes()


def test_client_certificates_round_trip_to_identities(pki: Path) -> None:
    for party, org in (("svb", SVB), ("auditor", ADR), ("uwv-operator", UWV)):
        ident = verify_identity(_cert(pki, party), trust_anchors=_anchors(pki), now=NOW)
        assert (ident.oin, ident.organisation) == (org.oin, org.name)
        assert f"2.5.4.5={org.oin}" in ident.subject
        assert len(ident.fingerprint) == 64
        assert ident.not_before < NOW < ident.not_after
        assert peer_identity(_cert(pki, party), now=NOW) == ident


def test_der_and_pem_give_the_same_identity(pki: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = _cert(pki, "svb")
    der = load_certificate(pem).public_bytes(Encoding.DER)
    assert peer_identity(der, now=NOW) == peer_identity(pem, now=NOW)


def test_certificates_carry_no_role(pki: Path) -> None:
    cert = load_certificate(_cert(pki, "svb"))
    oids = {a.oid for a in cert.subject}
    assert oids == {
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.SERIAL_NUMBER,
        NameOID.COMMON_NAME,
    }
    assert NameOID.ORGANIZATIONAL_UNIT_NAME not in oids and NameOID.TITLE not in oids


def test_server_certificate_profile(pki: Path) -> None:
    cert = load_certificate(_cert(pki, "server"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client = load_certificate(_cert(pki, "svb"))
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_certificate_is_not_a_client_certificate(pki: Path) -> None:
    with pytest.raises(UntrustedCertificate, match="client authentication"):
        verify_identity(_cert(pki, "server"), trust_anchors=_anchors(pki), now=NOW)


def test_certificate_from_another_ca_fails_verification(pki: Path, other_pki: Path) -> None:
    with pytest.raises(UntrustedCertificate, match="not issued by a trusted CA"):
        verify_identity(_cert(other_pki, "svb"), trust_anchors=_anchors(pki), now=NOW)


def test_expired_and_not_yet_valid_are_distinct_errors(pki: Path) -> None:
    pem = _cert(pki, "svb")
    later, earlier = NOW + timedelta(days=31), NOW - timedelta(days=1)
    with pytest.raises(CertificateExpired, match="expired at 2026-03-31"):
        peer_identity(pem, now=later)
    with pytest.raises(CertificateExpired):
        verify_identity(pem, trust_anchors=_anchors(pki), now=later)
    with pytest.raises(CertificateNotYetValid, match="not valid before 2026-03-01"):
        peer_identity(pem, now=earlier)
    with pytest.raises(CertificateNotYetValid):
        verify_identity(pem, trust_anchors=_anchors(pki), now=earlier)
    assert not issubclass(CertificateExpired, CertificateNotYetValid)
    assert not issubclass(CertificateNotYetValid, CertificateExpired)


def test_naive_clock_is_refused(pki: Path) -> None:
    with pytest.raises(CertificateError, match="timezone-aware"):
        peer_identity(_cert(pki, "svb"), now=NOW.replace(tzinfo=None))


def test_garbage_and_oversized_certificates(pki: Path) -> None:
    with pytest.raises(CertificateError, match="not a PEM or DER"):
        peer_identity(b"not a certificate", now=NOW)
    with pytest.raises(CertificateError, match="larger than"):
        peer_identity(b"0" * 100_000, now=NOW)


def test_certificate_without_oin_is_refused() -> None:
    key = generate_key()
    ca = CertificateAuthority.create(UWV, now=NOW, days=10, key=key)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Nobody")])
    from cryptography.hazmat.primitives import hashes

    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.certificate.subject)
        .public_key(generate_key().public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    with pytest.raises(CertificateError, match="serialNumber holding the organisation's OIN"):
        peer_identity(leaf.public_bytes(Encoding.PEM), now=NOW)


def test_organisation_checks_its_oin() -> None:
    from shared.pki import OinError

    with pytest.raises(OinError, match="OIN of 'X'"):
        Organisation("X", "123")


def test_validity_bounds_are_checked() -> None:
    with pytest.raises(CertificateError, match="1 to 3650"):
        CertificateAuthority.create(UWV, now=NOW, days=0, key=generate_key())


def test_leaf_validity_is_clipped_to_the_ca() -> None:
    ca = CertificateAuthority.create(UWV, now=NOW, days=10, key=generate_key())
    leaf = ca.issue(generate_key().public_key(), SVB, profile=Profile.CLIENT, now=NOW, days=365)
    assert leaf.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_init_refuses_an_existing_directory_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    init_dev_pki(root, PASSPHRASE, now=NOW, days=5)
    old = _cert(root, "svb")
    with pytest.raises(PkiLayoutError, match="exists already; give --force"):
        init_dev_pki(root, PASSPHRASE, now=NOW, days=5)
    (root / "notes.txt").write_text("mine")
    init_dev_pki(root, PASSPHRASE, now=NOW, days=5, force=True)
    assert _cert(root, "svb") != old
    assert (root / "notes.txt").read_text() == "mine"
    verify_identity(_cert(root, "svb"), trust_anchors=_anchors(root), now=NOW)


def test_issue_one_more_organisation(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    init_dev_pki(root, PASSPHRASE, now=NOW, days=5)
    org = Organisation("Gemeente Voorbeeld", "00000099000000000099")
    spec = PartySpec("gemeente", org, Profile.CLIENT, "gemeente-client")
    issued = issue_party(root, PASSPHRASE, spec, now=NOW, days=5)
    assert issued.identity.oin == org.oin
    ident = verify_identity(_cert(root, "gemeente"), trust_anchors=_anchors(root), now=NOW)
    assert ident.organisation == "Gemeente Voorbeeld"
    with pytest.raises(PkiLayoutError, match="exists already"):
        issue_party(root, PASSPHRASE, spec, now=NOW, days=5)


def test_ca_key_needs_the_passphrase(pki: Path) -> None:
    from shared.pki import KeyAtRestError

    with pytest.raises(KeyAtRestError, match="wrong passphrase"):
        open_ca(pki, b"not the passphrase")
    assert open_ca(pki, PASSPHRASE).certificate == _anchors(pki)[0]


def test_party_names_are_plain_directory_names(tmp_path: Path) -> None:
    for bad in ("ca", "..", "a/b", "", "x" * 65):
        with pytest.raises(PkiLayoutError):
            PkiLayout(tmp_path).party(bad)
