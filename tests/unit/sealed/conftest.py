from __future__ import annotations

import pytest
from sealed_testkit import Ca


@pytest.fixture(scope="session")
def ca() -> Ca:
    return Ca.create()
