"""What travels inside a sealed file between SVB and UWV: the contract's own messages.

A payload is a sequence of length-prefixed records (:mod:`shared.sealed.records`), each one
serialised protobuf message of ``proto/eligibility/v2``, in a fixed order that the header's
``content_type`` names. The messages are the ones the gRPC path sends, so both sides convert
them with the same code whether they came over a channel or in a file.
"""

from __future__ import annotations

from typing import Final

SCREEN_REQUEST: Final = "application/vnd.aio.screen-request+protobuf"
"""Records: ``UploadContextRequest`` (the public context, always), ``ScreenRequest`` with the
batch header, then one ``ScreenRequest`` per chunk."""
SCREEN_RESPONSE: Final = "application/vnd.aio.screen-response+protobuf"
"""Records: one ``ScreenResponse`` with a ``ChunkResult`` per chunk, in order, then one
``ScreenResponse`` with the ``BatchSummary``."""
SCREEN_REFUSAL: Final = "application/vnd.aio.screen-refusal+protobuf"
"""One record: the ``ErrorDetail`` of a batch UWV refused as a whole (what ends a gRPC
stream with a status); nothing was evaluated or charged. Answers both request kinds."""
RUNS_REQUEST: Final = "application/vnd.aio.enclave-runs-request+protobuf"
"""A compute-to-data batch: one ``RunRequest`` per run, in order (what the pipeline would send
one ``Run`` call at a time)."""
RUNS_RESPONSE: Final = "application/vnd.aio.enclave-runs-response+protobuf"
"""One ``SealedRunResult`` per run, in the request's order: the ``RunResponse`` (outcomes,
refusals, the runner's signed statement) or the ``ErrorDetail`` that would have ended that
call; after an error no later run was evaluated, and the file ends there."""
RULE_SUBMISSION: Final = "application/vnd.aio.rule-submission+protobuf"
"""One ``SubmitRuleRequest``: a signed rule bundle for UWV's compute-to-data register (kind
``rule_submission``)."""
RULE_STATUS: Final = "application/vnd.aio.rule-status+protobuf"
"""One ``SubmitRuleResponse``: the rule's state and the verifier's report, as ``SubmitRule``
returns them."""
