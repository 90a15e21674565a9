"""Rebuild the byte-level BPE tokenizer that the tiny presets ship with.

Run from the repository root: ``python scripts/build_tiny_tokenizer.py``. Training is
deterministic, so the shipped files only change when the corpus or the settings below do.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1] / "rlhf_gym"
CORPORA = [ROOT / "models/data/tiny_corpus.txt", ROOT / "tasks/data/sentiment_prompts.txt"]
TARGET = ROOT / "models/tiny_tokenizer"
VOCAB_SIZE = 1024
EOS, PAD = "<|endoftext|>", "<|pad|>"


def main() -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(path) for path in CORPORA], trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD)
    wrapped.save_pretrained(TARGET)
    print(f"saved {len(wrapped)} tokens to {TARGET}")


if __name__ == "__main__":
    main()
