"""Load on ``rlhf-gym serve-reward``: requests/s, texts/s and latency of the HTTP reward server.

The script starts the real CLI (``python -m rlhf_gym.cli serve-reward``) once per predictor, on
127.0.0.1 with ``--port 0`` and the server's default limits (written out on its command line),
reads the port the OS chose from its "serving ... on" line and stops it at the end, on error
too. Both servers start at once; each is measured alone, the other idle.

Each configuration is a FIXED number of ``POST /score`` requests (``--gold-requests`` for VADER,
``--learned-requests`` for the shipped ``sentiment-rm``) spread over a fixed number of client
threads (``--clients``), each on its own keep-alive ``http.client`` connection with
``TCP_NODELAY`` (as ``RemoteRewardPredictor``'s httpx client has). Every request scores
``--texts`` completions of about ``--chars`` characters, drawn once from a seeded numpy
Generator. A few unmeasured requests warm each server first. Measured per configuration:
requests/s and texts/s over the wall time from the first request sent to the last answer read,
latency p50/p90/p99 (send to whole answer, numpy percentiles) and errors (an exception, a status
other than 200, or an answer without one finite reward per text). Client and server share the
machine's cores.

Separately, per server: a body one byte over ``--max-body-bytes`` must get 413, a body with a NaN
where a text belongs must get 422, and ``GET /health`` and one normal request must still succeed.

The default counts keep the whole run under 20 s on 2 CPU cores, server start-up included
(about 7 s, most of it importing torch and transformers).

Usage: python benchmarks/serve_reward_load.py [--clients 1 8 32] [--gold-requests 200]
Writes benchmarks/results/serve_reward_load.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import json
import math
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "serve_reward_load.json"
HOST = "127.0.0.1"
MAX_BODY_BYTES = 4_000_000  # ServeLimits' default, passed explicitly so the 413 check knows it
STARTUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
WARMUP_REQUESTS = 4
SERVING = re.compile(rf"serving .* on http://{re.escape(HOST)}:(?P<port>\d+)/score$")

PROMPTS = (
    "Write a short review of the film:",
    "Tell me about your day.",
    "Describe the restaurant we went to.",
    "What did you think of the book?",
)
WORDS = (
    "the", "a", "movie", "was", "really", "not", "very", "good", "bad", "great", "terrible",
    "and", "but", "I", "loved", "hated", "it", "plot", "acting", "boring", "wonderful", "food",
    "service", "slow", "friendly", "awful", "happy", "sad", "story", "again", "never", "ok",
)  # fmt: skip


@dataclass
class Server:
    """A ``serve-reward`` subprocess and what it wrote to stderr."""

    predictor: str
    command: list[str]
    process: subprocess.Popen[str]
    started: float
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    port: int = 0
    """The port the OS chose, from the "serving" line."""
    startup_s: float | None = None


class Connection(http.client.HTTPConnection):
    """``http.client`` with ``TCP_NODELAY``, as httpx (``RemoteRewardPredictor``) sets it: plain
    ``http.client`` sends headers and body in two writes, and Nagle's algorithm then holds the
    body until the server's delayed ACK, about 40 ms a request on loopback."""

    def __init__(self, port: int) -> None:
        super().__init__(HOST, port, timeout=REQUEST_TIMEOUT_S)

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def start_server(predictor: str) -> Server:
    """Launch the CLI; a thread forwards its stderr lines to ``Server.lines`` (None at EOF)."""
    command = [
        sys.executable, "-m", "rlhf_gym.cli", "serve-reward", "--predictor", predictor,
        "--host", HOST, "--port", "0", "--max-body-bytes", str(MAX_BODY_BYTES),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    server = Server(predictor, command, process, time.perf_counter())

    def forward() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            server.lines.put(line.rstrip("\n"))
        server.lines.put(None)

    threading.Thread(target=forward, daemon=True).start()
    return server


def wait_serving(server: Server, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Block until the server prints its "serving ... on http://HOST:PORT/score" line."""
    seen: list[str] = []
    deadline = server.started + timeout
    while True:
        try:
            line = server.lines.get(timeout=max(deadline - time.perf_counter(), 0.01))
        except queue.Empty:
            raise RuntimeError(f"{server.predictor}: no 'serving' line in {timeout:g}s") from None
        if line is None:
            raise RuntimeError(f"{server.predictor}: the server exited: {' | '.join(seen)}")
        seen.append(line)
        if found := SERVING.match(line):
            server.port = int(found["port"])
            server.startup_s = time.perf_counter() - server.started
            return


def stop_server(server: Server) -> int | None:
    """Terminate (then kill) the server; its exit status."""
    if server.process.poll() is None:
        server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    return server.process.returncode


def drain(server: Server) -> list[str]:
    """What a stopped server wrote to stderr after its "serving" line (its last 20 lines)."""
    lines: list[str] = []
    with contextlib.suppress(queue.Empty):
        while (line := server.lines.get(timeout=1)) is not None:
            lines.append(line)
    return lines[-20:]


@contextlib.contextmanager
def running_servers(predictors: list[str]) -> Iterator[dict[str, Server]]:
    """Start every server at once, wait for all, and always stop them."""
    servers: dict[str, Server] = {}
    try:
        for predictor in predictors:
            servers[predictor] = start_server(predictor)
        for server in servers.values():
            wait_serving(server)
        yield servers
    finally:
        for server in servers.values():  # all told to stop first, then waited for
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers.values():
            stop_server(server)


def make_bodies(count: int, texts: int, chars: int, seed: int) -> list[bytes]:
    """``count`` JSON request bodies of ``texts`` (prompt, completion) pairs each."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        prompts = [PROMPTS[i] for i in rng.integers(len(PROMPTS), size=texts)]
        completions = [_sentence(rng, chars) for _ in range(texts)]
        bodies.append(json.dumps({"prompts": prompts, "completions": completions}).encode())
    return bodies


def _sentence(rng: np.random.Generator, chars: int) -> str:
    words: list[str] = []
    while sum(map(len, words)) + len(words) < chars:
        words.append(WORDS[int(rng.integers(len(WORDS)))])
    return " ".join(words) + "."


def post(conn: Connection, path: str, body: bytes) -> tuple[int, bytes]:
    """One POST on a kept-alive connection: (status, body)."""
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def valid_rewards(status: int, payload: bytes, texts: int) -> bool:
    if status != 200:
        return False
    rewards = json.loads(payload).get("rewards")
    return (
        isinstance(rewards, list)
        and len(rewards) == texts
        and all(isinstance(r, int | float) and math.isfinite(r) for r in rewards)
    )


def run_load(port: int, bodies: list[bytes], texts: int, clients: int, requests: int) -> dict:
    """``requests`` POSTs (bodies taken in turn) from ``clients`` threads; figures."""
    local = threading.local()
    connections: list[Connection] = []
    lock = threading.Lock()

    def one(i: int) -> tuple[float, str | None]:
        if getattr(local, "conn", None) is None:
            local.conn = Connection(port)
            with lock:
                connections.append(local.conn)
        start = time.perf_counter()
        try:
            status, payload = post(local.conn, "/score", bodies[i % len(bodies)])
            error = None if valid_rewards(status, payload, texts) else f"HTTP {status}"
        except Exception as err:  # counted, not raised: the run goes on
            local.conn.close()
            local.conn = None
            error = f"{type(err).__name__}: {err}"
        return time.perf_counter() - start, error

    with ThreadPoolExecutor(max_workers=clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(one, range(requests)))
        wall = time.perf_counter() - start
    for conn in connections:
        conn.close()
    latencies_ms = np.array([seconds for seconds, _ in results]) * 1000
    errors = [error for _, error in results if error is not None]
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    return {
        "clients": clients,
        "requests": requests,
        "texts_per_request": texts,
        "wall_s": wall,
        "requests_per_s": requests / wall,
        "texts_per_s": requests * texts / wall,
        "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "max": float(latencies_ms.max())},
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }


def oversized_status(port: int) -> tuple[int | None, str]:
    """POST a body one byte over the limit; the server may answer before reading it all."""
    padding = "x" * (MAX_BODY_BYTES + 1 - len('{"prompts":[],"completions":[""]}'))
    body = json.dumps({"prompts": [], "completions": [padding]}, separators=(",", ":")).encode()
    assert len(body) == MAX_BODY_BYTES + 1
    conn = Connection(port)
    try:
        conn.putrequest("POST", "/score")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.send(body)  # a server that already said 413 may close mid-body
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")[:200]
    except OSError as err:
        return None, f"{type(err).__name__}: {err}"
    finally:
        conn.close()


def check_limits(port: int, body: bytes, texts: int) -> dict[str, Any]:
    """The oversized and NaN bodies are refused, and the server keeps serving after them."""
    nan_body = json.dumps({"prompts": ["a", "b"], "completions": ["fine", float("nan")]}).encode()
    assert b"NaN" in nan_body  # json.dumps writes NaN, which Python's json.loads reads back
    oversized, oversized_detail = oversized_status(port)
    conn = Connection(port)
    try:
        nan_status, nan_payload = post(conn, "/score", nan_body)
        conn.request("GET", "/health")
        health = conn.getresponse()
        health_status, health_payload = health.status, health.read()
        status, payload = post(conn, "/score", body)
    finally:
        conn.close()
    after_ok = health_status == 200 and valid_rewards(status, payload, texts)
    return {
        "oversized_body_bytes": MAX_BODY_BYTES + 1,
        "oversized_status": oversized,
        "oversized_detail": oversized_detail,
        "nan_status": nan_status,
        "nan_detail": nan_payload.decode(errors="replace")[:200],
        "health_after": json.loads(health_payload) if health_status == 200 else health_status,
        "serving_after": after_ok,
        "passed": oversized == 413 and nan_status == 422 and after_ok,
    }


def warm_up(port: int, bodies: list[bytes]) -> None:
    conn = Connection(port)
    try:
        for body in bodies[:WARMUP_REQUESTS]:
            post(conn, "/score", body)
    finally:
        conn.close()


def markdown(rows: list[dict]) -> str:
    lines = [
        "| predictor | clients | requests | requests/s | texts/s | p50 ms | p90 ms | p99 ms "
        "| errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['predictor']} | {r['clients']} | {r['requests']} | {r['requests_per_s']:,.0f} "
            f"| {r['texts_per_s']:,.0f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} "
            f"| {r['errors']} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--gold", default="vader", help="the fast predictor served")
    parser.add_argument("--learned", default="sentiment-rm", help="the learned predictor served")
    parser.add_argument("--gold-requests", type=int, default=200)
    parser.add_argument("--learned-requests", type=int, default=64)
    parser.add_argument("--texts", type=int, default=8, help="completions per request")
    parser.add_argument("--chars", type=int, default=100, help="about this long each")
    parser.add_argument("--bodies", type=int, default=64, help="distinct bodies, sent in turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    load_before = list(os.getloadavg())
    bodies = make_bodies(args.bodies, args.texts, args.chars, args.seed)
    counts = {args.gold: args.gold_requests, args.learned: args.learned_requests}
    rows, checks, servers_info = [], {}, {}
    # benchmarks/machine.py imports torch (seconds): let that overlap the servers' start-up
    importer = threading.Thread(target=importlib.import_module, args=("machine",))
    importer.start()
    with running_servers(list(counts)) as servers:
        for predictor, server in servers.items():
            warm_up(server.port, bodies)
            for clients in args.clients:
                row = run_load(server.port, bodies, args.texts, clients, counts[predictor])
                rows.append({"predictor": predictor, **row})
                print(json.dumps(rows[-1]), flush=True)
            checks[predictor] = check_limits(server.port, bodies[0], args.texts)
            print(json.dumps({"predictor": predictor, **checks[predictor]}), flush=True)
    for predictor, server in servers.items():
        servers_info[predictor] = {
            "command": server.command,
            "startup_s": server.startup_s,
            "exit_status": server.process.returncode,  # -15: stopped by SIGTERM, as asked
            "stderr_after_serving": drain(server),
        }
    importer.join()
    from machine import write_result  # benchmarks/machine.py, imported above

    table = markdown(rows)
    result = {
        "total_seconds": time.perf_counter() - start,
        "servers": servers_info,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "body_bytes_mean": float(np.mean([len(b) for b in bodies])),
        "runs": rows,
        "limit_checks": checks,
        "table": table,
    }
    write_result(args.output, result, load_before=load_before)
    print(table)
    print(f"total {result['total_seconds']:.1f} s; limit checks passed: "
          f"{all(c['passed'] for c in checks.values())}")  # fmt: skip
    errors = sum(r["errors"] for r in rows)
    if errors or not all(c["passed"] for c in checks.values()):
        sys.exit(f"{errors} request errors; limit checks: {checks}")


if __name__ == "__main__":
    main()
