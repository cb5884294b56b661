"""Create a development PKI: the CA, UWV's server certificate and the organisations' certificates.

What ``uwv-server pki init`` and ``pki issue`` do, as functions with the clock and the
passphrase passed in. The OINs of :data:`DEV_PARTIES` are made up: they have the
20-digit form but are not registered in the COR; never use them outside development.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared.pki.ca import (
    DEFAULT_DNS_NAMES,
    DEFAULT_IP_ADDRESSES,
    CertificateAuthority,
    Organisation,
    Profile,
)
from shared.pki.errors import PkiLayoutError
from shared.pki.identity import Identity, identity_of, load_certificate
from shared.pki.keystore import generate_key, load_private_key, save_private_key
from shared.pki.layout import PkiLayout

UWV: Final = Organisation("UWV", "00000099000000000010")
SVB: Final = Organisation("SVB", "00000099000000000020")
ADR: Final = Organisation("ADR", "00000099000000000030")
"""Fictitious OINs (20 digits, not in the COR) for UWV, SVB and an auditor (Auditdienst Rijk)."""


@dataclass(frozen=True)
class PartySpec:
    """One certificate to issue: directory name, organisation, profile, common name, and for
    the server profile the host names and addresses of its subjectAltName."""

    name: str
    organisation: Organisation
    profile: Profile
    common_name: str
    dns_names: tuple[str, ...] = DEFAULT_DNS_NAMES
    ip_addresses: tuple[str, ...] = DEFAULT_IP_ADDRESSES


DEV_PARTIES: Final = (
    PartySpec("server", UWV, Profile.SERVER, "localhost"),
    PartySpec("svb", SVB, Profile.CLIENT, "svb-client"),
    PartySpec("auditor", ADR, Profile.CLIENT, "adr-auditor"),
    PartySpec("uwv-operator", UWV, Profile.CLIENT, "uwv-operator"),
    PartySpec("uwv-sealing", UWV, Profile.SEALING, "uwv-sealed-files"),
    PartySpec("svb-sealing", SVB, Profile.SEALING, "svb-sealed-files"),
)
"""The two ``sealing`` parties hold the encryption keys of sealed files (docs/sealed-files.md):
a file to UWV is sealed to ``uwv-sealing/cert.pem``, one to SVB to ``svb-sealing/cert.pem``."""


@dataclass(frozen=True)
class Issued:
    """A certificate written to a party directory."""

    name: str
    profile: Profile
    directory: Path
    identity: Identity


def init_dev_pki(
    root: Path, passphrase: bytes, *, now: datetime, days: int, force: bool = False
) -> list[Issued]:
    """Write a new CA and the :data:`DEV_PARTIES` certificates under ``root``.

    Refuses if ``root`` exists unless ``force``; with ``force`` the files this writes are
    replaced and anything else in ``root`` is left alone.
    """
    if root.exists() and not force:
        raise PkiLayoutError(f"{root} exists already; give --force to replace its PKI")
    layout = PkiLayout(root)
    layout.ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = CertificateAuthority.create(UWV, now=now, days=days, key=generate_key())
    save_private_key(ca.unsafe_key, layout.ca_key, passphrase, overwrite=force)
    _write_public(layout.ca_cert, _pem(ca.certificate))
    return [
        _issue(layout, ca, spec, passphrase, now=now, days=days, overwrite=force)
        for spec in DEV_PARTIES
    ]


def open_ca(root: Path, passphrase: bytes) -> CertificateAuthority:
    """The CA of the PKI at ``root`` (its key opened with ``passphrase``)."""
    layout = PkiLayout(root)
    if not layout.ca_cert.exists() or not layout.ca_key.exists():
        raise PkiLayoutError(f"{root}: no CA here (expected {layout.ca_cert} and {layout.ca_key})")
    cert = load_certificate(layout.ca_cert.read_bytes(), where=str(layout.ca_cert))
    return CertificateAuthority(cert, load_private_key(layout.ca_key, passphrase))


def issue_party(
    root: Path,
    passphrase: bytes,
    spec: PartySpec,
    *,
    now: datetime,
    days: int,
    force: bool = False,
) -> Issued:
    """One more certificate from the CA at ``root``, into ``root/<spec.name>/``."""
    layout = PkiLayout(root)
    ca = open_ca(root, passphrase)
    if layout.party(spec.name).directory.exists() and not force:
        raise PkiLayoutError(
            f"{layout.party(spec.name).directory} exists already; give --force to replace it"
        )
    return _issue(layout, ca, spec, passphrase, now=now, days=days, overwrite=force)


def _issue(
    layout: PkiLayout,
    ca: CertificateAuthority,
    spec: PartySpec,
    passphrase: bytes,
    *,
    now: datetime,
    days: int,
    overwrite: bool,
) -> Issued:
    files = layout.party(spec.name)
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    cert = ca.issue(
        key.public_key(),
        spec.organisation,
        profile=spec.profile,
        now=now,
        days=days,
        common_name=spec.common_name,
        dns_names=spec.dns_names,
        ip_addresses=spec.ip_addresses,
    )
    save_private_key(key, files.key, passphrase, overwrite=overwrite)
    _write_public(files.cert, _pem(cert))
    _write_public(files.ca_bundle, _pem(ca.certificate))
    return Issued(spec.name, spec.profile, files.directory, identity_of(cert))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
