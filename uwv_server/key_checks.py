"""UWV's key check for strict mode: cut-and-choose over SVB's key sets (issue 14).

The protocol and its catch probability are :mod:`shared.he.keysets`'. Here is the server's
side, one object per context registry:

- :meth:`StrictKeyCheck.propose`: ``K`` public contexts in (the commitment: their SHA-256s);
  the challenge ``j`` out, drawn with ``secrets`` (``choose``, a seam for tests), never taken
  from the message. The chosen context's bytes are kept until the opening.
- :meth:`StrictKeyCheck.open`: the ``K − 1`` other seeds in; each is regenerated with the
  shared derivation and must give exactly the bytes uploaded. On a match context ``j`` is
  parsed (public key and relinearisation keys on the common polynomials, no secret key, the
  named set) and stored like an upload; batches then name it. On a mismatch nothing is stored.

Resampling the challenge is not possible:

- the same commitment proposed again gets the same ``j`` (an honest client that crashed
  between the two steps derives the same sets from its key file and simply carries on);
- a *different* proposal while one is open ends the open one as ``abandoned`` (a failure, in
  the audit log) and is itself refused: at most one open challenge per caller, and every
  attempt to draw a new ``j`` costs a logged failure;
- a caller with :attr:`max_failures` failures (cheats and abandonments) recorded is refused
  further proposals until UWV's operator, having read the audit log, clears its record.

Every outcome (accepted, cheat detected, abandoned) is an audit entry under the caller's
authenticated identity (the OIN from its certificate). Nothing is charged to any budget.

State (open and accepted proposals, failures per caller) is kept in ``key_checks.json`` in the
registry's directory, so a restart forgets no open challenge and no failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Protocol

from shared.audit.entry import KeyCheckOutcome
from shared.digests import sha256_hex
from shared.errors import CryptoError, InputError
from shared.he.backend._keyset import SEED_BYTES
from shared.he.keysets import (
    DEFAULT_KEY_SETS,
    catch_probability,
    check_key_sets,
    regenerate_public_bytes,
)
from shared.he.params import BFV_PARAMETER_SETS, bfv_parameter_set

_STATE: Final = "key_checks.json"
DEFAULT_MAX_FAILURES: Final = 3
"""Failed key checks (cheats, abandoned challenges) a caller may have before its proposals
are refused. An honest client has none: its key file gives the same commitment every time."""


class KeyCheckFailed(CryptoError):
    """A key check caught a cheat: a revealed seed does not regenerate its upload, or the
    chosen set is malformed. Logged under the caller's identity; nothing is stored."""


class KeyCheckRefused(InputError):
    """A proposal that cannot be taken now: another challenge is open, or the caller has too
    many failed key checks on record."""


class UnknownProposal(InputError):
    """An opening names no open proposal of this caller."""


class KeyCheckLog(Protocol):
    """Where outcomes go: :meth:`uwv_server.audit_trail.AuditTrail.record_key_check`."""

    def record_key_check(
        self,
        *,
        caller: str,
        proposal_id: str,
        parameter_set: str,
        outcome: KeyCheckOutcome,
        commitment: bytes,
        detail: bytes,
    ) -> int: ...


Regenerate = Callable[[str, bytes, bytes], str]
"""(parameter set, seed, common seed) → SHA-256 of the public context that set gives."""


def regenerate_here(params_name: str, seed: bytes, crs_seed: bytes) -> str:
    """:data:`Regenerate` in this process (the registry runs it in its checker process)."""
    return sha256_hex(regenerate_public_bytes(bfv_parameter_set(params_name), seed, crs_seed))


class Accept(Protocol):
    """Stores an accepted context: :meth:`uwv_server.contexts.ContextRegistry.accept_checked`."""

    def __call__(self, parameter_set: str, data: bytes, caller: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Challenge:
    """UWV's answer to a proposal: open every set but ``chosen``."""

    proposal_id: str
    chosen: int
    key_sets: int
    digests: tuple[str, ...]
    """SHA-256 of each uploaded context, in upload order."""
    accepted: bool = False


@dataclass(slots=True)
class _Proposal:
    caller: str
    parameter_set: str
    digests: list[str]
    chosen: int
    state: str  # "open" | "accepted"
    accepted_digest: str = ""


def _new_proposal_id() -> str:
    """26 random lower-case letters (122 bits): no digits, so no run of nine digits the audit
    log would take for a BSN (it refuses such labels; a hex id has one now and then)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(26))


def _commitment(parameter_set: str, digests: Sequence[str]) -> bytes:
    h = hashlib.sha256(b"aio-strict-key-commitment/v1\x00" + parameter_set.encode() + b"\x00")
    for d in digests:
        h.update(bytes.fromhex(d))
    return h.digest()


class StrictKeyCheck:
    """The cut-and-choose check of strict key sets (see the module docstring)."""

    def __init__(
        self,
        accept: Accept,
        *,
        crs_seed: bytes,
        key_sets: int = DEFAULT_KEY_SETS,
        directory: Path | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
        choose: Callable[[int], int] = secrets.randbelow,
        regenerate: Regenerate = regenerate_here,
    ) -> None:
        self.key_sets = check_key_sets(key_sets)
        self._regenerate = regenerate
        self.catch_probability = catch_probability(self.key_sets)
        self.max_failures = max_failures
        self._accept = accept
        self._crs_seed = crs_seed
        self._dir = directory
        self._choose = choose
        self._lock = threading.Lock()
        self._proposals: dict[str, _Proposal] = {}
        self._failures: dict[str, int] = {}
        self._chosen_bytes: dict[str, bytes] = {}  # open proposal -> the chosen context
        if directory is not None and (directory / _STATE).exists():
            state = json.loads((directory / _STATE).read_text())
            self._proposals = {k: _Proposal(**v) for k, v in state["proposals"].items()}
            self._failures = {k: int(v) for k, v in state["failures"].items()}

    # -- state ------------------------------------------------------------------------------

    def _save(self) -> None:
        """Persist proposals and failures; caller holds the lock."""
        if self._dir is None:
            return
        state = {
            "proposals": {k: asdict(v) for k, v in self._proposals.items()},
            "failures": self._failures,
        }
        tmp = self._dir / f".{_STATE}.tmp"
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self._dir / _STATE)

    def _pending(self, proposal_id: str) -> Path | None:
        return None if self._dir is None else self._dir / f"pending-{proposal_id}.ctx"

    def failures(self, caller: str) -> int:
        with self._lock:
            return self._failures.get(caller, 0)

    def _fail(
        self,
        proposal_id: str,
        proposal: _Proposal,
        outcome: KeyCheckOutcome,
        detail: str,
        log: KeyCheckLog | None,
    ) -> None:
        """Record a failure and close the proposal; caller holds the lock."""
        self._failures[proposal.caller] = self._failures.get(proposal.caller, 0) + 1
        del self._proposals[proposal_id]
        self._close(proposal_id, proposal, outcome, detail, log)

    def _close(
        self,
        proposal_id: str,
        proposal: _Proposal,
        outcome: KeyCheckOutcome,
        detail: str,
        log: KeyCheckLog | None,
    ) -> None:
        """Drop the proposal's chosen context (memory and disk), save the state, and log the
        outcome under the proposal's caller; caller holds the lock."""
        self._chosen_bytes.pop(proposal_id, None)
        pending = self._pending(proposal_id)
        if pending is not None:
            pending.unlink(missing_ok=True)
        self._save()
        if log is not None:
            log.record_key_check(
                caller=proposal.caller,
                proposal_id=proposal_id,
                parameter_set=proposal.parameter_set,
                outcome=outcome,
                commitment=_commitment(proposal.parameter_set, proposal.digests),
                detail=detail.encode(),
            )

    def _bytes_of(self, proposal_id: str) -> bytes:
        data = self._chosen_bytes.get(proposal_id)
        if data is None:
            pending = self._pending(proposal_id)
            if pending is None or not pending.exists():
                raise UnknownProposal(f"proposal {proposal_id} has lost its chosen context")
            data = pending.read_bytes()
        return data

    # -- the protocol -----------------------------------------------------------------------

    def propose(
        self,
        caller: str,
        parameter_set: str,
        contexts: Sequence[bytes],
        log: KeyCheckLog | None = None,
    ) -> Challenge:
        """Take ``K`` public contexts; answer with the set that will *not* be opened."""
        if parameter_set not in BFV_PARAMETER_SETS:
            raise InputError(
                f"parameter_set {parameter_set!r} is not a strict-mode set; known: "
                f"{', '.join(sorted(BFV_PARAMETER_SETS))}"
            )
        if len(contexts) != self.key_sets:
            raise InputError(
                f"a key check takes exactly {self.key_sets} public contexts (K), got "
                f"{len(contexts)}; a malformed set is caught with probability "
                f"{self.catch_probability:.1%}"
            )
        digests = [sha256_hex(c) for c in contexts]
        if len(set(digests)) != len(digests):
            raise InputError("the proposed contexts must all differ (one per seed)")
        with self._lock:
            for pid, p in self._proposals.items():
                if p.caller == caller and p.parameter_set == parameter_set and p.digests == digests:
                    return Challenge(
                        pid, p.chosen, self.key_sets, tuple(digests), p.state == "accepted"
                    )
            if self._failures.get(caller, 0) >= self.max_failures:
                raise KeyCheckRefused(
                    f"{caller} has {self._failures[caller]} failed strict key checks on record "
                    f"(at most {self.max_failures}); UWV's operator must review the audit log "
                    "before this caller may propose keys again"
                )
            for pid, p in list(self._proposals.items()):
                if p.caller == caller and p.state == "open":
                    self._fail(
                        pid,
                        p,
                        "abandoned",
                        "another proposal came while this challenge was open",
                        log,
                    )
                    raise KeyCheckRefused(
                        f"key check {pid} was still open (its challenge unanswered): it is now "
                        "recorded as failed in the audit log. At most one challenge per caller "
                        "is open; propose again"
                    )
            chosen = self._choose(self.key_sets)
            if not 0 <= chosen < self.key_sets:
                raise CryptoError(f"internal: challenge {chosen} outside 0..{self.key_sets - 1}")
            proposal_id = _new_proposal_id()
            self._proposals[proposal_id] = _Proposal(caller, parameter_set, digests, chosen, "open")
            self._chosen_bytes[proposal_id] = bytes(contexts[chosen])
            pending = self._pending(proposal_id)
            if pending is not None:
                pending.write_bytes(contexts[chosen])
            self._save()
        return Challenge(proposal_id, chosen, self.key_sets, tuple(digests))

    def open(
        self,
        caller: str,
        proposal_id: str,
        seeds: Sequence[bytes],
        log: KeyCheckLog | None = None,
    ) -> str:
        """Check the revealed seeds; on success store and return the accepted context's
        digest (SHA-256 of the bytes as uploaded). A cheat raises :class:`KeyCheckFailed`."""
        with self._lock:
            proposal = self._proposals.get(proposal_id)
            if proposal is None or proposal.caller != caller:
                raise UnknownProposal(f"no open key check {proposal_id[:32]!r} of {caller}")
            if proposal.state == "accepted":
                return proposal.accepted_digest
            data = self._bytes_of(proposal_id)
        k, j = self.key_sets, proposal.chosen
        if len(seeds) != k:
            raise InputError(f"an opening has {k} entries (one per set), got {len(seeds)}")
        for i, seed in enumerate(seeds):
            want = 0 if i == j else SEED_BYTES
            if len(seed) != want:
                raise InputError(
                    f"seeds[{i}] has {len(seed)} bytes; "
                    + ("the chosen set stays closed (empty)" if i == j else f"a seed is {want}")
                )
        # Outside the lock: ~2-3 s per set at N=16384.
        bad = [
            i
            for i, seed in enumerate(seeds)
            if i != j
            and self._regenerate(proposal.parameter_set, seed, self._crs_seed)
            != proposal.digests[i]
        ]
        with self._lock:
            if self._proposals.get(proposal_id) is not proposal:
                raise UnknownProposal(f"key check {proposal_id[:32]} was closed meanwhile")
            if bad:
                self._fail(
                    proposal_id,
                    proposal,
                    "cheat-detected",
                    f"revealed seeds do not regenerate sets {bad}",
                    log,
                )
                raise KeyCheckFailed(
                    f"cheat detected: the seed(s) revealed for key set(s) {bad} do not "
                    "regenerate the context(s) uploaded; nothing is stored and the attempt is "
                    f"in the audit log under {caller}"
                )
            try:
                digest = self._accept(proposal.parameter_set, data, caller)
            except CryptoError as exc:
                self._fail(proposal_id, proposal, "cheat-detected", f"chosen set: {exc}", log)
                raise KeyCheckFailed(
                    f"cheat detected: the chosen key set {j} is malformed ({exc}); the attempt "
                    f"is in the audit log under {caller}"
                ) from None
            proposal.state = "accepted"
            proposal.accepted_digest = digest
            self._close(proposal_id, proposal, "accepted", f"set {j} accepted", log)
        return digest
