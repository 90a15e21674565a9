"""``rlhf-gym serve-reward``: serve any reward predictor over HTTP (FastAPI + uvicorn).

``POST /score`` takes ``{"prompts": [...], "completions": [...]}`` and answers
``{"rewards": [...]}``; ``GET /health`` says which predictor is served. It binds to 127.0.0.1
unless told otherwise: a reward model is rarely meant for the whole network.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from rlhf_gym.rewards.base import RewardPredictor, check_scores, make_reward_predictor


def build_app(predictor: RewardPredictor) -> Any:
    """A FastAPI app serving ``predictor`` on the JSON protocol."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    class ScoreRequest(BaseModel):
        prompts: list[str]
        completions: list[str]

    class ScoreResponse(BaseModel):
        rewards: list[float]

    app = FastAPI(title="rlhf-gym reward predictor")

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which cannot be written back as JSON
        # when it is NaN or Infinity (a 500); the location and the reason are what a client needs
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "predictor": repr(predictor)}

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        if len(request.prompts) != len(request.completions):
            raise HTTPException(
                422, f"{len(request.prompts)} prompts but {len(request.completions)} completions"
            )
        try:
            raw = predictor(request.prompts, request.completions)
            rewards = check_scores(raw, len(request.prompts), predictor)
        except Exception as err:  # the client gets the reason, the server keeps serving
            raise HTTPException(500, f"{type(err).__name__}: {err}") from err
        return ScoreResponse(rewards=rewards.tolist())

    return app


def load_predictor(specs: list[str], reduce: str = "mean") -> RewardPredictor:
    """A predictor from names or saved reward-model directories; several make an ensemble."""
    from rlhf_gym.rewards.ensemble import EnsemblePredictor
    from rlhf_gym.rewards.learned import LearnedRewardModel

    members = [
        LearnedRewardModel.from_pretrained(spec)
        if Path(spec).is_dir()
        else make_reward_predictor(spec)
        for spec in specs
    ]
    return members[0] if len(members) == 1 else EnsemblePredictor(members, reduce=reduce)


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
        "--reduce", choices=("mean", "min"), default="mean", help="how an ensemble combines scores"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    return parser


def run(args: argparse.Namespace) -> int:
    import uvicorn

    predictor = load_predictor(args.predictor or ["sentiment-rm"], args.reduce)
    print(f"serving {predictor!r} on http://{args.host}:{args.port}/score", file=sys.stderr)
    uvicorn.run(build_app(predictor), host=args.host, port=args.port, log_level="warning")
    return 0
