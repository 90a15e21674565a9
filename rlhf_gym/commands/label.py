"""``rlhf-gym label``: a person labels comparisons at the terminal.

It shows a prompt and responses A and B and reads ``a`` / ``b`` / ``s`` (skip) / ``q`` (quit).
Labels go to a :class:`~rlhf_gym.preferences.PreferenceStore`, so a later session resumes at
the first unlabeled comparison and a web page can share the same store.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from rlhf_gym.preferences import PreferenceStore

KEYS = {"a": "a", "b": "b", "s": "skip"}


def label_loop(
    store: PreferenceStore,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    labeler: str = "human",
) -> int:
    """Ask about each pending comparison until done, ``q`` or end of input; return labels made.

    ``stdin`` / ``stdout`` default to the process's streams (tests pass their own).
    """
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    pending = store.pending()
    total = len(store.comparisons())
    made = 0
    for position, (cid, comparison) in enumerate(pending, start=total - len(pending) + 1):
        stdout.write(
            f"\n[{position}/{total}] prompt: {comparison.prompt}\n"
            f"  A: {comparison.a}\n  B: {comparison.b}\n"
        )
        key = _ask(stdin, stdout)
        if key is None:
            break
        store.record(cid, KEYS[key], labeler)
        made += 1
    stdout.write(f"{made} labels recorded; {len(store.pending())} comparisons left\n")
    return made


def _ask(stdin: TextIO, stdout: TextIO) -> str | None:
    """The next valid key, or None on ``q`` or end of input."""
    while True:
        stdout.write("better response? [a/b/s=skip/q=quit] ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return None
        key = line.strip().lower()
        if key == "q":
            return None
        if key in KEYS:
            return key
        stdout.write(f"unknown answer {key!r}: type a, b, s or q\n")


def collect(store: PreferenceStore, args: argparse.Namespace) -> int:
    """Queue comparisons of ``args.k`` policy samples for ``args.collect`` task prompts."""
    from rlhf_gym.models import load_model_and_tokenizer
    from rlhf_gym.preferences import pair_up, sample_completions
    from rlhf_gym.tasks import get_task

    task = get_task(args.task)
    prompts = task.prompts("train")[: args.collect]
    model, tokenizer = load_model_and_tokenizer(args.model)
    completions = sample_completions(
        model, tokenizer, prompts, args.k, max_new_tokens=task.max_new_tokens, seed=args.seed
    )
    return store.add(pair_up(prompts, completions, seed=args.seed))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("label", help="label pairs of responses at the terminal")
    parser.add_argument("--store", default="preferences", help="preference store directory")
    parser.add_argument("--labeler", default="human", help="name recorded with each label")
    parser.add_argument(
        "--collect",
        type=int,
        default=0,
        metavar="N",
        help="first queue comparisons of policy samples for N task prompts",
    )
    parser.add_argument("--task", default="sentiment", help="task whose prompts --collect uses")
    parser.add_argument("--model", default="smollm2-135m", help="policy that --collect samples")
    parser.add_argument("--k", type=int, default=2, help="samples per prompt for --collect")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed for --collect")
    parser.add_argument("--export", metavar="PATH", help="write labeled pairs as JSONL and exit")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, OSError) as err:  # bad paths, an unknown model or task: one line
        print(f"rlhf-gym label: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if Path(args.store).exists() and not Path(args.store).is_dir():
        raise ValueError(f"--store {args.store} is a file; a store is a directory")
    if args.export and Path(args.export).is_dir():
        raise ValueError(f"--export {args.export} is a directory; give the path of a file")
    store = PreferenceStore(args.store)
    if args.export:
        print(f"wrote {store.export_jsonl(args.export)} pairs to {args.export}")
        return 0
    if args.collect:
        print(f"queued {collect(store, args)} new comparisons in {store.directory}")
    if not store.pending():
        print(f"nothing to label in {store.directory}; queue comparisons with --collect N")
        return 0
    label_loop(store, labeler=args.labeler)
    return 0
