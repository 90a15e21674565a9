"""``rlhf-gym run``: the whole RLHF loop (SFT, preferences, reward model, agent, evaluation)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import MISSING, fields

from rlhf_gym.distributed import launched_processes
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.stages import STAGES

_TYPES = {"int": int, "float": float, "str": str}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run", help="run the whole RLHF loop into an output directory, resumably"
    )
    parser.add_argument("--config", help="JSON file of settings; flags override it")
    parser.add_argument(
        "--force", action="append", default=[], metavar="STAGE",
        help=f"redo this stage and those that depend on it: one of {', '.join(STAGES)} "
        "(agent: every agent), or agent-NAME for one agent",
    )  # fmt: skip
    parser.add_argument(
        "--num-processes", type=int, default=1, metavar="N",
        help="data-parallel processes on this machine: the command starts itself again under "
        "torchrun with N processes (sft, reward and the native agents share each batch among "
        "them; the other stages run on rank 0). `accelerate launch -m rlhf_gym run ...` does "
        "the same with an accelerate config (GPUs, several nodes).",
    )  # fmt: skip
    for item in fields(RunConfig):
        flag = "--" + item.name.replace("_", "-")
        kind = str(item.type).split(" | ")[0]
        default_text = "" if item.default is MISSING else f" (default: {item.default})"
        help_text = item.metadata.get("help", "") + default_text
        if kind == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, type=_TYPES[kind], default=None, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    given = {
        f.name: getattr(args, f.name)
        for f in fields(RunConfig)
        if getattr(args, f.name) is not None
    }
    return RunConfig.from_file(args.config, **given) if args.config else RunConfig(**given)


def relaunch_command(argv: Sequence[str], num_processes: int) -> list[str]:
    """``rlhf-gym <argv>`` (without ``--num-processes``) under torchrun with ``num_processes``
    processes on this machine."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--num-processes":
            skip = True
        elif not arg.startswith("--num-processes="):
            rest.append(arg)
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={num_processes}", "-m", "rlhf_gym", *rest,
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.num_processes < 1:
        print("rlhf-gym run: error: --num-processes must be >= 1", file=sys.stderr)
        return 2
    if args.num_processes > 1 and launched_processes() == 1:
        return subprocess.run(relaunch_command(sys.argv[1:], args.num_processes)).returncode
    from transformers.utils import logging as transformers_logging

    from rlhf_gym.pipeline.run import Pipeline
    from rlhf_gym.pipeline.stages import StageError

    # Weight-loading bars and load reports (e.g. "score.weight newly initialized" for a new
    # reward head, which is intended) would drown the stages' own progress bars.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()

    try:
        config = config_from_args(args)
        pipeline = Pipeline(config)
        report = pipeline.run(tuple(args.force))
    except (StageError, ValueError, FileNotFoundError, OSError, ImportError) as err:
        print(f"rlhf-gym run: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nrlhf-gym run: interrupted; finished stages are kept in the output directory; "
            "the same command resumes with the stage that was running",
            file=sys.stderr,
        )
        return 130
    if pipeline.runner.is_main:  # one line, not one per data-parallel process
        print(f"report: {report}")
    return 0
