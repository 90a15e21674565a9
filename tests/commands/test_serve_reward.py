import numpy as np
import pytest
from fastapi.testclient import TestClient

from rlhf_gym.cli import build_parser
from rlhf_gym.commands.serve_reward import build_app, load_predictor
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
