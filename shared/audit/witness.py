"""Witnessing: cosign a log's checkpoint only after proving it consistent with the last one seen.

A witness (an auditor, a supervisory authority) keeps, per log, the last
checkpoint it cosigned. It cosigns a new checkpoint only if

* the log's own signature on it verifies,
* it is not smaller than the last one (no rollback),
* a consistency proof from the last one verifies (only appended to), or, for
  the same size, the root is identical.

Two witnesses that cosigned checkpoints of the same log can then never have
been shown different histories: a split view needs two roots for one size, or
two trees one of which does not extend the other, and both are refused. The
first checkpoint of a log is accepted on first use (there is nothing to be
consistent with); the docs say so.

The state file is written atomically (temporary file, fsync, rename) *before*
the cosignature is released, so a crash cannot make the witness forget a
checkpoint it vouched for.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from shared.audit.checkpoint import Checkpoint, open_checkpoint
from shared.audit.errors import NoteError, ProofError, WitnessError
from shared.audit.merkle import EMPTY_ROOT, verify_consistency
from shared.audit.note import SIG_TYPE_COSIGNATURE_V1, NoteSigner, NoteVerifier

STATE_FORMAT: Final = "aio-audit-witness-state/v1"


@dataclass(frozen=True, slots=True)
class SeenHead:
    """The last checkpoint a witness cosigned for one log."""

    size: int
    root_hash: bytes
    checkpoint: str


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_state(path: Path) -> dict[str, SeenHead]:
    """Read a witness state file (missing file: empty state); malformed -> :class:`WitnessError`."""
    if not path.exists():
        return {}
    try:
        obj = json.loads(path.read_bytes())
        if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
            raise ValueError("not a witness state file")
        logs = obj["logs"]
        if not isinstance(logs, dict):
            raise ValueError("logs is not an object")
        out: dict[str, SeenHead] = {}
        for origin, head in logs.items():
            size, root, text = head["size"], head["root"], head["checkpoint"]
            if not isinstance(size, int) or not isinstance(text, str) or not isinstance(root, str):
                raise ValueError(f"entry for {origin} is malformed")
            out[origin] = SeenHead(size, base64.b64decode(root, validate=True), text)
        return out
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise WitnessError(f"witness state {path} is damaged: {exc}") from None


def save_state(path: Path, state: Mapping[str, SeenHead]) -> None:
    """Write the witness state atomically and durably."""
    logs = {
        origin: {
            "size": h.size,
            "root": base64.b64encode(h.root_hash).decode(),
            "checkpoint": h.checkpoint,
        }
        for origin, h in sorted(state.items())
    }
    data = json.dumps({"format": STATE_FORMAT, "logs": logs}, indent=1, sort_keys=True)
    _atomic_write(path, data.encode())


class Witness:
    """A cosigner with its key, the logs it watches (origin -> log key) and its state file."""

    def __init__(
        self, signer: NoteSigner, logs: Mapping[str, NoteVerifier], state_path: str | Path
    ) -> None:
        if signer.sig_type != SIG_TYPE_COSIGNATURE_V1:
            raise WitnessError("a witness signs with a cosignature/v1 key (type 0x04)")
        self._signer = signer
        self._logs = dict(logs)
        self._state_path = Path(state_path)

    @property
    def verifier(self) -> NoteVerifier:
        """The witness's public key, for log clients and auditors."""
        return self._signer.verifier

    def last_seen(self, origin: str) -> SeenHead | None:
        """The last checkpoint cosigned for ``origin``, if any."""
        return load_state(self._state_path).get(origin)

    def cosign(self, checkpoint_text: str, proof: Sequence[bytes], now: datetime) -> str:
        """Return the checkpoint with this witness's cosignature added, or refuse.

        ``proof`` is the consistency proof from the last checkpoint seen for this
        log (empty for the first one, or for the same size).
        """
        try:
            origin = Checkpoint.parse(_note_text(checkpoint_text)).origin
        except NoteError as exc:
            raise WitnessError(f"refused: checkpoint is malformed: {exc}") from None
        log_key = self._logs.get(origin)
        if log_key is None:
            raise WitnessError(f"refused: this witness does not watch log {origin!r}")
        try:
            verified = open_checkpoint(checkpoint_text, log_key, origin=origin)
        except NoteError as exc:
            raise WitnessError(f"refused: {exc}") from None
        cp = verified.checkpoint
        state = load_state(self._state_path)
        prior = state.get(origin)
        if prior is not None:
            if cp.size < prior.size:
                raise WitnessError(
                    f"refused: checkpoint size {cp.size} is smaller than the size {prior.size} "
                    "this witness already cosigned (rollback)"
                )
            try:
                if prior.size == 0 and cp.size > 0:
                    # nothing to prove from the empty tree (and a proof from it is refused)
                    if proof or prior.root_hash != EMPTY_ROOT:
                        raise ProofError("an empty tree has the empty root and no proof")
                else:
                    verify_consistency(prior.size, cp.size, proof, prior.root_hash, cp.root_hash)
            except ProofError as exc:
                raise WitnessError(
                    f"refused: not proved consistent with size {prior.size} seen before: {exc}"
                ) from None
        state[origin] = SeenHead(cp.size, cp.root_hash, checkpoint_text)
        save_state(self._state_path, state)
        cosignature = self._signer.sign(verified.note.text, now)
        return verified.note.with_signature(cosignature).format()


def _note_text(checkpoint_text: str) -> str:
    split = checkpoint_text.rfind("\n\n") if isinstance(checkpoint_text, str) else -1
    if split < 0:
        raise NoteError("no blank line before the signatures")
    return checkpoint_text[: split + 1]
