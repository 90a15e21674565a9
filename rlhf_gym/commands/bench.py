"""``rlhf-gym bench``: tasks × agents × seeds, resumable, with rliable-style aggregates."""

from __future__ import annotations

import argparse
import json
import sys


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark agents on tasks over seeds (one resumable run per task and seed), "
        "with a leaderboard and confidence intervals",
    )
    parser.add_argument("--config", help="JSON file of bench settings; flags override it")
    parser.add_argument(
        "--tasks",
        type=_names,
        help="comma-separated (default: every task; tiny: length, sentiment)",
    )
    parser.add_argument(
        "--agents", type=_names, help="comma-separated (default: token-ppo,dpo,sb3-ppo)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="user seeds (default: 0 1 2)")
    parser.add_argument("--model", help="policy, as for rlhf-gym run (default: tiny)")
    parser.add_argument("--output-dir", help="where runs and the report go (default: bench/tiny)")
    parser.add_argument("--kl-budgets", type=float, nargs="+", help="nats (default: 1 3 10)")
    parser.add_argument(
        "--run-settings",
        type=json.loads,
        help="JSON object of rlhf-gym run settings for every run, e.g. '{\"iterations\": 40}'",
    )
    parser.add_argument("--bootstrap-reps", type=int, help="bootstrap resamples (default: 2000)")
    parser.add_argument(
        "--min-anchor-z",
        type=float,
        help="standard errors above 0 a task's anchor gain needs to be aggregated (default: 2)",
    )
    parser.add_argument(
        "--merge-from",
        nargs="+",
        metavar="DIR",
        help="output directories of shards of this bench (same settings, other tasks or seeds, "
        "run elsewhere): the cells they finished are taken from their results, not run again",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from transformers.utils import logging as transformers_logging

    from rlhf_gym.bench.config import BenchConfig
    from rlhf_gym.bench.runner import Bench
    from rlhf_gym.pipeline.stages import StageError

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    names = ("tasks", "agents", "seeds", "model", "output_dir", "kl_budgets", "run_settings",
             "bootstrap_reps", "min_anchor_z", "merge_from")  # fmt: skip
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        config = (
            BenchConfig.from_file(args.config, **given) if args.config else BenchConfig(**given)
        )
        report = Bench(config).run()
    except (StageError, ValueError, TypeError, FileNotFoundError, OSError, ImportError) as err:
        print(f"rlhf-gym bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nrlhf-gym bench: interrupted; finished stages are kept; the same command resumes",
            file=sys.stderr,
        )
        return 130
    print(f"report: {report}")
    return 0
