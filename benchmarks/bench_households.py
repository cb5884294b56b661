"""The household file validated out of core: time and peak memory against batch size.

    python -m benchmarks.bench_households                       # 100k, 1M, 3M households
    python -m benchmarks.bench_households --sizes 100000,1000000 --shuffle

Writes a synthetic SVB household file per size (CSV; 58% singles, 40% couples, 2% households
of three, as ``uwv-server generate``; ``--shuffle`` spreads each household's rows through the
file, as a file sorted by BSN would), then in a process of its own each:

- **baseline**: the whole file read into memory as text with pyarrow (what a loader that holds
  the file costs; no checks);
- **validate**: :func:`svb_client.households.validate_households`, every part of 8,192
  households (a masked chunk) and the rejections read, as ``svb-client screen`` does.

Prints seconds and peak RSS (``wait4``) of both, the ratio validate/baseline, and each size's
peak RSS against the smallest size's: the validation should stay flat where the baseline
grows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._children import wait_rss_kb

ROOT = Path(__file__).resolve().parent.parent

_BASELINE = """
import sys, pyarrow as pa, pyarrow.csv as c
names = ("household_id", "bsn", "category", "known_income_cents")
t = c.read_csv(sys.argv[1], convert_options=c.ConvertOptions(
    column_types={n: pa.string() for n in names}))
print(t.num_rows)
"""

_VALIDATE = """
import sys
from pathlib import Path
from svb_client.households import validate_households
with validate_households(Path(sys.argv[1])) as checked:
    households = sum(len(part) for part in checked.parts(8192))
    rejected = sum(1 for _ in checked.rejected())
print(households, rejected)
"""


def write_households(path: Path, households: int, *, shuffle: bool, seed: int = 7) -> int:
    """A CSV household file of ``households`` households; returns its number of rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from uwv_server.synth import valid_bsns

    rng = np.random.default_rng(seed)
    size = np.array([1, 2, 3])[rng.choice(3, size=households, p=[0.58, 0.40, 0.02])]
    index = np.repeat(np.arange(households), size)
    order = rng.permutation(len(index)) if shuffle else np.arange(len(index))
    ids = pc.binary_join_element_wise(
        "H", pc.utf8_lpad(pa.array(index[order] + 1).cast(pa.string()), 9, "0"), ""
    )
    table = pa.table(
        {
            "household_id": ids,
            "bsn": pc.utf8_lpad(
                pa.array(valid_bsns(rng, len(index))[order]).cast(pa.string()), 9, "0"
            ),
            "category": pa.array(np.where(size[index[order]] == 1, "single", "couple")),
            "known_income_cents": rng.integers(0, 300_000, len(index)),
        }
    )
    pacsv.write_csv(table, path)
    return len(index)


def _write_in_child(path: Path, households: int, *, shuffle: bool) -> int:
    """:func:`write_households` in a process of its own: a child's peak RSS counts what it
    inherited at fork, so this process must stay small."""
    code = (
        "import sys; from pathlib import Path; from benchmarks.bench_households import "
        "write_households as w; print(w(Path(sys.argv[1]), int(sys.argv[2]), "
        "shuffle=sys.argv[3] == '1'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(households), "1" if shuffle else "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip())


def _measure(code: str, path: Path) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    rss_kb = wait_rss_kb(proc)
    seconds = time.perf_counter() - t0
    out = proc.stdout.read().decode().strip() if proc.stdout else ""
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"measurement failed: {err[-2000:]}")
    return seconds, rss_kb / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--shuffle", action="store_true", help="spread households' rows")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temp)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-households-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(
            f"{'households':>11} {'rows':>10} {'baseline s':>10} {'MB':>6} "
            f"{'validate s':>10} {'MB':>6} {'time ratio':>10} {'MB vs first':>11}",
            flush=True,
        )
        first_mb: float | None = None
        first_base: float | None = None
        for n in sizes:
            path = work / f"households-{n}{'-shuffled' if args.shuffle else ''}.csv"
            rows = _write_in_child(path, n, shuffle=args.shuffle)
            base_s, base_mb, _ = _measure(_BASELINE, path)
            val_s, val_mb, out = _measure(_VALIDATE, path)
            accepted = int(out.split()[0])
            if accepted != n:
                raise SystemExit(f"{n} households written but {accepted} accepted ({out})")
            first_mb = first_mb or val_mb
            first_base = first_base or base_mb
            print(
                f"{n:>11,} {rows:>10,} {base_s:>10.2f} {base_mb:>6.0f} {val_s:>10.2f} "
                f"{val_mb:>6.0f} {val_s / base_s:>10.2f} "
                f"{val_mb / first_mb:>5.2f} ({base_mb / first_base:.2f})",
                flush=True,
            )
        print("MB vs first: validate's peak RSS / the first size's (baseline's in brackets)")


if __name__ == "__main__":
    main()
