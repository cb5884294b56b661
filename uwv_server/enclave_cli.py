"""``uwv-server`` commands of the compute-to-data mode (added by :func:`add_commands`).

    uwv-server rules list    --state DIR --registry FILE [--json]
    uwv-server rules report  DIGEST --state DIR --registry FILE [--json]
    uwv-server rules approve DIGEST --state DIR --registry FILE --key FILE [--role auditor]
                             [--days N] [--passphrase-file FILE]
    uwv-server rules reject  DIGEST --reason TEXT --state DIR --registry FILE
    uwv-server rules revoke  DIGEST --reason TEXT --state DIR --registry FILE
    uwv-server keys signing-init | keys registry-add          (see shared.crypto.cli)

Approvals are made here, on UWV's side, by the person holding the key: the operator with the
approver key, the auditor with the auditor key. They go straight into the rule register the
server reads, so they take effect at the next run.

For ``serve``: :func:`add_serve_arguments` and :func:`serve_components` build the budget and
the ComputeToData registrar from the command line.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.crypto import Approval, Registry, Role
from shared.crypto.cli import add_key_commands, load_key, subgroup
from uwv_server.budget import DEFAULT_LIMIT, MODES, SqliteBudget
from uwv_server.enclave.approvals import RuleRegister, info_json
from uwv_server.enclave.sandbox import Limits
from uwv_server.enclave.service import (
    EnclaveConfig,
    EnclaveService,
    StatementHook,
    UnloggedHook,
)
from uwv_server.grpc.compute_to_data import enclave_registrar
from uwv_server.store import Snapshot


def _now() -> datetime:
    return datetime.now(UTC)


def _register(args: argparse.Namespace) -> RuleRegister:
    return RuleRegister(args.state / "enclave.sqlite", Registry.from_file(args.registry))


def _list(args: argparse.Namespace) -> int:
    rules = _register(args).list(_now())
    if args.json:
        print("[" + ",\n".join(info_json(i) for i in rules) + "]")
        return 0
    if not rules:
        print("no rules submitted")
    for i in rules:
        verdict = "verifier accepted" if i.accepted else "verifier REFUSED"
        print(f"{i.digest}  {i.state:<8}  {verdict}  by {i.author}  {i.state_reason}")
    return 0


def _report(args: argparse.Namespace) -> int:
    info = _register(args).info(args.digest, _now())
    print(info.report_json if args.json else info.report_text, end="")
    if not args.json:
        print(f"State: {info.state} ({info.state_reason})")
        for key_id, role, start, end in info.approvals:
            print(f"  approved by {key_id} as {role} from {start} until {end}")
    return 0


def _approve(args: argparse.Namespace) -> int:
    register = _register(args)
    key = load_key(args.key, args.passphrase_file)
    now = _now()
    approval = Approval.for_window(args.digest, Role(args.role), now, args.days)
    info = register.approve(approval.sign(key).to_json(), now)
    print(f"approved {args.digest} as {args.role} until {approval.not_after.isoformat()}")
    print(f"state: {info.state} ({info.state_reason or 'may run'})")
    return 0


def _reject(args: argparse.Namespace) -> int:
    info = _register(args).reject(args.digest, args.reason, _now())
    print(f"{args.digest}: {info.state} ({info.state_reason})")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    info = _register(args).revoke(args.digest, args.reason, _now())
    print(f"{args.digest}: {info.state} ({info.state_reason})")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", type=Path, required=True, help="the enclave state directory")
    p.add_argument("--registry", type=Path, required=True, help="the key registry (YAML)")


def add_commands(subparsers: Any) -> None:
    """Add the ``rules`` sub-commands above (to an existing ``rules`` group) and ``keys``."""
    rules = subgroup(subparsers, "rules", "rules SVB submits")
    ls = rules.add_parser("list", help="submitted rules and their state")
    _common(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    rep = rules.add_parser("report", help="the verifier's report and approvals of a rule")
    rep.add_argument("digest")
    _common(rep)
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=_report)
    ap = rules.add_parser("approve", help="sign an approval of a rule digest")
    ap.add_argument("digest")
    _common(ap)
    ap.add_argument("--key", type=Path, required=True, help="your signing key file")
    ap.add_argument("--passphrase-file", type=Path)
    ap.add_argument("--role", choices=("approver", "auditor"), default="approver")
    ap.add_argument("--days", type=float, default=90.0, help="validity of the approval")
    ap.set_defaults(func=_approve)
    for name, func, text in (
        ("reject", _reject, "refuse a pending rule"),
        ("revoke", _revoke, "stop a rule from running, for good"),
    ):
        p = rules.add_parser(name, help=text)
        p.add_argument("digest")
        _common(p)
        p.add_argument("--reason", required=True)
        p.set_defaults(func=func)
    add_key_commands(subparsers)


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """Arguments of ``uwv-server serve`` for the budget and the compute-to-data service."""
    serve.add_argument("--enclave-state", type=Path, help="serve ComputeToData with this state")
    serve.add_argument(
        "--registry",
        type=Path,
        help="key registry: the organisations' roles (with --tls) and keys (--enclave-state)",
    )
    serve.add_argument("--runner-key", type=Path, help="the runner's signing key file")
    serve.add_argument("--runner-passphrase-file", type=Path)
    serve.add_argument(
        "--budget-limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"evaluations per BSN per calendar year, all modes (default {DEFAULT_LIMIT})",
    )
    serve.add_argument(
        "--mode-budget",
        action="append",
        default=[],
        metavar="MODE=N",
        help="a lower yearly budget for one mode (masked, strict, enclave); repeatable",
    )
    serve.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"the modes this server serves, comma-separated (default {','.join(MODES)})",
    )
    serve.add_argument(
        "--unsafe-no-budget",
        action="store_true",
        help="no differencing protection (benchmarks only)",
    )
    serve.add_argument(
        "--unsafe-pinned-rule",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="compute this rule file in the HE modes without the register's approval trail "
        "(benchmarks, offline set-ups); repeatable",
    )
    serve.add_argument(
        "--require-isolation",
        action="store_true",
        help="refuse results of runs without network namespace and chroot",
    )


@dataclass
class ServeComponents:
    """What ``serve`` needs: the budget for every mode and the extra gRPC registrars."""

    budget: SqliteBudget | None
    enclave: EnclaveService | None
    registrars: list[Any] = field(default_factory=list)
    modes: tuple[str, ...] = MODES

    def close(self) -> None:
        if self.budget is not None:
            self.budget.close()
        if self.enclave is not None:
            self.enclave.register.close()


def parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise SystemExit(f"uwv-server serve: --modes takes some of {', '.join(MODES)}")
    return modes


def parse_mode_budgets(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        mode, _, n = item.partition("=")
        if mode not in MODES or not n.isdigit():
            raise SystemExit(f"uwv-server serve: --mode-budget {item!r}: expected MODE=N")
        out[mode] = int(n)
    return out


def serve_components(
    args: argparse.Namespace,
    store: Path,
    snapshot: Snapshot,
    on_statement: StatementHook | None = None,
    on_unlogged: UnloggedHook | None = None,
) -> ServeComponents:
    """Build the budget (``store/budget.sqlite``) and, with ``--enclave-state``, the service."""
    modes = parse_modes(getattr(args, "modes", ",".join(MODES)))
    budget = (
        None
        if args.unsafe_no_budget
        else SqliteBudget(
            store / "budget.sqlite",
            limit=args.budget_limit,
            mode_limits=parse_mode_budgets(getattr(args, "mode_budget", [])),
        )
    )
    if args.enclave_state is None:
        return ServeComponents(budget, None, modes=modes)
    if args.registry is None or args.runner_key is None:
        raise SystemExit("uwv-server serve: --enclave-state needs --registry and --runner-key")
    registry = Registry.from_file(args.registry)
    service = EnclaveService(
        snapshot,
        RuleRegister(args.enclave_state / "enclave.sqlite", registry),
        registry,
        load_key(args.runner_key, args.runner_passphrase_file),
        EnclaveConfig(
            state_dir=args.enclave_state,
            limits=Limits(),
            require_isolation=args.require_isolation,
        ),
        budget=budget,
        clock=_now,
        on_statement=on_statement,
        on_unlogged=on_unlogged,
        serve_runs="enclave" in modes,
    )
    registrar: Any = enclave_registrar(service)
    return ServeComponents(budget, service, [registrar], modes=modes)
