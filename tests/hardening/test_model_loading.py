"""`softthink.load_model` rejects unusable paths, files, checkpoints, dtypes and devices with a
`SoftthinkInputError` that says what to do, before any weights load (issue 13). Before: a missing directory gave
the Hub's repo-id message, a non-model folder a sentencepiece message, a truncated .gguf a struct or reshape
error, an encoder-decoder folder transformers' list of 200 config classes, ``dtype="float33"`` an AttributeError
and ``device="cuda"`` on a CPU-only torch an AssertionError."""

from __future__ import annotations

import struct

import pytest
import torch

import softthink
from softthink.errors import SoftthinkInputError
from softthink.models import load_tokenizer


def _save_tokenizer(folder):
    from softthink.testbed.tiny import build_tiny_tokenizer

    build_tiny_tokenizer().save_pretrained(folder)


def test_a_directory_that_does_not_exist(tmp_path, monkeypatch):
    with pytest.raises(SoftthinkInputError, match=r"model path .*missing does not exist\. Pass a local model"):
        softthink.load_model(str(tmp_path / "missing"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SoftthinkInputError, match=r"model path \./nope does not exist"):  # was: "Repo id must use"
        softthink.load_model("./nope")
    with pytest.raises(SoftthinkInputError, match=r"model path ~/no/such/model does not exist"):
        softthink.load_model("~/no/such/model")


def test_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SoftthinkInputError, match=r"notes\.txt is a file, not a model folder or a \.gguf file"):
        softthink.load_model(str(tmp_path / "notes.txt"))


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SoftthinkInputError, match=r"is not a model folder: it has no config\.json \(it is empty\)"):
        softthink.load_model(str(tmp_path / "empty"))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("hi")
    with pytest.raises(SoftthinkInputError, match=r"no config\.json \(readme\.txt\)"):  # was: "sentencepiece"
        softthink.load_model(str(junk))


def test_a_model_folder_without_a_tokenizer(tmp_path):
    from softthink.testbed.tiny import build_tiny_model

    build_tiny_model("llama").save_pretrained(tmp_path / "m")
    with pytest.raises(SoftthinkInputError, match=r"has no tokenizer files .*tokenizer\.save_pretrained"):
        softthink.load_model(str(tmp_path / "m"))
    with pytest.raises(SoftthinkInputError, match=r"has no tokenizer files"):
        load_tokenizer(str(tmp_path / "m"))  # `softthink analyze --tokenizer` goes through it


def test_an_encoder_decoder_checkpoint_folder(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, d_ff=16, num_layers=1, num_heads=1, d_kv=8, vocab_size=64).save_pretrained(tmp_path / "t5")
    _save_tokenizer(tmp_path / "t5")
    with pytest.raises(SoftthinkInputError, match=r"encoder-decoder checkpoint \(model_type 't5'\)") as info:
        softthink.load_model(str(tmp_path / "t5"))
    assert "GPT2Config" not in str(info.value)  # not transformers' list of every causal-LM config class


def test_a_checkpoint_that_is_not_a_causal_lm(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path / "vit")
    with pytest.raises(SoftthinkInputError, match=r"model_type 'vit'\) is not a causal language model"):
        softthink.load_model(str(tmp_path / "vit"))


def test_a_truncated_or_tiny_gguf(tmp_path):
    pytest.importorskip("gguf")
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"x\n")
    with pytest.raises(SoftthinkInputError, match=r"tiny\.gguf is not a GGUF file .*2 bytes"):
        softthink.load_model(str(tiny))
    # A GGUF v3 header that promises 1 tensor and 1 metadata entry, cut after the counts: was a struct.error
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + b"\x05\x00")
    with pytest.raises(SoftthinkInputError, match=r"cut\.gguf \(26 bytes\) is truncated or damaged.*Download it again"):
        softthink.load_model(str(cut))


def test_a_truncated_real_gguf(tmp_path):
    """The SmolLM2 GGUF cut to 5 MB (was: 'cannot reshape array of size ... into shape (49152,612)')."""
    pytest.importorskip("gguf")
    from pathlib import Path

    source = Path.home() / ".cache" / "softthink-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not source.is_file():
        pytest.skip(f"{source} not available")
    cut = tmp_path / "smol.gguf"
    with source.open("rb") as handle:
        cut.write_bytes(handle.read(5_000_000))
    with pytest.raises(SoftthinkInputError, match=r"smol\.gguf \(5000000 bytes\) is truncated or damaged"):
        softthink.load_model(str(cut))


@pytest.mark.parametrize("dtype", ["float33", "int8", 5])
def test_an_unknown_dtype(dtype):
    with pytest.raises(SoftthinkInputError, match=r"unknown dtype .*Use one of float32, float16, bfloat16"):
        softthink.load_model("testbed", dtype=dtype)


def test_dtype_names_still_load():
    model, _ = softthink.load_model("testbed", dtype="torch.float64", device="cpu")
    assert model.dtype == torch.float64


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_cuda_without_a_gpu():
    with pytest.raises(SoftthinkInputError, match=r"device='cuda' but no CUDA GPU is available.*device='cpu'"):
        softthink.load_model("testbed", device="cuda")


def test_an_unknown_device():
    with pytest.raises(SoftthinkInputError, match=r"unknown device 'tpu'.*Use 'cpu', 'cuda'"):
        softthink.load_model("testbed", device="tpu")


def test_a_hub_id_that_is_not_local_says_so(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network retries
    with pytest.raises(SoftthinkInputError, match=r"there is no local folder no-org/no-model; as a Hub id"):
        softthink.load_model("no-org/no-model")
