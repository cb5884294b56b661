"""Durable storage of the Merkle log in SQLite.

Tables: ``entries(idx, data)`` holds the leaf data (canonical entry JSON),
``nodes(id, hash)`` every *perfect* subtree hash, leaf hashes included (a
leaf is the level-0 node), and ``meta`` the format tag, the log's origin, the
tree size and the root. The interior nodes are what make proofs fast: any proof
needs at most ``2 log2 n`` of them, fetched in one indexed query.

Crash safety. SQLite runs in WAL mode with ``synchronous=FULL``: a batch of
appends is one transaction, durable on disk when :meth:`SqliteLogStore.append`
returns (that is the acknowledgement). A crash at any point leaves either the
whole batch or none of it: WAL frames of an unfinished transaction, or frames
torn by the crash, fail SQLite's checksums and are discarded when the file is
next opened (the repair). What is left is then *checked* at start-up: the
stored size must match the entries and the leaf nodes, the right-border nodes
must fold to the stored root, and the last entries must re-hash to their
stored leaf hashes. Any mismatch is a :class:`StorageError`: the log refuses
to start rather than sign a checkpoint over damaged data. ``check="full"``
re-hashes everything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from shared.audit.errors import StorageError
from shared.audit.merkle import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from shared.audit.proofs import NodeId, fold

FORMAT: Final = "aio-audit-sqlite/v1"
TAIL_CHECK: Final = 1024
"""Number of last entries re-hashed at every start-up (cheap, catches a torn tail)."""

_LEVEL_SHIFT: Final = 50  # node id = level << 50 | index: 2**50 leaves, levels up to 50


def _node_key(level: int, index: int) -> int:
    return (level << _LEVEL_SHIFT) | index


CheckLevel = Literal["tail", "full", "none"]


class SqliteLogStore:
    """An append-only Merkle log in one SQLite file. One writer process at a time.

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path, origin: str, *, check: CheckLevel = "tail") -> None:
        self.path: Final = str(path)
        self.origin: Final = origin
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open audit log {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._init_schema(origin)
            self._load_state()
            if check != "none":
                self._check(full=check == "full")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(f"audit log {self.path} is corrupt: {exc}") from None
        except StorageError:
            self._db.close()
            raise

    # -- set-up and checks ---------------------------------------------------------

    def _init_schema(self, origin: str) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL)"
            )
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("origin", origin), ("size", 0), ("root", EMPTY_ROOT)],
                )
            elif meta.get("format") != FORMAT:
                raise StorageError(f"{self.path} is not an audit log of format {FORMAT}")
            elif meta.get("origin") != origin:
                raise StorageError(f"{self.path} holds log {meta.get('origin')!r}, not {origin!r}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _meta(self) -> tuple[int, bytes]:
        meta = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('size', 'root')"))
        size, root = meta.get("size"), meta.get("root")
        if (
            not isinstance(size, int)
            or size < 0
            or not isinstance(root, bytes)
            or len(root) != HASH_SIZE
        ):
            raise StorageError(f"{self.path}: tree size or root in the meta table is damaged")
        return size, root

    def _load_state(self) -> None:
        size, root = self._meta()
        border = self._border_ids(size)
        got = self.get_nodes(border)
        self._border: list[tuple[int, int, bytes]] = [(lv, ix, got[(lv, ix)]) for lv, ix in border]
        self._size = size
        self._root = root

    @staticmethod
    def _border_ids(size: int) -> list[NodeId]:
        """The perfect subtrees covering ``[0, size)``, largest first (the compact range)."""
        ids: list[NodeId] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                ids.append((level, start >> level))
                start += 1 << level
        return ids

    def _check(self, *, full: bool) -> None:
        size = self._size
        computed = fold([h for _, _, h in self._border]) if self._border else EMPTY_ROOT
        if computed != self._root:
            raise StorageError(
                f"{self.path}: stored nodes give root {computed.hex()}, "
                f"meta says {self._root.hex()}"
            )
        (max_idx,) = self._db.execute("SELECT max(idx) FROM entries").fetchone()
        if (max_idx if max_idx is not None else -1) != size - 1:
            raise StorageError(f"{self.path}: tree size is {size} but the last entry is {max_idx}")
        beyond = self._db.execute(
            "SELECT count(*) FROM nodes WHERE id >= ? AND id < ?",
            (_node_key(0, size), _node_key(1, 0)),
        ).fetchone()[0]
        if beyond:
            raise StorageError(f"{self.path}: leaf hashes exist beyond tree size {size}")
        start = 0 if full else max(0, size - TAIL_CHECK)
        if full:
            problems = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if problems != "ok":
                raise StorageError(f"{self.path}: SQLite quick_check failed: {problems}")
        self._check_leaves(start, size)
        if full:
            self._check_interior(size)

    def _check_leaves(self, start: int, end: int) -> None:
        rows = self._db.execute(
            "SELECT e.idx, e.data, n.hash FROM entries e LEFT JOIN nodes n ON n.id = e.idx "
            "WHERE e.idx >= ? AND e.idx < ? ORDER BY e.idx",
            (start, end),
        )
        expected = start
        for idx, data, stored in rows:
            if idx != expected:
                raise StorageError(f"{self.path}: entry {expected} is missing")
            if stored is None or leaf_hash(bytes(data)) != stored:
                raise StorageError(f"{self.path}: entry {idx} does not match its leaf hash")
            expected += 1
        if expected != end:
            raise StorageError(f"{self.path}: entries {expected}..{end - 1} are missing")

    def _check_interior(self, size: int) -> None:
        level, width = 0, size
        while width > 1:
            lower = self._level(level, width)
            upper = self._level(level + 1, width // 2)
            for i, h in enumerate(upper):
                if node_hash(lower[2 * i], lower[2 * i + 1]) != h:
                    raise StorageError(
                        f"{self.path}: node ({level + 1}, {i}) does not match its children"
                    )
            level, width = level + 1, width // 2

    def _level(self, level: int, width: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT hash FROM nodes WHERE id >= ? AND id < ? ORDER BY id",
            (_node_key(level, 0), _node_key(level, width)),
        ).fetchall()
        if len(rows) != width:
            raise StorageError(
                f"{self.path}: level {level} has {len(rows)} nodes, expected {width}"
            )
        return [bytes(r[0]) for r in rows]

    # -- reading -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries (acknowledged appends)."""
        return self._size

    @property
    def root(self) -> bytes:
        """Root hash of the whole tree."""
        return self._root

    def get_nodes(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        """Perfect subtree hashes by ``(level, index)``, in one query; missing ones are an error."""
        wanted = {_node_key(lv, ix): (lv, ix) for lv, ix in ids}
        if not wanted:
            return {}
        keys = list(wanted)
        out: dict[NodeId, bytes] = {}
        for chunk in range(0, len(keys), 500):
            part = keys[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for key, h in self._db.execute(
                f"SELECT id, hash FROM nodes WHERE id IN ({marks})", part
            ):
                out[wanted[key]] = bytes(h)
        if len(out) != len(wanted):
            missing = sorted(set(wanted.values()) - set(out))[:3]
            raise StorageError(f"{self.path}: tree nodes {missing} are missing")
        return out

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaf data of entries ``start`` (inclusive) to ``end`` (exclusive)."""
        if not 0 <= start <= end <= self._size:
            raise StorageError(f"entries {start}..{end} are outside the log of size {self._size}")
        rows = self._db.execute(
            "SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        if len(rows) != end - start:
            raise StorageError(f"{self.path}: entries between {start} and {end} are missing")
        return [bytes(r[0]) for r in rows]

    # -- writing -----------------------------------------------------------------------

    def append(self, datas: Sequence[bytes]) -> int:
        """Append a batch in one durable transaction; return the index of its first entry.

        When this returns, the batch is on disk (fsync'ed WAL): acknowledged.
        """
        if not datas:
            return self._size
        first = self._size
        border = list(self._border)
        entry_rows: list[tuple[int, bytes]] = []
        node_rows: list[tuple[int, bytes]] = []
        for offset, data in enumerate(datas):
            if not isinstance(data, bytes):
                raise StorageError(f"entry {offset} of the batch is not bytes")
            idx = first + offset
            h = leaf_hash(data)
            entry_rows.append((idx, data))
            node_rows.append((idx, h))  # level 0: key == idx
            border.append((0, idx, h))
            # Merge equal-level neighbours: each merge is a newly complete perfect subtree.
            while len(border) >= 2 and border[-1][0] == border[-2][0]:
                lv, ix, right = border.pop()
                _, _, left = border.pop()
                merged = (lv + 1, ix >> 1, node_hash(left, right))
                border.append(merged)
                node_rows.append((_node_key(lv + 1, ix >> 1), merged[2]))
        size = first + len(datas)
        root = fold([h for _, _, h in border])
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                stored_size = db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()[0]
                if stored_size != first:
                    raise StorageError(
                        f"{self.path}: another writer appended "
                        f"(size {stored_size}, expected {first})"
                    )
                db.executemany("INSERT INTO entries (idx, data) VALUES (?, ?)", entry_rows)
                db.executemany("INSERT INTO nodes (id, hash) VALUES (?, ?)", node_rows)
                db.execute("UPDATE meta SET value = ? WHERE key = 'size'", (size,))
                db.execute("UPDATE meta SET value = ? WHERE key = 'root'", (root,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: append failed, nothing was written: {exc}") from None
        # In-memory state changes only after the commit: a failed append leaves it as it was.
        self._border, self._size, self._root = border, size, root
        return first

    def verify_integrity(self) -> None:
        """Re-hash every entry and node (slow, linear); raise :class:`StorageError` on damage."""
        try:
            self._check(full=True)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"audit log {self.path} is corrupt: {exc}") from None

    def close(self) -> None:
        """Close the database (a checkpoint of the WAL into the main file happens here)."""
        self._db.close()

    def __enter__(self) -> SqliteLogStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
