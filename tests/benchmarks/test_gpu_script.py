"""benchmarks/gpu.sh and the pieces of the throughput scripts it relies on: the dry run end to
end (slow), and fast checks of the settings each side gets, the file names, the figures and the
summary's rows."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their siblings (machine, trainer_bench)

import gpu_summary  # noqa: E402
import grpo_throughput  # noqa: E402
import ppo_throughput  # noqa: E402
import trainer_bench  # noqa: E402

ENVIRONMENT_KEYS = {"device", "device_name", "mixed_precision", "torch", "transformers"}


# ---------------------------------------------------------------------- the dry run, end to end
@pytest.mark.slow
def test_the_dry_run_writes_every_comparison_with_its_environment_and_steps(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu.sh"), "--dry-run", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "ppo_throughput_tiny_b4_bf16.json", "grpo_throughput_tiny_bf16.json",
        "gpu_summary.json", "gpu.log",
    }  # fmt: skip
    summary = json.loads((tmp_path / "gpu_summary.json").read_text())
    rows = {(row["benchmark"], row["ours"]): row for row in summary["comparisons"]}
    assert set(rows) == {("ppo_throughput", "tokenppo"), ("grpo_throughput", "grpo")}
    trl_built = Path(trainer_bench.TRL_PYTHON).exists()
    for row in rows.values():
        assert row["ours_episodes_per_s"] > 0 and row["ours_error"] is None
        assert set(row["ours_environment"]) >= ENVIRONMENT_KEYS
        assert row["ours_environment"]["device"] == "cpu"
        assert row["settings"]["device"] == "cpu" and row["settings"]["mixed_precision"] == "bf16"
        assert len(row["ours_step_seconds"]) == 2 and min(row["ours_step_seconds"]) > 0
        if trl_built:
            assert row["peer_episodes_per_s"] > 0 and row["ratio"] > 0
            assert set(row["peer_environment"]) >= ENVIRONMENT_KEYS
        else:
            assert row["peer_error"].startswith("missing:") and row["ratio"] is None
    ppo = json.loads((tmp_path / "ppo_throughput_tiny_b4_bf16.json").read_text())
    steps = ppo["results"]["tokenppo"]["runs"][0]["steps"]
    assert [step["episodes"] for step in steps] == [4, 4]
    assert "gpu.sh finished" in (tmp_path / "gpu.log").read_text()


def test_gpu_sh_refuses_an_unknown_argument():
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu.sh"), "--dry-runn"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown argument --dry-runn" in done.stderr and "--output-dir" in done.stdout


# ---------------------------------------------------------------------- settings of each side
def test_gpu_settings_parse_for_both_scripts():
    gpu = ["--device", "cuda", "--mixed-precision", "bf16", "--presets", "smollm2-135m"]
    ppo = ppo_throughput.parse_args([*gpu, "--batch-sizes", "16", "64", "--warmup", "1"])
    assert (ppo.device, ppo.mixed_precision, ppo.batch_sizes) == ("cuda", "bf16", [16, 64])
    grpo = grpo_throughput.parse_args([*gpu, "--steps", "8"])
    assert (grpo.device, grpo.mixed_precision, grpo.steps_n) == ("cuda", "bf16", 8)
    with pytest.raises(SystemExit):
        ppo_throughput.parse_args(["--device", "tpu"])


class Recorded:
    """Stands in for a TRL config class: keeps the keyword arguments it was built with."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.mark.parametrize(
    ("device", "mixed", "use_cpu", "bf16"),
    [("cpu", "no", True, False), ("cuda", "bf16", False, True), ("cuda", "no", False, False)],
)
def test_trl_runs_where_and_how_ours_runs(device, mixed, use_cpu, bf16):
    ppo = ppo_throughput.trl_config(Recorded, "out", 64, 5, device, mixed).kwargs
    grpo = grpo_throughput.trl_config(Recorded, "out", 8, device, mixed).kwargs
    for kwargs in (ppo, grpo):
        assert (kwargs["use_cpu"], kwargs["bf16"], kwargs["fp16"]) == (use_cpu, bf16, False)
        assert kwargs["gradient_checkpointing"] is False  # ours has none
    assert ppo["per_device_train_batch_size"] == ppo["local_rollout_forward_batch_size"] == 64
    assert ppo["total_episodes"] == 64 * 5 and ppo["stop_token"] is None


def test_result_names_keep_the_cpu_names_and_mark_gpu_runs():
    name = trainer_bench.result_name
    assert name("ppo_throughput", "tiny", "cpu", "no", 16, 16) == "ppo_throughput_tiny.json"
    assert name("grpo_throughput", "small", "cpu", "no") == "grpo_throughput_small.json"
    assert (
        name("ppo_throughput", "smollm2-135m", "cuda", "bf16", 64, 16)
        == "ppo_throughput_smollm2-135m_b64_cuda_bf16.json"
    )
    assert trainer_bench.model_label("build/gpu-wheels/smollm2-135m-shape") == "smollm2-135m-shape"


# ---------------------------------------------------------------------- figures
def test_ppo_figures_leave_out_the_warmup_steps():
    raw = {
        "steps": [
            {"seconds": 9.0, "generating": 5.0, "episodes": 4, "tokens": 96},
            {"seconds": 1.0, "generating": 0.25, "episodes": 4, "tokens": 96},
            {"seconds": 3.0, "generating": 0.75, "episodes": 4, "tokens": 80},
        ],
        "environment": {},
    }
    whole = ppo_throughput.run_figures(raw, warmup=0)
    assert whole["episodes_per_s"] == pytest.approx(12 / 13)
    warm = ppo_throughput.run_figures(raw, warmup=1)
    assert warm["episodes_per_s"] == pytest.approx(8 / 4)
    assert warm["tokens_per_s"] == pytest.approx(176 / 4)
    assert warm["gen_share"] == pytest.approx(1.0 / 4)


def test_speedups_pair_ours_with_each_trl_that_ran():
    figures = {
        "tokenppo": {"episodes_per_s": 30.0},
        "tokenppo-separate-value": {"error": "failed: boom"},
        "trl": {"episodes_per_s": 6.0},
        "trl-nogc": {"episodes_per_s": 10.0},
    }
    assert ppo_throughput.speedups(figures) == {"tokenppo/trl": 5.0, "tokenppo/trl-nogc": 3.0}


def test_the_step_clock_stores_what_each_step_did():
    clock = trainer_bench.StepClock("cpu")
    clock.start()
    clock.tick(0.5, episodes=4, tokens=96)
    (step,) = clock.steps
    assert step["generating"] == 0.5 and step["episodes"] == 4 and step["seconds"] >= 0


# ---------------------------------------------------------------------- models
def shape_directory(path: Path, model, tokenizer, unk: str | None) -> str:
    """The tiny preset's config and a copy of its tokenizer padding with EOS (as SmolLM2's
    does), ``unk`` its unknown token."""
    model.config.save_pretrained(path)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    if unk is not None:
        tokenizer.unk_token = unk
    tokenizer.save_pretrained(path)
    return str(path)


def test_a_shape_directory_builds_the_same_seeded_model_with_a_pad_apart_from_eos(
    tmp_path, tiny_model, tiny_tokenizer
):
    directory = shape_directory(tmp_path, tiny_model, tiny_tokenizer, unk="<|pad|>")
    first, tokenizer = trainer_bench.load_policy(directory)
    second, _ = trainer_bench.load_policy(directory)
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert first.config.pad_token_id == tokenizer.pad_token_id
    assert first.config.num_hidden_layers == tiny_model.config.num_hidden_layers
    assert not first.training
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert a.equal(b)


def test_a_tokenizer_with_nothing_to_pad_with_but_eos_is_refused(
    tmp_path, tiny_model, tiny_tokenizer
):
    directory = shape_directory(tmp_path, tiny_model, tiny_tokenizer, unk=None)
    with pytest.raises(ValueError, match="no token to pad with"):
        trainer_bench.load_policy(directory)


# ---------------------------------------------------------------------- the summary
def write(directory: Path, name: str, record: dict) -> None:
    (directory / name).write_text(json.dumps(record))


def figures(rate: float) -> dict:
    steps = [{"seconds": 1.0}, {"seconds": 0.5}]
    return {"episodes_per_s": rate, "environment": {"device_name": "H"}, "runs": [{"steps": steps}]}


def test_the_summary_compares_each_file_against_its_target(tmp_path):
    settings = {"device": "cuda"}
    for batch, ours in ((64, 90.0), (16, 20.0)):
        record = {
            "benchmark": "ppo_throughput", "preset": "smollm2-135m", "batch": batch,
            "settings": settings, "results": {
                "tokenppo": figures(ours), "trl": figures(9.0), "trl-nogc": figures(10.0),
                "tokenppo-separate-value": {"error": "failed: out of memory"},
            },
        }  # fmt: skip
        suffix = "" if batch == 16 else f"_b{batch}"
        write(tmp_path, f"ppo_throughput_smollm2-135m{suffix}_cuda_bf16.json", record)
    grpo = {
        "benchmark": "grpo_throughput", "preset": "smollm2-135m",
        "settings": {"episodes_per_step": 32}, "results": {
            "grpo": figures(50.0), "trl": {"error": "missing: no TRL venv"},
        },
    }  # fmt: skip
    write(tmp_path, "grpo_throughput_smollm2-135m_cuda_bf16.json", grpo)
    rows = gpu_summary.summarise(tmp_path)
    keyed = {(r["benchmark"], r["batch"], r["ours"]): r for r in rows}
    assert list(keyed) == [
        ("ppo_throughput", 16, "tokenppo"), ("ppo_throughput", 16, "tokenppo-separate-value"),
        ("ppo_throughput", 64, "tokenppo"), ("ppo_throughput", 64, "tokenppo-separate-value"),
        ("grpo_throughput", 32, "grpo"),
    ]  # fmt: skip
    b64 = keyed["ppo_throughput", 64, "tokenppo"]
    assert (b64["peer"], b64["ratio"], b64["target"], b64["met"]) == ("trl-nogc", 9.0, 3.0, True)
    assert b64["ratio_vs_trl_as_shipped"] == 10.0 and b64["ours_step_seconds"] == [1.0, 0.5]
    b16 = keyed["ppo_throughput", 16, "tokenppo"]
    assert (b16["ratio"], b16["target"], b16["met"]) == (2.0, None, None)
    failed = keyed["ppo_throughput", 64, "tokenppo-separate-value"]
    assert failed["ratio"] is None and failed["ours_error"] == "failed: out of memory"
    no_trl = keyed["grpo_throughput", 32, "grpo"]
    assert no_trl["ratio"] is None and no_trl["met"] is None and no_trl["target"] == 3.0
    assert no_trl["peer_error"] == "missing: no TRL venv"
    assert "| 9.00x | >= 3.0x met |" in gpu_summary.table(rows)
