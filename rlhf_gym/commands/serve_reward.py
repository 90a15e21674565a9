"""``rlhf-gym serve-reward``: serve any reward predictor over HTTP (FastAPI + uvicorn).

``POST /score`` takes ``{"prompts": [...], "completions": [...]}`` and answers
``{"rewards": [...]}``; ``GET /health`` says which predictor is served. It binds to 127.0.0.1
unless told otherwise: a reward model is rarely meant for the whole network, and bound beyond
loopback it requires ``Authorization: Bearer <token>`` (``--token``, or one generated and
printed). Requests are bounded (:class:`ServeLimits`: body bytes -> 413, texts per request and
characters per text -> 422, concurrent scoring calls), so one client cannot exhaust the server.
"""

import argparse
import hmac
import secrets
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_gym.rewards.base import RewardPredictor, check_scores, make_reward_predictor
from rlhf_gym.rewards.ensemble import REDUCTIONS

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the server."""

    max_body_bytes: int = 4_000_000
    max_texts: int = 1024
    """Completions per request."""
    max_text_chars: int = 20_000
    """Characters per prompt or completion."""
    max_concurrent: int = 2
    """Scoring calls running at once; more requests wait their turn."""


def build_app(
    predictor: RewardPredictor, limits: ServeLimits | None = None, token: str | None = None
) -> Any:
    """A FastAPI app serving ``predictor`` on the JSON protocol, within ``limits``; with a
    ``token``, every request but ``/health`` must carry ``Authorization: Bearer <token>``."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict

    from rlhf_gym.preferences.web import answer_validation_errors

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

        prompts: list[str]
        completions: list[str]

    class ScoreResponse(BaseModel):
        rewards: list[float]

    limits = limits or ServeLimits()
    scoring = threading.Semaphore(limits.max_concurrent)
    app = FastAPI(title="rlhf-gym reward predictor")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token is not None and request.url.path != "/health":
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "a valid bearer token is required"}, 401)
        size = request.headers.get("content-length")
        if size is None and request.method == "POST":  # a chunked body could be unbounded
            return JSONResponse({"detail": "a Content-Length header is required"}, 411)
        if size is not None and (not size.isdigit() or int(size) > limits.max_body_bytes):
            detail = f"the body may have at most {limits.max_body_bytes} bytes, got {size}"
            return JSONResponse({"detail": detail}, 413)
        return await call_next(request)

    answer_validation_errors(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "predictor": repr(predictor)}

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        if len(request.prompts) != len(request.completions):
            raise HTTPException(
                422, f"{len(request.prompts)} prompts but {len(request.completions)} completions"
            )
        if len(request.prompts) > limits.max_texts:
            raise HTTPException(
                422,
                f"at most {limits.max_texts} completions per request, got {len(request.prompts)}",
            )
        longest = max(map(len, [*request.prompts, *request.completions]), default=0)
        if longest > limits.max_text_chars:
            raise HTTPException(
                422, f"a text has {longest} characters; at most {limits.max_text_chars} allowed"
            )
        try:
            with scoring:
                raw = predictor(request.prompts, request.completions)
            rewards = check_scores(raw, len(request.prompts), predictor)
        except Exception as err:  # the client gets the reason, the server keeps serving
            raise HTTPException(500, f"{type(err).__name__}: {err}") from err
        return ScoreResponse(rewards=rewards.tolist())

    return app


def load_predictor(
    specs: list[str], reduce: str = "mean", uncertainty_coef: float = 1.0
) -> RewardPredictor:
    """A predictor from names or saved reward-model directories; several make an ensemble.

    A spec that cannot be built raises ``ValueError`` naming it.
    """
    from rlhf_gym.rewards.ensemble import EnsemblePredictor

    members = [_load_member(spec) for spec in specs]
    if len(members) == 1:
        return members[0]
    return EnsemblePredictor(members, reduce=reduce, uncertainty_coef=uncertainty_coef)


def _load_member(spec: str) -> RewardPredictor:
    from rlhf_gym.rewards.learned import LearnedRewardModel

    try:
        if Path(spec).is_dir():
            return LearnedRewardModel.from_pretrained(spec)
        return make_reward_predictor(spec)
    except TypeError as err:  # a predictor that needs settings, e.g. remote's url
        raise ValueError(
            f"predictor {spec!r} needs settings that serve-reward cannot pass ({err}); "
            "serve a saved model directory or a predictor that takes none"
        ) from err
    except (OSError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load the reward predictor {spec!r}: {reason}") from err


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, created with protocol ``IPPROTO_TCP``:
    asyncio sets ``TCP_NODELAY`` on accepted connections only for such a socket (not for one
    from ``socket.create_server``, protocol 0), and without it Nagle's algorithm holds every
    response's last segment until the client's delayed ACK, ~40 ms per request."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve-reward", help="serve a reward predictor over HTTP (POST /score)"
    )
    parser.add_argument(
        "--predictor",
        action="append",
        default=None,
        help="predictor name (see rlhf_gym.rewards) or a saved reward-model directory; "
        "repeat for an ensemble (default: sentiment-rm)",
    )
    parser.add_argument(
        "--reduce",
        choices=REDUCTIONS,
        default="mean",
        help="how an ensemble combines scores (mean-minus-std: mean - coef * members' std)",
    )
    parser.add_argument(
        "--uncertainty-coef", type=float, default=1.0, help="lambda of --reduce mean-minus-std"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free one)")
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token clients must send; required beyond loopback (default there: one "
        "generated and printed)",
    )
    defaults = ServeLimits()
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts)
    parser.add_argument("--max-text-chars", type=int, default=defaults.max_text_chars)
    parser.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent)
    return parser


def run(args: argparse.Namespace) -> int:
    import uvicorn

    limits = ServeLimits(
        args.max_body_bytes, args.max_texts, args.max_text_chars, args.max_concurrent
    )
    if min(vars(limits).values()) < 1 or not 0 <= args.port <= 65535:
        print(
            f"rlhf-gym serve-reward: error: bad port or limits: {args.port}, {limits}",
            file=sys.stderr,
        )
        return 2
    token = args.token
    if token is None and args.host not in LOOPBACK:
        token = secrets.token_urlsafe(24)
        print(f"access token (send 'Authorization: Bearer <token>'): {token}", file=sys.stderr)
    try:
        specs = args.predictor or ["sentiment-rm"]
        predictor = load_predictor(specs, args.reduce, args.uncertainty_coef)
        sock = bind_tcp(args.host, args.port)  # bound before "serving" is printed
    except (ValueError, OSError) as err:
        print(f"rlhf-gym serve-reward: error: {err}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]  # the one the OS chose for --port 0
    print(f"serving {predictor!r} on http://{args.host}:{port}/score", file=sys.stderr)
    config = uvicorn.Config(build_app(predictor, limits, token), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
