"""Sealed files between the development PKI's parties (``uwv-server pki init``): SVB seals a
request to UWV's sealing key with its reply key in the header, UWV answers to that key."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.crypto.registry import Registry
from shared.pki import SVB, UWV, init_dev_pki
from shared.sealed import InReplyTo, MessageKind, SealedReader, SealedWriter
from shared.sealed.errors import ReplayRefused, SignerRefused
from shared.sealed.parties import (
    load_receiver,
    load_recipient,
    load_sender,
    replies_from,
    senders_from_registry,
    trust_anchors,
)

NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
PASS = b"a development passphrase"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "dev"
    init_dev_pki(root, PASS, now=NOW, days=30)
    return root


def registry() -> Registry:
    return Registry.parse(
        {
            "keys": [],
            "organisations": [
                {"name": "SVB", "oin": SVB.oin, "roles": ["screener"]},
                {"name": "ADR", "oin": "00000099000000000030", "roles": ["auditor"]},
            ],
        }
    )


def _request(pki: Path, sender_dir: str = "svb", reply: str = "svb-sealing") -> bytes:
    out = io.BytesIO()
    _, reply_cert = load_receiver(pki / reply, PASS)
    with SealedWriter(
        out,
        sender=load_sender(pki / sender_dir, PASS),
        recipient=load_recipient(pki / "uwv-sealing" / "cert.pem"),
        kind=MessageKind.REQUEST,
        message_id="batch-p",
        content_type="application/x-protobuf",
        clock=lambda: NOW,
        reply_certificate=reply_cert,
    ) as w:
        w.write(b"the batch")
    return out.getvalue()


def test_request_and_reply_between_dev_parties(pki: Path) -> None:
    blob = _request(pki)
    uwv_key, _ = load_receiver(pki / "uwv-sealing", PASS)
    senders = senders_from_registry(registry(), trust_anchors(pki / "server"), lambda: NOW)
    reader = SealedReader.open(
        io.BytesIO(blob), receiver=uwv_key, senders=senders, kinds={MessageKind.REQUEST}
    )
    assert reader.read_all() == b"the batch"
    assert reader.sender.oin == SVB.oin
    assert reader.reply_recipient is not None and reader.reply_recipient.oin == SVB.oin
    assert reader.summary is not None
    bound = InReplyTo(message_id="batch-p", sha256=reader.summary.sha256)

    out = io.BytesIO()
    with SealedWriter(
        out,
        sender=load_sender(pki / "server", PASS),
        recipient=reader.reply_recipient,
        kind=MessageKind.RESPONSE,
        message_id="resp-p",
        content_type="application/x-protobuf",
        clock=lambda: NOW,
        in_reply_to=bound,
    ) as w:
        w.write(b"the answer")
    svb_key, _ = load_receiver(pki / "svb-sealing", PASS)
    answer = SealedReader.open(
        io.BytesIO(out.getvalue()),
        receiver=svb_key,
        senders=replies_from(UWV.oin, trust_anchors(pki / "svb"), lambda: NOW),
        kinds={MessageKind.RESPONSE},
        reply_to=bound,
    )
    assert answer.read_all() == b"the answer"
    assert answer.sender.oin == UWV.oin


def test_an_auditor_may_not_send_a_request(pki: Path) -> None:
    blob = _request(pki, sender_dir="auditor")
    uwv_key, _ = load_receiver(pki / "uwv-sealing", PASS)
    senders = senders_from_registry(registry(), trust_anchors(pki / "server"), lambda: NOW)
    with pytest.raises(SignerRefused, match="not authorised to send a request"):
        SealedReader.open(
            io.BytesIO(blob), receiver=uwv_key, senders=senders, kinds={MessageKind.REQUEST}
        )


def test_a_reply_certificate_of_another_organisation_is_refused(pki: Path) -> None:
    blob = _request(pki, reply="uwv-sealing")  # SVB asks UWV to answer to UWV's own key
    uwv_key, _ = load_receiver(pki / "uwv-sealing", PASS)
    senders = senders_from_registry(registry(), trust_anchors(pki / "server"), lambda: NOW)
    with pytest.raises(SignerRefused, match="reply certificate is of OIN"):
        SealedReader.open(
            io.BytesIO(blob), receiver=uwv_key, senders=senders, kinds={MessageKind.REQUEST}
        )


def test_a_tls_certificate_is_not_an_encryption_key(pki: Path) -> None:
    with pytest.raises(SignerRefused, match="keyAgreement"):
        load_recipient(pki / "server" / "cert.pem")


def test_a_reply_from_another_organisation_is_refused(pki: Path) -> None:
    """SVB seals a 'response' to itself, as if from UWV: replies come only from UWV."""
    out = io.BytesIO()
    bound = InReplyTo(message_id="batch-p", sha256="ab" * 32)
    with SealedWriter(
        out,
        sender=load_sender(pki / "svb", PASS),
        recipient=load_recipient(pki / "svb-sealing" / "cert.pem"),
        kind=MessageKind.RESPONSE,
        message_id="resp-x",
        content_type="application/x-protobuf",
        clock=lambda: NOW,
        in_reply_to=bound,
    ) as w:
        w.write(b"forged answer")
    svb_key, _ = load_receiver(pki / "svb-sealing", PASS)
    with pytest.raises(SignerRefused, match="not authorised to send a response"):
        SealedReader.open(
            io.BytesIO(out.getvalue()),
            receiver=svb_key,
            senders=replies_from(UWV.oin, trust_anchors(pki / "svb"), lambda: NOW),
            kinds={MessageKind.RESPONSE},
            reply_to=bound,
        )


def test_second_pass_refuses_a_replaced_file(pki: Path) -> None:
    first, second = _request(pki), _request(pki)
    uwv_key, _ = load_receiver(pki / "uwv-sealing", PASS)
    senders = senders_from_registry(registry(), trust_anchors(pki / "server"), lambda: NOW)
    reader = SealedReader.open(
        io.BytesIO(first), receiver=uwv_key, senders=senders, kinds={MessageKind.REQUEST}
    )
    reader.read_all()
    assert reader.summary is not None
    with pytest.raises(ReplayRefused, match="replaced in between"):
        SealedReader.open(
            io.BytesIO(second),
            receiver=uwv_key,
            senders=senders,
            kinds={MessageKind.REQUEST},
            expect_header_sha256=reader.summary.header_sha256,
        )
