"""Who asks, as the audit log records it: over mutual TLS the certificate, in a sealed file the
verified signer. The header may name that caller (OIN, organisation, or both as logged) or
nothing, never another organisation."""

from __future__ import annotations

import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.sealed.identity import Party
from uwv_server.grpc.runtime import RequesterMismatch
from uwv_server.grpc.screening import batch_request

SVB = Party(oin="00000099000000000020", organisation="SVB", subject="O=SVB", fingerprint="ab" * 32)


def _header(requester: str) -> pb.BatchHeader:
    return pb.BatchHeader(
        batch_id="b1",
        requester=requester,
        mode=pb.MODE_MASKED,
        period="2026-01..2026-06",
        context_sha256="cd" * 32,
        rule_digest="ef" * 32,
    )


@pytest.mark.parametrize("claimed", ["", "SVB", SVB.oin, "SVB (OIN 00000099000000000020)"])
def test_a_sealed_file_is_recorded_under_its_verified_signer(claimed: str) -> None:
    header = _header(claimed)
    assert batch_request(header, header.requester, SVB).requester == str(SVB)


@pytest.mark.parametrize("claimed", ["ADR", "00000099000000000030", "SVB sealed file", "UWV"])
def test_a_sealed_file_cannot_name_another_requester(claimed: str) -> None:
    header = _header(claimed)
    with pytest.raises(RequesterMismatch, match="is not the authenticated caller SVB"):
        batch_request(header, header.requester, SVB)
