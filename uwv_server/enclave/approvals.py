"""UWV's rule register: submitted bundles, verifier reports, approvals, revocations, runs.

One SQLite database (``enclave.sqlite`` in the enclave state directory), shared by the
server process and the operator's ``uwv-server rules …`` commands, so an approval takes
effect at the next run without a restart. Every decision is recorded in ``events`` (time,
what, digest, why), including refusals, so probing and mistakes are visible later.

Life of a rule: ``submit`` (signed by an author; verified; report stored) → ``approve`` by
each key the policy asks for (a signature over digest + validity window) → runnable while
every required approval is in force → ``revoke`` ends it for good; ``reject`` refuses it
before it ever ran. A rule whose verifier report refused it cannot be approved.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from shared.crypto import (
    Approval,
    ApprovalRef,
    Envelope,
    Registry,
    open_approval,
    open_bundle,
    policy_shortfall,
)
from shared.crypto.errors import SigningError
from shared.rules import RuleError, digest, parse_text, verify_rule
from shared.rules.verify import ReleasePolicy, Report
from uwv_server.enclave.errors import (
    ApprovalRefused,
    NotRunnable,
    SubmissionRefused,
    UnknownRule,
)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rules (
    digest TEXT PRIMARY KEY, rule_yaml TEXT NOT NULL, bundle TEXT NOT NULL,
    author TEXT NOT NULL, submitted_at TEXT NOT NULL, accepted INTEGER NOT NULL,
    report_json TEXT NOT NULL, report_text TEXT NOT NULL,
    state TEXT NOT NULL, state_reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS approvals (
    digest TEXT NOT NULL, key_id TEXT NOT NULL, role TEXT NOT NULL,
    not_before TEXT NOT NULL, not_after TEXT NOT NULL, envelope TEXT NOT NULL,
    recorded_at TEXT NOT NULL, PRIMARY KEY (digest, key_id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
    digest TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, digest TEXT NOT NULL, at TEXT NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL, statement TEXT NOT NULL DEFAULT '');
"""


@dataclass(frozen=True)
class RuleInfo:
    """A submitted rule as the operator sees it."""

    digest: str
    author: str
    submitted_at: str
    accepted: bool
    state: str
    """``pending``, ``approved``, ``expired``, ``rejected`` or ``revoked`` (at the asked time)."""
    state_reason: str
    report_text: str
    report_json: str
    approvals: tuple[tuple[str, str, str, str], ...]
    """(key id, role, not_before, not_after) of every recorded approval."""


@dataclass(frozen=True)
class RunnableRule:
    """An approved, unexpired, unrevoked rule: what the runner gets."""

    digest: str
    rule_yaml: str
    approvals: tuple[ApprovalRef, ...]


class RuleRegister:
    """The register (thread-safe; one connection guarded by a lock)."""

    def __init__(
        self, path: Path, registry: Registry, *, release_policy: ReleasePolicy | None = None
    ) -> None:
        self.path = path
        self.registry = registry
        self.release_policy = release_policy
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def event(self, now: datetime, kind: str, digest_: str, detail: str) -> None:
        """Record a decision or refusal."""
        with self._lock:
            self._db.execute(
                "INSERT INTO events (at, kind, digest, detail) VALUES (?, ?, ?, ?)",
                (now.isoformat(), kind, digest_, detail),
            )

    def events(self, digest_: str | None = None) -> list[tuple[str, str, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT at, kind, digest, detail FROM events"
                + (" WHERE digest = ?" if digest_ else "")
                + " ORDER BY id",
                (digest_,) if digest_ else (),
            ).fetchall()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    # --- submission ---------------------------------------------------------------

    def submit(self, envelope_json: bytes, now: datetime) -> RuleInfo:
        """Verify and register a signed bundle; returns its state (existing if known)."""
        try:
            envelope = Envelope.from_json(envelope_json)
            bundle, author = open_bundle(envelope, self.registry)
        except SigningError as exc:
            self.event(now, "submit-refused", "", exc.diagnostics())
            raise SubmissionRefused(f"rule bundle refused: {exc.diagnostics()}") from None
        try:
            rule = parse_text(bundle.rule_yaml, file="submitted-rule")
        except RuleError as exc:
            self.event(now, "submit-refused", bundle.rule_digest, exc.diagnostics())
            raise SubmissionRefused(
                f"rule bundle refused: the rule does not parse: {exc.diagnostics()}"
            ) from None
        actual = digest(rule)
        if actual != bundle.rule_digest:
            detail = f"the bundle claims digest {bundle.rule_digest} but its rule has {actual}"
            self.event(now, "submit-refused", bundle.rule_digest, detail)
            raise SubmissionRefused(f"rule bundle refused: {detail}")
        report: Report = verify_rule(rule, policy=self.release_policy, file="submitted-rule")
        with self._lock:
            exists = self._db.execute("SELECT 1 FROM rules WHERE digest = ?", (actual,)).fetchone()
            if exists is None:
                self._db.execute(
                    "INSERT INTO rules (digest, rule_yaml, bundle, author, submitted_at, accepted,"
                    " report_json, report_text, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (
                        actual,
                        bundle.rule_yaml,
                        envelope_json.decode("utf-8"),
                        f"{author.name} ({author.organisation}, {author.key_id})",
                        now.isoformat(),
                        int(report.accepted),
                        report.to_json(),
                        report.to_text(),
                    ),
                )
        if exists is None:
            verdict = "accepted" if report.accepted else "refused"
            self.event(now, "submitted", actual, f"by {author.name}; verifier {verdict}")
        return self.info(actual, now)

    # --- operator decisions ---------------------------------------------------------

    def approve(self, envelope_json: bytes, now: datetime) -> RuleInfo:
        """Record a signed approval (the signer's role must match the approval's role)."""
        try:
            approval, signer = open_approval(Envelope.from_json(envelope_json), self.registry)
        except SigningError as exc:
            self.event(now, "approve-refused", "", exc.diagnostics())
            raise ApprovalRefused(f"approval refused: {exc.diagnostics()}") from None
        d = approval.rule_digest
        row = self._row(d)
        if row is None:
            self.event(now, "approve-refused", d, "unknown digest")
            raise UnknownRule(f"rule {d} was never submitted here; nothing to approve")
        state, accepted = str(row[0]), bool(row[1])
        why = ""
        if state in ("rejected", "revoked"):
            why = f"the rule was {state} ({row[2]}); submit a new version instead"
        elif not accepted:
            why = "the verifier refused this rule (see `uwv-server rules report`)"
        elif approval.not_after - approval.not_before > _max_window(self.registry):
            why = (
                f"the approval window is longer than the policy's "
                f"{self.registry.approval_policy.max_validity_days} days"
            )
        if why:
            self.event(now, "approve-refused", d, why)
            raise ApprovalRefused(f"approval of {d[:16]}… refused: {why}")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO approvals VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    d,
                    signer.key_id,
                    approval.role.value,
                    approval.not_before.isoformat(),
                    approval.not_after.isoformat(),
                    envelope_json.decode("utf-8"),
                    now.isoformat(),
                ),
            )
        self.event(
            now,
            "approved",
            d,
            f"{signer.name} as {approval.role.value} until {approval.not_after.isoformat()}",
        )
        return self.info(d, now)

    def reject(self, d: str, reason: str, now: datetime) -> RuleInfo:
        return self._end(d, "rejected", reason, now, from_states=("pending",))

    def revoke(self, d: str, reason: str, now: datetime) -> RuleInfo:
        return self._end(d, "revoked", reason, now, from_states=("pending", "approved"))

    def _end(
        self, d: str, state: str, reason: str, now: datetime, from_states: tuple[str, ...]
    ) -> RuleInfo:
        info = self.info(d, now)
        if info.state not in (*from_states, "expired"):
            raise ApprovalRefused(f"rule {d[:16]}… is {info.state}; it cannot be {state}")
        with self._lock:
            self._db.execute(
                "UPDATE rules SET state = ?, state_reason = ? WHERE digest = ?",
                (state, reason or "no reason given", d),
            )
        self.event(now, state, d, reason or "no reason given")
        return self.info(d, now)

    # --- queries ------------------------------------------------------------------

    def _row(self, d: str) -> tuple[object, ...] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, accepted, state_reason, rule_yaml, author, submitted_at,"
                " report_text, report_json FROM rules WHERE digest = ?",
                (d,),
            ).fetchone()
        return None if row is None else tuple(row)

    def _approvals(self, d: str) -> list[tuple[Approval, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT envelope, key_id, role FROM approvals WHERE digest = ? ORDER BY key_id",
                (d,),
            ).fetchall()
        out = []
        for env, key_id, role in rows:
            approval = Approval.model_validate_json(Envelope.from_json(env.encode()).payload)
            out.append((approval, str(key_id), str(env)))
            del role
        return out

    def info(self, d: str, now: datetime) -> RuleInfo:
        """The rule's state at ``now``; :class:`UnknownRule` if it was never submitted."""
        row = self._row(d)
        if row is None:
            raise UnknownRule(f"rule {d} was never submitted here")
        state, accepted, reason, _, author, submitted_at, text, js = row
        approvals = self._approvals(d)
        state = str(state)
        reason = str(reason)
        if state == "pending":
            missing = self._missing(approvals, now)
            if not missing:
                state = "approved"
            elif approvals and all(a.not_after < now for a, _, _ in approvals):
                state, reason = "expired", "every approval has expired"
            else:
                reason = "needs approval by " + ", ".join(missing)
        return RuleInfo(
            digest=d,
            author=str(author),
            submitted_at=str(submitted_at),
            accepted=bool(accepted),
            state=state,
            state_reason=reason,
            report_text=str(text),
            report_json=str(js),
            approvals=tuple(
                (k, a.role.value, a.not_before.isoformat(), a.not_after.isoformat())
                for a, k, _ in approvals
            ),
        )

    def _missing(self, approvals: list[tuple[Approval, str, str]], now: datetime) -> list[str]:
        pairs = [(a, self.registry.entry(k)) for a, k, _ in approvals]
        return policy_shortfall(pairs, self.registry, now)

    def list(self, now: datetime) -> list[RuleInfo]:
        with self._lock:
            digests = [
                str(r[0])
                for r in self._db.execute("SELECT digest FROM rules ORDER BY submitted_at")
            ]
        return [self.info(d, now) for d in digests]

    def runnable(self, d: str, now: datetime) -> RunnableRule:
        """The rule if it may run at ``now``; else :class:`NotRunnable` / :class:`UnknownRule`."""
        try:
            info = self.info(d, now)
        except UnknownRule:
            self.event(now, "run-refused", d, "unknown digest")
            raise
        if info.state != "approved":
            why = {
                "pending": f"it is not approved: {info.state_reason}",
                "rejected": f"it was rejected: {info.state_reason}",
                "revoked": f"it was revoked: {info.state_reason}",
                "expired": "its approval has expired",
            }[info.state]
            self.event(now, "run-refused", d, why)
            raise NotRunnable(f"rule {d[:16]}… may not run: {why}")
        row = self._row(d)
        assert row is not None
        refs = tuple(
            ApprovalRef(key_id=k, role=a.role, envelope=env)
            for a, k, env in self._approvals(d)
            if a.in_force(now)
        )
        return RunnableRule(digest=d, rule_yaml=str(row[3]), approvals=refs)

    # --- the run log ----------------------------------------------------------------

    def record_run(
        self, run_id: str, d: str, now: datetime, state: str, detail: str, statement: bytes = b""
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, d, now.isoformat(), state, detail, statement.decode("utf-8")),
            )

    def run_record(self, run_id: str) -> tuple[str, str, str] | None:
        """(state, detail, statement) of a run, if recorded."""
        with self._lock:
            row = self._db.execute(
                "SELECT state, detail, statement FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def _max_window(registry: Registry) -> timedelta:
    return timedelta(days=registry.approval_policy.max_validity_days)


def utc_now() -> datetime:
    """The wall clock in UTC (the CLIs pass it in; the library never reads it itself)."""
    return datetime.now(UTC)


def info_json(info: RuleInfo) -> str:
    return json.dumps(
        {
            "digest": info.digest,
            "author": info.author,
            "submitted_at": info.submitted_at,
            "verifier_accepted": info.accepted,
            "state": info.state,
            "reason": info.state_reason,
            "approvals": [
                {"key_id": k, "role": r, "not_before": b, "not_after": a}
                for k, r, b, a in info.approvals
            ],
        },
        indent=2,
    )
