"""The server's own refusals carry their own error codes (issue 10), and SVB's client says
what to do about each: stream limit per caller and in total, memory bound, context quota,
draining, idle timeout. Each against a real server on a free localhost port, through SVB's
pipeline (what ``svb-client screen`` prints is the error's ``diagnostics()``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.he.backend import SecretMaskedContext
from svb_client.pipeline import run_screen
from svb_client.wire import ServerError
from svb_client.wire.errors import ADVICE
from svb_client.wire.grpc_transport import server_error
from tests.integration.test_screen_grpc import PERIOD, _job
from uwv_server.contexts import ContextQuota, ContextRegistry
from uwv_server.grpc.runtime import ServerLimits
from uwv_server.store import import_polis
from uwv_server.synth import generate


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    synth = generate(12, PERIOD, tmp_path / "data", seed=3)
    import_polis(synth.polis_path, tmp_path / "store")
    return tmp_path / "store", synth.households_path


def _refusal(job: Any) -> ServerError:
    with pytest.raises(ServerError) as info:
        run_screen(job)
    return info.value


def _assert_code(error: ServerError, code: str, status: str) -> None:
    assert error.detail is not None, error
    assert error.detail.code == code, error.detail
    assert error.status == status
    text = error.diagnostics()
    assert ADVICE[code] in text
    assert "UNSPECIFIED" not in text


def _held_streams(target: str, n: int, channel_to: Any) -> tuple[threading.Event, list[Any]]:
    """``n`` screening streams that send nothing until released."""
    stub = pb_grpc.ScreeningServiceStub(channel_to(target))
    release = threading.Event()

    def silent() -> Iterator[pb.ScreenRequest]:
        release.wait(60)
        return
        yield

    return release, [stub.Screen(silent(), timeout=60) for _ in range(n)]


def _wait_for_streams(server: Any, n: int) -> None:
    deadline = time.monotonic() + 20
    while server.server.admission.open_streams != n:
        assert time.monotonic() < deadline, "the held streams never opened"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (ServerLimits(max_streams_total=8, max_streams_per_caller=2), "STREAM_LIMIT_CALLER"),
        (ServerLimits(max_streams_total=2, max_streams_per_caller=8), "STREAM_LIMIT_TOTAL"),
    ],
)
def test_stream_limits_per_caller_and_in_total(
    tmp_path: Path,
    store: tuple[Path, Path],
    start_server: Any,
    channel_to: Any,
    secret_context: SecretMaskedContext,
    limits: ServerLimits,
    code: str,
) -> None:
    server = start_server(store[0], limits=limits)
    release, held = _held_streams(server.target, 2, channel_to)
    try:
        _wait_for_streams(server, 2)
        error = _refusal(_job(store[1], server.target, tmp_path, secret_context))
    finally:
        release.set()
        for call in held:
            call.cancel()
    _assert_code(error, code, "RESOURCE_EXHAUSTED")


def test_memory_bound(
    tmp_path: Path,
    store: tuple[Path, Path],
    start_server: Any,
    secret_context: SecretMaskedContext,
) -> None:
    contexts = ContextRegistry(store[0] / "contexts", memory_limit_bytes=1)
    server = start_server(store[0], contexts=contexts)
    error = _refusal(_job(store[1], server.target, tmp_path, secret_context))
    _assert_code(error, "MEMORY_BOUND", "RESOURCE_EXHAUSTED")
    assert "memory bound" in str(error)


def test_context_quota(
    tmp_path: Path,
    store: tuple[Path, Path],
    start_server: Any,
    secret_context: SecretMaskedContext,
) -> None:
    contexts = ContextRegistry(store[0] / "contexts", quota=ContextQuota(max_contexts=0))
    server = start_server(store[0], contexts=contexts)
    error = _refusal(_job(store[1], server.target, tmp_path, secret_context))
    _assert_code(error, "CONTEXT_QUOTA", "RESOURCE_EXHAUSTED")
    assert "quota is 0 contexts" in str(error)


def test_draining(
    tmp_path: Path,
    store: tuple[Path, Path],
    start_server: Any,
    secret_context: SecretMaskedContext,
) -> None:
    server = start_server(store[0])
    assert server.server.drain(0.0)
    error = _refusal(_job(store[1], server.target, tmp_path, secret_context))
    _assert_code(error, "DRAINING", "UNAVAILABLE")


def test_idle_timeout_carries_its_code(
    store: tuple[Path, Path], start_server: Any, channel_to: Any
) -> None:
    """Raw stream (the client never idles): the code is in the trailing ErrorDetail."""
    server = start_server(store[0], limits=ServerLimits(idle_timeout_s=0.3))
    release, (call,) = _held_streams(server.target, 1, channel_to)
    try:
        with pytest.raises(grpc.RpcError) as info:
            list(call)
    finally:
        release.set()
    error = server_error(info.value, "screening stream")
    _assert_code(error, "IDLE_TIMEOUT", "DEADLINE_EXCEEDED")
