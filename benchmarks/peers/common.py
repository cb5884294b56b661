"""The job every peer runs and the JSON it reports; standalone (imports only the stdlib)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

TOTAL_BAND_CENTS = 24 * 2**20
"""|n·T| <= 24 months · 2**20 cents, as in shared.he.strict."""


def synthetic_job(count: int, seed: int) -> tuple[list[int], list[int]]:
    """Total thresholds X and household totals S (cents, 12 months), 1 in 10 at X or X ± 1."""
    rng = random.Random(seed)
    xs: list[int] = []
    ss: list[int] = []
    for i in range(count):
        x = 12 * (rng.choice((150_107, 205_348)) - rng.randrange(90_000, 140_000))
        s = x + rng.randrange(-1, 2) if i % 10 == 0 else x + 12 * round(rng.gauss(0, 40_000))
        xs.append(x)
        ss.append(s)
    return xs, ss


@dataclass(frozen=True)
class PeerResult:
    """One peer's measurement; ``households`` is what actually ran (rates are extrapolated)."""

    name: str
    privacy: str
    households: int
    seconds: float
    correct: int
    upload_bytes_per_household: float
    download_bytes_per_household: float
    key_bytes: int
    note: str = ""

    def emit(self) -> None:
        print(json.dumps(asdict(self)))
