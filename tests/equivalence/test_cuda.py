"""On a CUDA device in bfloat16: softthink's discrete greedy decoding equals `model.generate` token for token, and
soft thinking with one kept token equals greedy decoding (the CPU float32 versions are in test_greedy_matches_hf),
the categorical draws equal torch.multinomial's,
and compile=True (CUDA graphs) equals the eager loop.
Skipped without CUDA; ``benchmarks/gpu_check.sh`` runs them (``pytest -m cuda``) on a GPU machine."""

from __future__ import annotations

import pytest
import torch

import softthink
from softthink.testbed.tiny import build_tiny_model, save_tiny
from tests.decoding.test_randomness import assert_draws_equal_multinomial
from tests.equivalence.test_greedy_matches_hf import PROMPTS, assert_same_prefix_until_stop, hf_greedy

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason=f"needs a CUDA device, and torch {torch.__version__} sees none (benchmarks/gpu_check.sh runs these)",
    ),
]
ARCHS = ["llama", "qwen2", "gemma3"]  # gemma3: sliding-window layers on the CUDA attention kernels
MAX_NEW = 32


def cuda_model(arch: str):
    return build_tiny_model(arch, dtype=torch.bfloat16).to("cuda")


@pytest.mark.parametrize("arch", ARCHS)
def test_discrete_greedy_equals_model_generate_on_cuda_bf16(arch, tiny_tokenizer):
    model = cuda_model(arch)
    ours = softthink.generate(
        model, PROMPTS, tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=MAX_NEW, think_end=None
    )
    with torch.device("cuda"):  # the reference's tokenized batch is made on the model's device
        ref = hf_greedy(model, tiny_tokenizer, ours, MAX_NEW)
    assert_same_prefix_until_stop(ours, ref, {tiny_tokenizer.eos_token_id})
    assert sum(g.num_tokens for g in ours) > len(PROMPTS)


@pytest.mark.parametrize("arch", ARCHS)
def test_soft_with_one_kept_token_equals_greedy_on_cuda_bf16(arch, tiny_tokenizer):
    model = cuda_model(arch)
    greedy = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, mode="discrete", max_new_tokens=MAX_NEW)
    soft = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, mode="soft", max_topk=1, max_new_tokens=MAX_NEW)
    for g, s in zip(greedy, soft):
        assert s.token_ids == g.token_ids
        assert s.trace.entropy == pytest.approx(g.trace.entropy, abs=1e-3)
        assert all(len(k) == 1 for k in s.trace.kept_ids)


def test_load_model_defaults_to_cuda_bf16(tmp_path, tiny_tokenizer):
    model, _ = softthink.load_model(save_tiny("llama", tmp_path / "tiny"))
    weight = model.get_input_embeddings().weight
    assert weight.device.type == "cuda" and weight.dtype == torch.bfloat16
    gen = softthink.generate(model, PROMPTS[0], tokenizer=tiny_tokenizer, mode="soft", max_new_tokens=8)
    assert gen.num_tokens > 0


@pytest.mark.parametrize("rng", ["prompt_seeds", "global"])
@pytest.mark.parametrize("settings", [dict(mode="discrete"), dict(mode="soft", max_topk=5, noise="gumbel")])
def test_compiled_cuda_graphs_equal_eager(settings, rng, tiny_tokenizer):
    """compile=True on CUDA (CUDA graphs) decodes what the eager loop decodes, one batch and continuous (float64,
    so the comparison tests the engine, not rounding; the CPU version is test_compiled.py). With the global RNG
    (``seed=``) the step's decision runs compiled too, its draws through torch's kernels."""
    model = build_tiny_model("llama", dtype=torch.float64).to("cuda")
    seeding = dict(seeds=list(range(len(PROMPTS)))) if rng == "prompt_seeds" else dict(seed=3, do_sample=True)
    common = dict(tokenizer=tiny_tokenizer, max_new_tokens=MAX_NEW, **seeding, **settings)
    for slots in (None, 2):
        # per-prompt seeds: any schedule decodes the same samples; the global RNG's draws depend on the schedule
        eager = softthink.generate(model, PROMPTS, max_batch_size=None if rng == "prompt_seeds" else slots, **common)
        ours = softthink.generate(model, PROMPTS, compile=True, max_batch_size=slots, **common)
        for a, b in zip(ours, eager):
            assert a.token_ids == b.token_ids
            # global RNG: inductor computes the rotary embeddings in float32 even in a float64 model, and soft steps
            # feed the difference back; this case on CPU (inductor) differs by up to 1.2e-3 nats, tokens identical
            tolerance = 1e-6 if rng == "prompt_seeds" else 5e-3
            assert a.trace.entropy == pytest.approx(b.trace.entropy, abs=tolerance)


def test_categorical_draws_equal_torch_multinomial_on_cuda():
    assert_draws_equal_multinomial("cuda")


@pytest.mark.parametrize("name", ["greedy_soft", "sampled_gated", "sampled_multiplex"])
@pytest.mark.parametrize("continuous", [False, True], ids=["one_batch", "continuous"])
def test_one_synchronisation_per_step_on_cuda(name, continuous, monkeypatch, tiny_tokenizer):
    """On CUDA, softthink's own code synchronises with the device once per decode step (the step's one read;
    the CPU version of this count, over every mode, is tests/decoding/test_host_syncs.py): torch's sync debug mode
    warns at every synchronising call, attributed to the Python line that made it."""
    import warnings

    import softthink.decoding.decision as decision
    from tests.decoding.test_host_syncs import CASES, PACKAGE
    from tests.equivalence.test_continuous_batching import PROMPTS as MIXED_PROMPTS
    from tests.equivalence.test_continuous_batching import SEEDS

    model = cuda_model("llama")
    steps = 0
    decide = decision.StepDecider.__call__

    def step(*args, **kwargs):
        nonlocal steps
        steps += 1
        return decide(*args, **kwargs)

    monkeypatch.setattr(decision.StepDecider, "__call__", step)
    settings = dict(CASES[name], seeds=SEEDS if name.startswith("sampled") else None, trace=False)
    settings.update(tokenizer=tiny_tokenizer, max_batch_size=3 if continuous else None)
    softthink.generate(model, MIXED_PROMPTS, **settings)
    steps = 0  # the first call warmed up the kernels and the pinned-memory pool
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            softthink.generate(model, MIXED_PROMPTS, **settings)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ours = [w for w in caught if "synchroniz" in str(w.message) and w.filename.startswith(PACKAGE)]
    assert steps > 20
    assert len(ours) == steps, sorted({f"{w.filename}:{w.lineno}" for w in ours})
