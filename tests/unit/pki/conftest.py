"""One development PKI per module, issued at a fixed time (the clock is injected)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pki_testkit import NOW, PASSPHRASE

from shared.pki import init_dev_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "dev"
    init_dev_pki(root, PASSPHRASE, now=NOW, days=30)
    return root


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, unrelated CA with the same organisations."""
    root = tmp_path_factory.mktemp("pki") / "other"
    init_dev_pki(root, PASSPHRASE, now=NOW, days=30)
    return root
