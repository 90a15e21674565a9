"""``rlhf-gym serve-reward`` and its client under faults: malformed and oversized bodies,
non-finite scores, a server that trickles its answer, missing tokens and bad arguments (issue 11,
items 8-12). The server is the real command in a subprocess, bound to loopback."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from rlhf_gym.cli import main
from rlhf_gym.commands.serve_reward import build_app
from rlhf_gym.rewards import RemoteRewardError, RemoteRewardPredictor

from .conftest import assert_one_line_error, command, environment

TOKEN = "s3cret"


class Server:
    """``rlhf-gym serve-reward`` on a free loopback port; ``port`` is read from its own line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            command("serve-reward", "--port", "0", *args),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment(),
        )  # fmt: skip
        for line in self.process.stderr:
            if match := re.search(r"serving .* on http://127\.0\.0\.1:(\d+)/score", line):
                self.port = int(match.group(1))
                return
        raise RuntimeError(f"the server exited ({self.process.wait()}) before serving")

    def request(
        self, body: bytes, path: str = "/score", headers: dict[str, str] | None = None
    ) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = Server("--predictor", "length", "--token", TOKEN, "--max-body-bytes", "100000")
    yield server
    server.close()


def authorised(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **headers}


def test_serving_is_printed_only_once_the_port_accepts_connections(server):
    """Item 11: the first connection after the line succeeds, without retrying."""
    status, body = server.request(
        b'{"prompts": ["p"], "completions": ["four"]}', headers=authorised()
    )
    assert status == 200 and len(body["rewards"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompts": ["p"], "completions": [NaN]}',
        b'{"prompts": ["p"], "completions": ["x"], "extra": Infinity}',
        b'{"prompts": -Infinity, "completions": ["x"]}',
        b'{"prompts": ["p"], "completions": ',
        b"\xff\xfe not utf-8",
        b'{"prompts": ["p", "q"], "completions": ["x"]}',
        b"[]",
    ],
)
def test_malformed_bodies_get_a_4xx_with_a_message_and_the_server_stays_up(server, body):
    """Item 8: NaN / Infinity literals used to give 500 (not JSON compliant)."""
    status, answer = server.request(body, headers=authorised())
    assert 400 <= status < 500 and answer["detail"]
    assert (
        server.request(b'{"prompts": ["p"], "completions": ["ok"]}', headers=authorised())[0] == 200
    )


def test_an_oversized_body_is_refused_unread(server):
    """Item 9: 10 MB of text is refused by its Content-Length, fast, with 413."""
    started = time.perf_counter()
    text = "x" * 10_000_000
    body = json.dumps({"prompts": ["p"], "completions": [text]}).encode()
    try:
        status, answer = server.request(body, headers=authorised())
    except (BrokenPipeError, ConnectionResetError):  # refused before all of it was sent
        status, answer = 413, {"detail": "closed early"}
    assert status == 413 and answer["detail"]
    assert time.perf_counter() - started < 5


def test_requests_without_the_token_are_refused(server):
    """Item 11."""
    body = b'{"prompts": ["p"], "completions": ["x"]}'
    assert server.request(body)[0] == 401
    assert server.request(body, headers={"Authorization": "Bearer wrong"})[0] == 401


def test_non_finite_scores_give_a_5xx_naming_the_predictor():
    """Item 8: the predictor's fault is a clear 5xx, and the server keeps serving."""
    from fastapi.testclient import TestClient

    def broken(prompts, completions):
        return np.full(len(completions), np.nan, dtype=np.float32)

    client = TestClient(build_app(broken))
    response = client.post("/score", json={"prompts": ["p"], "completions": ["x"]})
    assert response.status_code == 500
    assert "broken" in response.json()["detail"] and "finite" in response.json()["detail"]


@pytest.fixture
def trickling_port() -> Iterator[int]:
    """A raw socket server that sends a valid HTTP head, then one body byte every 0.1 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            body = b'{"rewards": [0.0' + b" " * 100 + b"]}"
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            for byte in body:
                if stop.wait(0.1):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up, as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_the_client_timeout_is_a_deadline_for_the_whole_call(trickling_port):
    """Item 10: each byte arrives within the socket timeout, yet the call must end at 1 s."""
    remote = RemoteRewardPredictor(
        f"http://127.0.0.1:{trickling_port}/score", timeout=1.0, retries=0
    )
    started = time.perf_counter()
    with pytest.raises(RemoteRewardError, match=r"deadline|timed out|timeout"):
        remote(["p"], ["x"])
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--predictor", "no-such-predictor"], ["no-such-predictor"]),
        (["--predictor", "remote"], ["'remote' needs settings", "url"]),
        (["--predictor", "length", "--port", "99999"], ["bad port"]),
        (["--predictor", "{empty_model_dir}"], ["cannot load the reward predictor", "empty_model"]),
    ],
)
def test_bad_serve_arguments_are_one_line_errors(tmp_path, capsys, args, fragments):
    """Item 12: each refused before anything is bound, in one line."""
    empty = tmp_path / "empty_model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")  # a model directory without weights
    code = main(["serve-reward", *(a.format(empty_model_dir=empty) for a in args)])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], code, captured.out, captured.err)
    assert_one_line_error(result, *fragments)
    assert "serving" not in captured.err and len(captured.err.splitlines()) == 1
