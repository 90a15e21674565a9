"""Data-parallel reductions over a real two-process gloo group."""

from __future__ import annotations

import json

import pytest
import torch

from rlhf_gym.distributed import DataParallel


def _reductions(out):
    dp = DataParallel()
    rank = dp.rank
    local = torch.tensor([rank + 1.0, 10.0 * (rank + 1)])  # (2,)
    result = {
        "world": dp.world_size,
        "shard": list(dp.shard(list(range(6)))),
        "local": dp.local_size(6, "batch_size"),
        "sum": dp.sum(local).tolist(),
        "gather": dp.gather(local[None]).tolist(),
        "objects": dp.gather_objects({"rank": rank}),
        "metrics": dp.reduce_metrics(
            {"mean": rank, "total": rank + 1, "low": rank, "high": rank},
            {"total": "sum", "low": "min", "high": "max"},
        ),
        "wrapped": type(dp.prepare(torch.nn.Linear(2, 1))).__name__,
    }
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        dp.local_size(3, "batch_size")
    (out / f"rank{rank}.json").write_text(json.dumps(result))


def test_reductions_cover_the_global_batch_in_two_processes(tmp_path, launch_data_parallel):
    launch_data_parallel(_reductions, tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["shard"] for r in ranks] == [[0, 1, 2], [3, 4, 5]]
    for result in ranks:
        assert result["world"] == 2 and result["local"] == 3
        assert result["sum"] == [3.0, 30.0]
        assert result["gather"] == [[1.0, 10.0], [2.0, 20.0]]
        assert result["objects"] == [{"rank": 0}, {"rank": 1}]
        assert result["metrics"] == {"mean": 0.5, "total": 3.0, "low": 0.0, "high": 1.0}
        assert result["wrapped"] == "DistributedDataParallel"


def test_one_process_reductions_are_the_identity():
    dp = DataParallel()
    local = torch.tensor([1.0, 2.0])
    assert dp.world_size == 1 and dp.is_main_process
    assert dp.sum(local) is local and dp.gather(local) is local
    assert dp.reduce_metrics({"a": 1.5}) == {"a": 1.5}
    module = torch.nn.Linear(2, 1)
    assert dp.prepare(module) is module


def test_an_unknown_mixed_precision_is_refused():
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        DataParallel("fp8")
