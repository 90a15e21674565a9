import socket

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rlhf_gym.cli import build_parser
from rlhf_gym.commands.serve_reward import ServeLimits, build_app, load_predictor, run
from rlhf_gym.rewards import EnsemblePredictor, LengthTarget


def length(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float32)


def test_scores_follow_the_json_protocol():
    client = TestClient(build_app(length))
    response = client.post("/score", json={"prompts": ["p", "q"], "completions": ["ab", ""]})
    assert response.status_code == 200
    assert response.json() == {"rewards": [2.0, 0.0]}
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    "payload",
    [
        {"prompts": ["p"], "completions": ["a", "b"]},
        {"prompts": ["p"]},
        {"prompts": "p", "completions": "a"},
        {"prompts": [1], "completions": [{}]},
    ],
)
def test_bad_requests_get_422(payload):
    response = TestClient(build_app(length)).post("/score", json=payload)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        '{"prompts": NaN, "completions": ["a"]}',
        '{"prompts": ["p"], "completions": [Infinity]}',
        '{"prompts": ["p"], "completions": [-Infinity, NaN]}',
    ],
)
def test_non_finite_literals_in_a_body_get_422_not_500(body):
    client = TestClient(build_app(length), raise_server_exceptions=False)
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_a_failing_predictor_gives_500_with_the_reason():
    def broken(prompts, completions):
        return [float("nan")] * len(prompts)

    response = TestClient(build_app(broken)).post(
        "/score", json={"prompts": ["p"], "completions": ["a"]}
    )
    assert response.status_code == 500
    assert "non-finite" in response.json()["detail"]


def test_predictor_specs_names_directories_and_ensembles(tmp_path):
    from rlhf_gym.rewards import LearnedRewardModel
    from rlhf_gym.training import build_reward_model

    assert isinstance(load_predictor(["length"]), LengthTarget)
    LearnedRewardModel(*build_reward_model("tiny")).save_pretrained(tmp_path / "rm")
    ensemble = load_predictor([str(tmp_path / "rm"), "length"], reduce="min")
    assert isinstance(ensemble, EnsemblePredictor) and ensemble.reduce == "min"
    assert isinstance(ensemble.members[0], LearnedRewardModel)


def test_binds_to_loopback_by_default():
    args = build_parser().parse_args(["serve-reward"])
    assert args.host == "127.0.0.1"


def test_beyond_loopback_a_bearer_token_is_required():
    client = TestClient(build_app(length, token="s3cret"))
    body = {"prompts": ["p"], "completions": ["ab"]}
    assert client.post("/score", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/score", json=body, headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/score", json=body, headers=right).json() == {"rewards": [2.0]}
    assert client.get("/health").status_code == 200  # a liveness probe needs no secret


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prompts": ["p"] * 3, "completions": ["a"] * 3}, 422, "at most 2 completions"),
        ({"prompts": ["p"], "completions": ["x" * 11]}, 422, "11 characters; at most 10"),
        ({"prompts": ["p"], "completions": ["x" * 9]}, 200, None),
        ({"prompts": ["p" * 10] * 2, "completions": ["x" * 10] * 2}, 413, "at most 60 bytes"),
    ],
)
def test_requests_are_bounded(body, status, message):
    limits = ServeLimits(max_body_bytes=60, max_texts=2, max_text_chars=10)
    response = TestClient(build_app(length, limits)).post("/score", json=body)
    assert response.status_code == status
    if message:
        assert message in response.json()["detail"]


def test_a_port_that_cannot_be_bound_is_a_one_line_error(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = build_parser().parse_args(
            ["serve-reward", "--predictor", "length", "--port", str(port)]
        )
        assert run(args) == 2
    err = capsys.readouterr().err
    assert "error" in err and "serving" not in err  # nothing claims to serve before binding
    args = build_parser().parse_args(["serve-reward", "--port", "99999"])
    assert run(args) == 2


def test_the_listening_socket_lets_asyncio_disable_nagle():
    """asyncio turns TCP_NODELAY on for accepted connections only when the listening socket's
    protocol is IPPROTO_TCP; without it every answer waited ~40 ms for a delayed ACK."""
    from rlhf_gym.commands.serve_reward import bind_tcp

    with bind_tcp("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
