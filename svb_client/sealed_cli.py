"""``svb-client screen --request-out FILE`` / ``--response FILE``: a batch through sealed files.

    svb-client screen --households H --period P --mode masked --out O --request-out batch.req
        (carry batch.req and batch.req.meta.json to UWV; UWV runs `uwv-server process`)
    svb-client screen --households H --period P --mode masked --out O --response batch.resp
        (the same command with the response: verifies, decrypts, writes O as online)

Identities come from the development PKI's party directories (``--pki DIR``, see
docs/identity.md): SVB signs with ``svb/``, opens answers with ``svb-sealing/``, and seals the
request to UWV's ``uwv-sealing/cert.pem``; each can be given on its own. The journal records
which request file (id and SHA-256) the batch awaits an answer to, so a response to any other
request is refused.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import Error
from shared.pki.keystore import read_passphrase
from shared.sealed import (
    DEFAULT_CHUNK_SIZE,
    InReplyTo,
    SealedSummary,
    check_sidecar,
    read_sidecar,
    sidecar_path,
)
from shared.sealed.parties import (
    load_receiver,
    load_recipient,
    load_sender,
    replies_from,
    trust_anchors,
)
from svb_client.journal import Journal
from svb_client.wire.sealed_transport import SealedRequestTransport, SealedResponseTransport
from svb_client.wire.transport import Transport

AWAITING_NOTE = "sealed_request"


def add_screen_arguments(screen: argparse.ArgumentParser) -> None:
    files = screen.add_mutually_exclusive_group()
    files.add_argument(
        "--request-out",
        type=Path,
        help="write the batch as one sealed request file for UWV (no network) and stop",
    )
    files.add_argument(
        "--response",
        type=Path,
        help="read UWV's sealed response to the request this journal awaits; write --out",
    )
    screen.add_argument("--pki", type=Path, default=Path("pki"), help="PKI directory (sealed)")
    screen.add_argument("--signing", type=Path, help="SVB's signing identity (default PKI/svb)")
    screen.add_argument(
        "--sealing", type=Path, help="SVB's sealing identity (default PKI/svb-sealing)"
    )
    screen.add_argument(
        "--uwv-sealing-cert",
        type=Path,
        help="UWV's sealing certificate (default PKI/uwv-sealing/cert.pem)",
    )
    screen.add_argument(
        "--sealed-chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="plaintext bytes per authenticated chunk of a request file (default 1 MiB)",
    )
    screen.add_argument(
        "--pki-passphrase-file",
        type=Path,
        help="passphrase of the PKI keys (default: $AIO_PKI_PASSPHRASE)",
    )


def add_rule_arguments(submit: argparse.ArgumentParser) -> None:
    """``rules submit`` through files: the bundle as a sealed file, UWV's answer from one."""
    files = submit.add_mutually_exclusive_group()
    files.add_argument(
        "--request-out", type=Path, help="write the signed bundle as a sealed file for UWV; stop"
    )
    files.add_argument(
        "--response",
        type=Path,
        help="read UWV's sealed answer to the submission file given with --request",
    )
    submit.add_argument("--request", type=Path, help="the submission file --response answers")
    submit.add_argument("--pki", type=Path, default=Path("pki"), help="PKI directory (sealed)")
    submit.add_argument("--signing", type=Path, help="SVB's signing identity (default PKI/svb)")
    submit.add_argument(
        "--sealing", type=Path, help="SVB's sealing identity (default PKI/svb-sealing)"
    )
    submit.add_argument(
        "--uwv-sealing-cert",
        type=Path,
        help="UWV's sealing certificate (default PKI/uwv-sealing/cert.pem)",
    )
    submit.add_argument("--pki-passphrase-file", type=Path, help="default: $AIO_PKI_PASSPHRASE")


def rule_transport_for(args: argparse.Namespace) -> Transport | None:
    """The sealed-file transport of ``rules submit``, or None for the network.

    The answer is bound to the submission file through that file's sidecar (its message id
    and SHA-256, checked against the file itself)."""
    if args.request_out is None and args.response is None:
        return None
    pki: Path = args.pki
    passphrase = read_passphrase(args.pki_passphrase_file)
    sealing = args.sealing or pki / "svb-sealing"
    if args.request_out is not None:
        _, reply_cert = load_receiver(sealing, passphrase)
        return SealedRequestTransport(
            args.request_out,
            sender=load_sender(args.signing or pki / "svb", passphrase),
            recipient=load_recipient(args.uwv_sealing_cert or pki / "uwv-sealing" / "cert.pem"),
            reply_certificate=reply_cert,
            clock=_now,
            on_sealed=lambda summary: None,
        )
    if args.request is None:
        raise Error("--response needs --request FILE: the submission file it answers")
    car = read_sidecar(sidecar_path(args.request))
    check_sidecar(args.request, car)
    receiver, _ = load_receiver(sealing, passphrase)
    return SealedResponseTransport(
        args.response,
        receiver=receiver,
        senders=replies_from(car.receiver.oin, trust_anchors(sealing), _now),
        awaiting=InReplyTo(message_id=car.message_id, sha256=car.checksum.value),
    )


def in_flight(args: argparse.Namespace) -> int:
    """Chunks sent ahead of their answers: all of them for a request file (no answer comes
    until UWV's response file), else ``--in-flight``."""
    return REQUEST_FILE_IN_FLIGHT if args.request_out is not None else int(args.in_flight)


REQUEST_FILE_IN_FLIGHT = 1 << 30


def _now() -> datetime:
    return datetime.now(UTC)


def transport_for(args: argparse.Namespace, journal: Path) -> Transport | None:
    """The sealed-file transport the arguments ask for, or None for the network."""
    if args.request_out is None and args.response is None:
        return None
    pki: Path = args.pki
    passphrase = read_passphrase(args.pki_passphrase_file)
    sealing = args.sealing or pki / "svb-sealing"
    if args.request_out is not None:
        if journal.exists():
            j = Journal(journal)
            try:
                waiting = j.note(AWAITING_NOTE)
            finally:
                j.close()
            if waiting is not None and not args.fresh:
                raise Error(
                    f"{journal}: this batch already awaits the response to "
                    f"{json.loads(waiting)['path']}; run with --response FILE, or --fresh to "
                    "start the batch over"
                )
        _, reply_cert = load_receiver(sealing, passphrase)
        recipient = load_recipient(args.uwv_sealing_cert or pki / "uwv-sealing" / "cert.pem")
        out: Path = args.request_out

        def on_sealed(summary: SealedSummary) -> None:
            j = Journal(journal)
            try:
                j.set_note(
                    AWAITING_NOTE,
                    json.dumps(
                        {
                            "message_id": summary.header.message_id,
                            "sha256": summary.sha256,
                            "path": str(out),
                            "uwv_oin": recipient.oin,
                        }
                    ),
                )
            finally:
                j.close()

        return SealedRequestTransport(
            out,
            sender=load_sender(args.signing or pki / "svb", passphrase),
            recipient=recipient,
            reply_certificate=reply_cert,
            clock=_now,
            on_sealed=on_sealed,
            chunk_size=args.sealed_chunk_size,
        )
    if not journal.exists():
        raise Error(f"{journal}: no journal; write the request first with --request-out")
    j = Journal(journal)
    try:
        note = j.note(AWAITING_NOTE)
    finally:
        j.close()
    if note is None:
        raise Error(
            f"{journal}: this batch awaits no sealed response (it was not written with "
            "--request-out)"
        )
    waiting = json.loads(note)
    receiver, _ = load_receiver(sealing, passphrase)
    return SealedResponseTransport(
        args.response,
        receiver=receiver,
        senders=replies_from(waiting["uwv_oin"], trust_anchors(sealing), _now),
        awaiting=InReplyTo(message_id=waiting["message_id"], sha256=waiting["sha256"]),
    )


def report(transport: Transport | None) -> None:
    """What a deferred batch left behind: the request file to carry to UWV."""
    if isinstance(transport, SealedRequestTransport) and transport.written is not None:
        w = transport.written
        print(
            f"sealed request: {transport.path} ({w.size:,} bytes, sha256 {w.sha256[:16]}…) and "
            f"{transport.path.name}.meta.json; carry both to UWV (uwv-server process), then run "
            "the same command with --response FILE"
        )
