import asyncio
import socket
import threading
import time

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from rlhf_gym.commands.serve_reward import build_app
from rlhf_gym.rewards import RemoteRewardError, RemoteRewardPredictor, make_reward_predictor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """A real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app):
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def url(self, path="/score"):
        return f"http://127.0.0.1:{self.port}{path}"


def length(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float32)


@pytest.fixture(scope="module")
def scoring_server():
    with ServerThread(build_app(length)) as server:
        yield server


@pytest.fixture(scope="module")
def misbehaving_server():
    app = FastAPI()
    calls = {"flaky": 0}

    @app.post("/slow")
    def slow():
        time.sleep(1.0)
        return {"rewards": [0.0]}

    @app.post("/trickle")
    async def trickle():
        async def one_byte_at_a_time():
            yield b'{"rewards": [0.0'
            for _ in range(50):
                await asyncio.sleep(0.1)
                yield b" "
            yield b"]}"

        return StreamingResponse(one_byte_at_a_time(), media_type="application/json")

    @app.post("/text")
    def text():
        return PlainTextResponse("<html>oops</html>")

    @app.post("/nokey")
    def nokey():
        return {"scores": [1.0]}

    @app.post("/short")
    def short():
        return {"rewards": []}

    @app.post("/words")
    def words():
        return {"rewards": ["high"]}

    @app.post("/forbidden")
    def forbidden():
        return JSONResponse({"detail": "no key"}, status_code=403)

    @app.post("/flaky")
    async def flaky(request: Request):
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            return JSONResponse({"detail": "busy"}, status_code=503)
        body = await request.json()
        return {"rewards": [1.0] * len(body["prompts"])}

    with ServerThread(app) as server:
        server.calls = calls
        yield server


def test_scores_come_back_from_the_real_server(scoring_server):
    remote = RemoteRewardPredictor(scoring_server.url(), batch_size=2)
    scores = remote(["p", "q", "r"], ["a", "bcd", ""])
    np.testing.assert_array_equal(scores, [1.0, 3.0, 0.0])
    assert scores.dtype == np.float32
    assert remote([], []).shape == (0,)


def test_registered_by_name(scoring_server):
    remote = make_reward_predictor("remote", url=scoring_server.url())
    assert remote(["p"], ["ab"]).tolist() == [2.0]


def test_server_down_fails_after_retries_with_a_clear_error():
    remote = RemoteRewardPredictor(f"http://127.0.0.1:{free_port()}/score", retries=1, backoff=0)
    with pytest.raises(RemoteRewardError, match=r"could not connect .*\(2 attempts\)"):
        remote(["p"], ["a"])


def test_slow_server_times_out(misbehaving_server):
    remote = RemoteRewardPredictor(misbehaving_server.url("/slow"), timeout=0.2, retries=0)
    start = time.monotonic()
    with pytest.raises(RemoteRewardError, match=r"timed out after 0.2s"):
        remote(["p"], ["a"])
    assert time.monotonic() - start < 0.9


def test_a_trickling_server_cannot_stretch_the_deadline(misbehaving_server):
    """Each byte arrives well within httpx's per-read timeout; the whole body takes 5 s."""
    remote = RemoteRewardPredictor(misbehaving_server.url("/trickle"), timeout=1.0, retries=2)
    start = time.monotonic()
    with pytest.raises(RemoteRewardError, match=r"timed out after 1s \(1 attempts\)"):
        remote(["p"], ["a"])
    assert time.monotonic() - start < 1.6  # not 3 x 5 s


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/text", "answered non-JSON"),
        ("/nokey", "expected a JSON object with 'rewards'"),
        ("/short", r"shape \(0,\) for 1 completions"),
        ("/words", "numbers"),
        ("/forbidden", "rejected the request with HTTP 403"),
    ],
)
def test_garbage_answers_raise_without_retrying(misbehaving_server, path, message):
    remote = RemoteRewardPredictor(misbehaving_server.url(path), retries=3, backoff=5)
    start = time.monotonic()
    with pytest.raises(RemoteRewardError, match=message):
        remote(["p"], ["a"])
    assert time.monotonic() - start < 2  # no back-off sleeps: not retried


def test_server_errors_are_retried(misbehaving_server):
    remote = RemoteRewardPredictor(misbehaving_server.url("/flaky"), retries=2, backoff=0.01)
    assert remote(["p", "q"], ["a", "b"]).tolist() == [1.0, 1.0]
    assert misbehaving_server.calls["flaky"] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "127.0.0.1:8000"}, "must start with http"),
        ({"url": "http://x", "timeout": 0}, "need timeout > 0"),
        ({"url": "http://x", "batch_size": 0}, "batch_size must be positive"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RemoteRewardPredictor(**kwargs)


def test_length_mismatch_raises_before_any_request():
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        RemoteRewardPredictor("http://127.0.0.1:1/score")(["a", "b"], ["c"])
