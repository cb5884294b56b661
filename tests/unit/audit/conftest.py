"""Fixtures for the audit log tests (helpers live in audit_testkit)."""

from __future__ import annotations

import pytest
from audit_testkit import ORIGIN, fixed_key

from shared.audit import SIG_TYPE_COSIGNATURE_V1, NoteSigner


@pytest.fixture
def log_signer() -> NoteSigner:
    return NoteSigner(ORIGIN, fixed_key(1))


@pytest.fixture
def witness_signer() -> NoteSigner:
    return NoteSigner("ap.example/witness", fixed_key(2), SIG_TYPE_COSIGNATURE_V1)
