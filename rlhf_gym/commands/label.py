"""``rlhf-gym label``: people label comparisons at the terminal or on a web page.

At the terminal it shows a prompt and responses A and B and reads ``a`` / ``b`` / ``t`` (tie) /
``s`` (skip) / ``q`` (quit). With ``--web`` it serves the labeling page
(:mod:`rlhf_gym.preferences.web`) for any number of people at once instead: on 127.0.0.1 unless
``--host`` says otherwise, and then only with an access token (``--token``, or one generated and
printed). Labels go to a :class:`~rlhf_gym.preferences.PreferenceStore`, so a later session resumes
where the last one stopped and the terminal and the page share one queue. Each comparison is leased
before it is shown, so people labeling one store at once never see the same one, and terminal text
is shown with control characters escaped, so a completion cannot move the cursor, clear the screen
or reorder what is displayed. ``--export`` writes the pairs for ``rlhf-gym run --human-labels`` and
prints how far the labelers agree (and, with ``--gold``, how far they agree with the gold).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from rlhf_gym.commands.serve_reward import LOOPBACK, bind_tcp
from rlhf_gym.preferences import PreferenceStore

KEYS = {"a": "a", "b": "b", "t": "tie", "s": "skip"}


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
    while (leased := store.lease(holder, lease_seconds, labeler=labeler)) is not None:
        cid, comparison = leased
        total = len(store.comparisons())
        position = total - len(store.pending(labeler)) + 1
        stdout.write(
            f"\n[{position}/{total}] prompt: {displayable(comparison.prompt)}\n"
            f"  A: {displayable(comparison.a)}\n  B: {displayable(comparison.b)}\n"
        )
        key = _ask(stdin, stdout)
        if key is None:
            store.release(cid, holder)
            break
        store.record(cid, KEYS[key], labeler, order="ab")  # A is always a, shown first
        store.release(cid, holder)  # free for a next labeler at once
        made += 1
    stdout.write(f"{made} labels recorded; {len(store.pending(labeler))} comparisons left\n")
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
        stdout.write("better response? [a/b/t=tie/s=skip/q=quit] ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return None
        key = line.strip().lower()
        if key == "q":
            return None
        if key in KEYS:
            return key
        stdout.write(f"unknown answer {key!r}: type a, b, t, s or q\n")


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
    parser = subparsers.add_parser(
        "label", help="label pairs of responses at the terminal or on a web page (--web)"
    )
    parser.add_argument("--store", default="preferences", help="preference store directory")
    parser.add_argument(
        "--labeler",
        default="human",
        help="name recorded with each label at the terminal (the page asks each person theirs)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="how long a shown comparison stays reserved for this session (others skip it)",
    )
    parser.add_argument(
        "--labels-per-comparison",
        type=int,
        default=1,
        metavar="N",
        help="labelers each comparison goes to; 2 or more give agreement statistics",
    )
    parser.add_argument(
        "--collect",
        type=int,
        default=0,
        metavar="N",
        help="first queue comparisons of policy samples for N task prompts",
    )
    parser.add_argument(
        "--task",
        default="sentiment",
        help="task whose prompts --collect uses and whose description is the page's guideline",
    )
    parser.add_argument("--model", default="smollm2-135m", help="policy that --collect samples")
    parser.add_argument("--k", type=int, default=2, help="samples per prompt for --collect")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed for --collect")
    _add_web_arguments(parser)
    _add_export_arguments(parser)
    return parser


def _add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web", action="store_true", help="serve the labeling page instead of asking here"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free one)")
    parser.add_argument(
        "--token",
        default=None,
        help="access token the page's address must carry; required beyond loopback (default "
        "there: one generated and printed)",
    )
    parser.add_argument(
        "--guideline", default=None, help="text shown above each comparison (default: the task's)"
    )


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--export",
        metavar="PATH",
        help="write labeled pairs as JSONL (TRL's prompt/chosen/rejected, for rlhf-gym run "
        "--human-labels), print the labelers' agreement and exit",
    )
    parser.add_argument(
        "--gold",
        default=None,
        help="with --export: also compare the labels with this gold score (e.g. vader) and the "
        "simulated labeler over it",
    )
    parser.add_argument(
        "--label-temperature",
        type=float,
        default=0.1,
        help="Bradley–Terry temperature of that simulated labeler",
    )


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
    store = PreferenceStore(args.store, labels_per_comparison=args.labels_per_comparison)
    if args.export:
        print(f"wrote {store.export_jsonl(args.export)} pairs to {args.export}")
        print("\n".join(agreement_lines(store, args.gold, args.label_temperature)))
        return 0
    if args.collect:
        print(f"queued {collect(store, args)} new comparisons in {store.directory}")
    if not store.pending():
        print(f"nothing to label in {store.directory}; queue comparisons with --collect N")
        return 0
    if args.web:
        return serve_web(store, args)
    label_loop(store, labeler=args.labeler, lease_seconds=args.lease_seconds)
    return 0


def agreement_lines(store: PreferenceStore, gold: str | None, temperature: float) -> list[str]:
    """The export's summary: labels by answer, the labelers' agreement on comparisons labeled
    more than once (overall and by pair of labelers) and, with a ``gold``, against the gold."""
    from rlhf_gym.preferences.agreement import agreement_by_labeler_pair, labeler_agreement

    labels = store.labels()
    answers = [choice for by_labeler in labels.values() for choice in by_labeler.values()]
    labelers = len({name for by_labeler in labels.values() for name in by_labeler})
    counts = ", ".join(f"{answers.count(c)} {c}" for c in ("a", "b", "tie", "skip"))
    lines = [
        f"{len(answers)} labels by {labelers} labeler(s): {counts} (ties and skips make no pair)"
    ]
    overall = labeler_agreement(labels)
    lines.append(
        f"labelers agree on {_share(overall.agreement)} of {overall.label_pairs} label "
        f"pairs over {overall.comparisons} comparisons labeled more than once "
        f"(kappa {_number(overall.kappa)})"
        if overall.label_pairs
        else "no comparison has two answers to measure agreement on (--labels-per-comparison)"
    )
    for (one, other), pair in agreement_by_labeler_pair(labels).items():
        lines.append(
            f"  {one} and {other}: {_share(pair.agreement)} of {pair.comparisons} "
            f"(Cohen's kappa {_number(pair.kappa)})"
        )
    if gold is not None:
        lines += _gold_lines(store, labels, gold, temperature)
    return lines


def _gold_lines(
    store: PreferenceStore, labels: dict[str, dict[str, str]], gold: str, temperature: float
) -> list[str]:
    from rlhf_gym.preferences import SimulatedLabeler
    from rlhf_gym.preferences.agreement import gold_agreement

    simulated = SimulatedLabeler(gold, temperature)
    lines = [f"against the gold {gold} (a/b answers where the gold scores differ):"]
    for name, g in gold_agreement(labels, store.comparisons(), simulated).items():
        lines.append(
            f"  {name}: {_share(g.human_gold)} of {g.labels} pick the higher gold; "
            f"the simulated labeler at T={temperature:g} would pick it "
            f"{_share(g.simulated_gold)} and agrees with them {_share(g.human_simulated)}"
        )
    return lines


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def serve_web(store: PreferenceStore, args: argparse.Namespace) -> int:
    """Serve the labeling page over ``store`` until interrupted."""
    import uvicorn

    from rlhf_gym.preferences.web import build_labeling_app
    from rlhf_gym.tasks import get_task

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    guideline = args.guideline if args.guideline is not None else get_task(args.task).description
    token = access_token(args.host, args.token)
    app = build_labeling_app(store, guideline, token, args.lease_seconds)
    sock = bind_tcp(args.host, args.port)  # bound before the address is printed
    address = page_address(args.host, sock.getsockname()[1], token)
    print(f"labeling page for {store.directory}: {address}", file=sys.stderr)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def access_token(host: str, token: str | None) -> str | None:
    """``token``; beyond loopback, a generated one when none is given (the page is then open to
    the network, and only people with its address may label)."""
    if token is None and host not in LOOPBACK:
        return secrets.token_urlsafe(24)
    return token


def page_address(host: str, port: int, token: str | None) -> str:
    """The address a labeler opens, with the access token in it when there is one."""
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
