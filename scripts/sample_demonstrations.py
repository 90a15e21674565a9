"""Sample the demonstration set that SFT of the tiny presets uses, once, from SmolLM2.

Run from the repository root: ``python scripts/sample_demonstrations.py``. It writes
``rlhf_gym/tasks/data/sentiment_demonstrations.jsonl`` (one ``{"prompt", "completion"}`` per line)
from the sentiment task's train prompts; held-out prompts are never used.
"""

import json
from pathlib import Path

from rlhf_gym.models import load_model_and_tokenizer
from rlhf_gym.models.sampling import sample_completions
from rlhf_gym.tasks import get_task

TARGET = Path(__file__).resolve().parents[1] / "rlhf_gym/tasks/data/sentiment_demonstrations.jsonl"
PER_PROMPT = 3
MAX_NEW_TOKENS = 32
TEMPERATURE = 0.7
SEED = 0


def main() -> None:
    model, tokenizer = load_model_and_tokenizer("smollm2-135m")
    prompts = get_task("sentiment").prompts("train")
    groups = sample_completions(
        model,
        tokenizer,
        prompts,
        PER_PROMPT,
        max_new_tokens=MAX_NEW_TOKENS,
        temperature=TEMPERATURE,
        seed=SEED,
    )
    rows = [
        {"prompt": prompt, "completion": completion.strip()}
        for prompt, group in zip(prompts, groups, strict=True)
        for completion in dict.fromkeys(group)
        if completion.strip()
    ]
    TARGET.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {len(rows)} demonstrations to {TARGET}")


if __name__ == "__main__":
    main()
