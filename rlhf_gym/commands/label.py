"""``rlhf-gym label``: a person labels comparisons at the terminal.

It shows a prompt and responses A and B and reads ``a`` / ``b`` / ``s`` (skip) / ``q`` (quit).
Labels go to a :class:`~rlhf_gym.preferences.PreferenceStore`, so a later session resumes at
the first unlabeled comparison and a web page can share the same store. Each comparison is
leased before it is shown, so people labeling one store at once never see the same one, and
text is shown with control characters escaped, so a completion cannot move the cursor, clear
the screen or reorder what is displayed.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import TextIO

from rlhf_gym.preferences import PreferenceStore

KEYS = {"a": "a", "b": "b", "s": "skip"}


def label_loop(
    store: PreferenceStore,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    labeler: str = "human",
    lease_seconds: float = 600.0,
) -> int:
    """Ask about each pending comparison until done, ``q`` or end of input; return labels made.

    ``stdin`` / ``stdout`` default to the process's streams (tests pass their own).
    """
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    holder = f"{labeler}:{uuid.uuid4().hex[:12]}"  # this session, among others of one labeler
    made = 0
    while (leased := store.lease(holder, lease_seconds)) is not None:
        cid, comparison = leased
        total = len(store.comparisons())
        position = total - len(store.pending()) + 1
        stdout.write(
            f"\n[{position}/{total}] prompt: {displayable(comparison.prompt)}\n"
            f"  A: {displayable(comparison.a)}\n  B: {displayable(comparison.b)}\n"
        )
        key = _ask(stdin, stdout)
        if key is None:
            store.release(cid, holder)
            break
        store.record(cid, KEYS[key], labeler)
        made += 1
    stdout.write(f"{made} labels recorded; {len(store.pending())} comparisons left\n")
    return made


def displayable(text: str) -> str:
    """``text`` with control and format characters (escape sequences, bidi overrides, line and
    paragraph separators) written as escapes; a newline stays, indented under its label."""
    return "".join(
        "\n     " if char == "\n" else _escaped(char) if _is_control(char) else char
        for char in text
    )


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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
        "--lease-seconds",
        type=float,
        default=600.0,
        help="how long a shown comparison stays reserved for this session (others skip it)",
    )
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
    label_loop(store, labeler=args.labeler, lease_seconds=args.lease_seconds)
    return 0
