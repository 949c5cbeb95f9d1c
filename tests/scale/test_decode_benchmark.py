"""benchmarks/decode_speed.py's pieces: the real-size architectures, the bandwidth bound (by hand on a tiny model),
and a CPU run of the script end to end (its JSON and markdown)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks.archs import ARCHS, get_arch
from benchmarks.bandwidth import bound_tokens_per_second, kv_bytes_per_token, weight_bytes_per_step
from softthink.errors import SoftthinkInputError
from softthink.testbed.tiny import build_tiny_model
from tests.conftest import REPO

# parameter counts of the published checkpoints (their model cards / safetensors headers)
PUBLISHED_PARAMETERS = {
    "smollm2-135m": 134_515_008,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512,
    "llama3-8b": 8_030_261_248,
}


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMETERS))
def test_arch_has_the_published_parameter_count(name):
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):  # shapes only, no memory
        model = AutoModelForCausalLM.from_config(get_arch(name).config())
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS[name]


def test_unknown_arch_names_the_known_ones():
    with pytest.raises(SoftthinkInputError, match="qwen2.5-1.5b"):
        get_arch("qwen9")
    assert "llama3-8b" in ARCHS


def test_bandwidth_bound_by_hand():
    model = build_tiny_model("llama")  # float32, hidden 64, 2 layers, 4 heads of 16, 2 KV heads, vocab 100, untied
    # per layer: q 64x64, k 32x64, v 32x64, o 64x64, gate/up 128x64, down 64x128, two norms of 64
    layer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64 + 2 * 64
    head_and_norm = 100 * 64 + 64  # the untied input embedding (100 x 64) is not read whole
    assert weight_bytes_per_step(model) == 4 * (2 * layer + head_and_norm)
    assert kv_bytes_per_token(model.config, 4) == 2 * 2 * 2 * 16 * 4  # K and V, 2 layers, 2 KV heads of 16
    # batch 2, prompts of 10 and 20 tokens, 5 new tokens: mean context of the steps = 30 + 2 * 2
    step_bytes = 4 * (2 * layer + head_and_norm) + 34 * 512
    assert bound_tokens_per_second(model, 1e9, [10, 20], 5, 4) == pytest.approx(2 * 1e9 / step_bytes)


@pytest.mark.slow
def test_decode_speed_script_on_cpu(tmp_path):
    out = tmp_path / "tiny-llama.x"  # a dot in the name, as in qwen2.5-1.5b
    command = [sys.executable, str(REPO / "benchmarks" / "decode_speed.py"), "--device", "cpu", "--arch", "tiny-llama"]
    command += ["--batch-sizes", "1", "2", "--max-new-tokens", "4", "--repeats", "1", "--threads", "1"]
    command += ["--methods", "model.generate", "discrete", "soft", "--compile", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "tiny-llama.x.json").read_text())
    timed = {(r["batch"], r["method"]): r for r in result["rows"] if "skipped" not in r}
    methods = ["model.generate", "discrete", "soft", "model.generate+static_cache", "discrete+compile", "soft+compile"]
    assert set(timed) == {(b, m) for b in (1, 2) for m in methods}
    for row in timed.values():
        assert row["tokens_per_s"] > 0 and 0 < row["bound_share"] == row["tokens_per_s"] / row["bound_tokens_per_s"]
    skipped = {r["method"]: r["skipped"] for r in result["rows"] if "skipped" in r}
    assert "--device cuda" in skipped["vllm"] and set(skipped) == {"vllm"}  # softthink has its compile option
    assert result["meta"]["device"] == "cpu" and result["meta"]["bandwidth_gb_s"] > 0
    assert result["meta"]["fixed_length"] is True
    table = (tmp_path / "tiny-llama.x.md").read_text()
    assert table.count("| tiny-llama |") == len(timed)
