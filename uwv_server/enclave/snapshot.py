"""The content digest of a polis snapshot: a Merkle root over its sorted records.

The store names a snapshot by the SHA-256 of its Parquet *file*; that changes when the same
records are written by another Parquet writer. An auditor who replays a run needs to show
the *records* were the same, and ideally to prove one block of them without handing over
the rest. So the snapshot digest is an RFC 6962 Merkle tree hash (leaf ``SHA-256(0x00 ‖ d)``,
node ``SHA-256(0x01 ‖ l ‖ r)``) over blocks of :data:`BLOCK_ROWS` records in canonical order
``(bsn, month, relation_id, kind, gross_cents, tax_cents)``; a block's data is its six
columns as little-endian int64, one after the other, with kinds coded wage 0, benefit 1,
pension 2, other 3. An empty snapshot has the digest of the empty tree, ``SHA-256("")``.

Computing it reads every record once (seconds for a national polis), so the result is cached
per store snapshot (named by the file hash, which pins the content) in the enclave's state.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Final

import duckdb
import numpy as np

from uwv_server.enclave.errors import EnclaveError

BLOCK_ROWS: Final = 65_536


def merkle_root(leaves: list[bytes]) -> str:
    """RFC 6962 §2.1 Merkle tree hash over leaf *hashes* (already ``SHA-256(0x00 ‖ d)``)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = leaves
    # Folding pairwise left to right, carrying an odd last node up unchanged, gives the same
    # root as RFC 6962's split at the largest power of two below n.
    while len(level) > 1:
        nxt = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def snapshot_digest(directory: Path) -> str:
    """The content digest of the snapshot in ``directory`` (its ``records.parquet``)."""
    records = directory / "records.parquet"
    if not records.exists():
        raise EnclaveError(f"{directory}: no records.parquet, not a polis snapshot")
    con = duckdb.connect()
    try:
        path = str(records).replace("'", "''")
        table = con.sql(
            f"""SELECT bsn::BIGINT, month::BIGINT, relation_id::BIGINT,
                       (CASE kind WHEN 'wage' THEN 0 WHEN 'benefit' THEN 1
                                  WHEN 'pension' THEN 2 ELSE 3 END)::BIGINT,
                       gross_cents::BIGINT, tax_cents::BIGINT
                FROM read_parquet('{path}')
                ORDER BY 1, 2, 3, 4, 5, 6"""
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise EnclaveError(f"{records}: cannot read the records: {exc}") from None
    finally:
        con.close()
    columns = [np.asarray(table.column(i).to_numpy(), dtype="<i8") for i in range(6)]
    n = table.num_rows
    leaves: list[bytes] = []
    for start in range(0, n, BLOCK_ROWS):
        data = b"".join(c[start : start + BLOCK_ROWS].tobytes() for c in columns)
        leaves.append(hashlib.sha256(b"\x00" + data).digest())
    return merkle_root(leaves)


def cached_snapshot_digest(directory: Path, cache_file: Path) -> str:
    """:func:`snapshot_digest`, remembered in ``cache_file`` by the snapshot's name."""
    key = directory.name
    cache: dict[str, str] = {}
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    value = snapshot_digest(directory)
    cache[key] = value
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=2))
    os.replace(tmp, cache_file)
    return value
