"""Wire constants both sides share: message limits, metadata keys, channel options.

The client (:mod:`svb_client.wire`) and the server's gRPC layer import these from here, so a
limit cannot differ between the two ends of a channel.
"""

from __future__ import annotations

from typing import Final

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""A masked chunk is ~350 KB (one ciphertext + 4 bytes a BSN); a strict chunk at N=16384 is 39
ciphertexts of ~1.05 MB (~41 MB) and its public context 6.1 MB. 64 MiB admits both with room
and bounds what one message can cost the receiver."""

ERROR_METADATA_KEY: Final = "eligibility-error-bin"
"""Trailing metadata key of the serialised ``ErrorDetail`` of an error that ends a call."""

CHANNEL_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)
"""gRPC channel and server options that set the contract's message limits."""
