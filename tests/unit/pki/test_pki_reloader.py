"""The certificate reloader as gRPC's fetcher: no change until asked; a bad reload keeps the old."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from pki_testkit import NOW, PASSPHRASE

from shared.pki import CertificateExpired, CertificateReloader, PkiLayout, PkiLayoutError


def test_fetcher_hands_over_new_material_only_after_a_request(pki: Path, tmp_path: Path) -> None:
    served = tmp_path / "server"
    shutil.copytree(PkiLayout(pki).party("server").directory, served)
    reloader = CertificateReloader(served, PASSPHRASE, clock=lambda: NOW)
    assert reloader() is None and reloader.reloads == 0
    reloader.request_reload()
    assert isinstance(reloader(), grpc.ServerCertificateConfiguration)
    assert reloader() is None and reloader.reloads == 1
    assert reloader.material.identity.organisation == "UWV"


def test_failed_reloads_keep_the_material_and_say_why(pki: Path, tmp_path: Path) -> None:
    served = tmp_path / "server"
    shutil.copytree(PkiLayout(pki).party("server").directory, served)
    now = [NOW]
    reloader = CertificateReloader(served, PASSPHRASE, clock=lambda: now[0])
    before = reloader.material
    now[0] = NOW + timedelta(days=365)  # the certificate on disk has expired by now
    reloader.request_reload()
    assert reloader() is None
    assert isinstance(reloader.last_error, CertificateExpired)
    assert reloader.material is before and reloader.reloads == 0
    now[0] = NOW
    (served / "ca.pem").unlink()
    reloader.request_reload()
    assert reloader() is None
    assert "ca.pem: missing" in str(reloader.last_error)
    with pytest.raises(PkiLayoutError, match=r"ca\.pem: missing"):
        reloader.reload_now()
