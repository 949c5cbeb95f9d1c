"""``compile=True`` (a static KV cache and a torch.compile'd one-token forward) decodes what the eager loop decodes:
every mode, greedy and sampled with per-prompt seeds, one batch (rows finish at different steps, so idle slots and
compaction happen) and continuous batching (slots refill; a small capacity forces the cache content to move).

Without per-prompt seeds the step's decision (distribution, entropy, the rule, draws from the global RNG) is
compiled as well (`softthink.decoding.decision`); with them it stays eager.

Two compilers. Dynamo with its ``eager`` backend captures the same graph as inductor but runs it with torch's own
kernels, so the static-cache machinery is checked to 1e-9 on float64 models. Inductor, the default on CPU, is
checked on a subset: identical tokens, entropies and weights to 1e-4 (its fused kernels compute the float32 rotary
embeddings with other rounding than torch's: about 5e-7 after a few layers, 2e-5 once soft steps feed it back).

One model serves every test, so each compiler compiles a few graphs once (about 20 s for inductor)."""

import numpy as np
import pytest
import torch

import softthink
from softthink.decoding import compiled, kv
from softthink.errors import SoftthinkInputError
from tests.conftest import tiny
from tests.equivalence.test_continuous_batching import GREEDY, GREEDY_MODES, PROMPTS, SEEDS
from tests.equivalence.test_prompt_seeds import COMMON, SAMPLED_MODES

TOLERANCE = {"eager": 1e-9, "inductor": 1e-4}


@pytest.fixture(scope="module")
def model():
    return tiny("llama", dtype=torch.float64)


@pytest.fixture(params=["eager"])
def backend(request, monkeypatch):
    """The dynamo backend of ``compile=True`` in this test; `inductor` tests parametrize it indirectly."""
    if request.param != "inductor":
        monkeypatch.setattr(compiled, "compile_options", lambda device: {"backend": request.param})
    return request.param


INDUCTOR = pytest.mark.parametrize("backend", ["inductor"], indirect=True)


def assert_same(ours, eager, atol=1e-9):
    for row, (a, b) in enumerate(zip(ours, eager)):
        assert a.token_ids == b.token_ids, f"row {row}"
        assert (a.stop_reason, a.think_end_reason) == (b.stop_reason, b.think_end_reason)
        assert a.think_tokens == b.think_tokens
        assert a.trace.soft == b.trace.soft
        np.testing.assert_allclose(a.trace.entropy, b.trace.entropy, atol=atol)
        for wa, wb in zip(a.trace.kept_weights, b.trace.kept_weights):
            np.testing.assert_allclose(wa, wb, atol=atol)


def record_calls(monkeypatch, method: str) -> list:
    """The argument of every call of `StaticKV.method` (which still runs), in order."""
    seen: list = []
    original = getattr(kv.StaticKV, method)

    def recording(self, value):
        seen.append(value)
        original(self, value)

    monkeypatch.setattr(kv.StaticKV, method, recording)
    return seen


def both(model, tokenizer, settings, prompts=PROMPTS, **kwargs):
    eager = softthink.generate(model, prompts, tokenizer=tokenizer, **settings, **kwargs)
    ours = softthink.generate(model, prompts, tokenizer=tokenizer, compile=True, **settings, **kwargs)
    lengths = [g.num_tokens for g in eager]
    assert max(lengths) >= 2 * min(lengths), lengths  # rows really finish at different steps
    return ours, eager


@pytest.mark.parametrize("name", list(GREEDY_MODES))
def test_greedy_compiled_equals_eager(name, model, tiny_tokenizer, backend):
    ours, eager = both(model, tiny_tokenizer, {**GREEDY, **GREEDY_MODES[name]})
    assert_same(ours, eager, TOLERANCE[backend])


@pytest.mark.parametrize("name", list(SAMPLED_MODES))
def test_seeded_compiled_equals_eager(name, model, tiny_tokenizer, backend):
    ours, eager = both(model, tiny_tokenizer, {**COMMON, **SAMPLED_MODES[name]}, seeds=SEEDS)
    assert_same(ours, eager, TOLERANCE[backend])


@pytest.mark.parametrize("name", list(SAMPLED_MODES))
def test_global_rng_compiled_equals_eager(name, model, tiny_tokenizer, backend):
    """Without per-prompt seeds the step's decision runs compiled too, draws included: a seeded (``seed=``) run
    draws from torch's global RNG exactly what the eager loop draws (rows in both phases: Cold Stop, stop string)."""
    ours, eager = both(model, tiny_tokenizer, {**COMMON, **SAMPLED_MODES[name], "seed": 3})
    assert_same(ours, eager, TOLERANCE[backend])


@pytest.mark.parametrize("seeds", [None, SEEDS], ids=["global_rng", "prompt_seeds"])
def test_the_decision_is_compiled_per_mode_and_phase(seeds, model, tiny_tokenizer, monkeypatch, backend):
    """Without per-prompt seeds every step's decision goes through a compiled function, one per mode, phase and
    setting; with per-prompt generators (which cannot enter a graph) it stays eager."""
    variants: list[str] = []
    calls = 0
    original = compiled.fused_decision

    def recording(function, device, variant):
        variants.append(variant)
        fused = original(function, device, variant)

        def counted(*args):
            nonlocal calls
            calls += 1
            return fused(*args)

        return counted

    monkeypatch.setattr(compiled, "fused_decision", recording)
    settings = {**COMMON, **SAMPLED_MODES["gated"], "trace": False}
    gens = softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, compile=True, seeds=seeds, **settings)
    if seeds is not None:
        assert variants == [] and calls == 0
        return
    longest = max(g.num_tokens for g in gens)
    assert calls == longest  # every decode step
    # Cold Stop mixes phases; each variant name ends with a digest of the decision's settings
    assert sorted(v.rsplit("_", 1)[0] for v in variants) == ["gated_answer", "gated_mixed", "gated_think"], variants
    assert len({v.rsplit("_", 1)[1] for v in variants}) == 1


def test_each_variant_compiles_its_own_code():
    """Dynamo keeps graphs (and counts recompiles) per code object: each mode and phase gets its own copy."""
    from softthink.decoding.decision import decide_tensors

    a = compiled._own_code(decide_tensors, "soft_think")
    b = compiled._own_code(decide_tensors, "soft_mixed")
    assert a.__code__ is not b.__code__ and a.__code__ is not decide_tensors.__code__
    assert a.__name__ == "decide_tensors__soft_think"
    assert a.__code__.co_code == decide_tensors.__code__.co_code


def test_each_setting_of_a_mode_has_its_own_variant():
    """What the compiled decision bakes in (sampling, the mode's fields) names its code copy; what it does not
    (the seed, the token budget) does not, so a grid's cells of one setting share one set of graphs."""
    from softthink.decoding.decision import StepDecider
    from softthink.decoding.rules import rule_class
    from softthink.decoding.rules.discrete import Discrete

    def digest(**settings):
        config = softthink.DecodeConfig(mode="soft", **settings)
        rule = rule_class("soft")(config, config.think_sampling())
        answer = Discrete(config, config.answer_sampling())
        return StepDecider(rule, answer, both=False, compile=True, device=torch.device("cpu"))._settings_digest()

    assert digest(max_topk=3) != digest(max_topk=5)
    assert digest(temperature=0.6) != digest(temperature=0.7)
    assert digest(answer_temperature=0.5) != digest()
    assert digest(seed=1, max_new_tokens=8) == digest(seed=2, max_new_tokens=64)


@INDUCTOR
@pytest.mark.parametrize("name", ["discrete", "soft_gumbel", "gated"])
def test_inductor_global_rng_equals_eager(name, model, tiny_tokenizer, backend):
    """Inductor's kernels with ``fallback_random``: the draws are torch's, so the samples are the eager ones."""
    test_global_rng_compiled_equals_eager(name, model, tiny_tokenizer, backend)


@INDUCTOR
@pytest.mark.parametrize("name", ["discrete", "soft", "gated"])
def test_inductor_greedy_equals_eager(name, model, tiny_tokenizer, backend):
    test_greedy_compiled_equals_eager(name, model, tiny_tokenizer, backend)


@INDUCTOR
@pytest.mark.parametrize("name", ["soft_gumbel", "multiplex"])
def test_inductor_seeded_continuous_batching_equals_eager(name, model, tiny_tokenizer, backend):
    settings = {**COMMON, **SAMPLED_MODES[name]}
    ours, eager = both(model, tiny_tokenizer, settings, seeds=SEEDS, max_batch_size=3)
    assert_same(ours, eager, TOLERANCE[backend])


@pytest.mark.parametrize("name", ["discrete", "soft_gumbel", "multiplex"])
def test_compiled_continuous_batching_equals_eager(name, model, tiny_tokenizer, monkeypatch, backend):
    """Slots refill from the queue; a capacity of just what one row needs makes the live columns
    move back to the start, and the longest prompt, queued behind short ones, makes them move right."""
    moves = record_calls(monkeypatch, "_move_content")
    monkeypatch.setattr(
        "softthink.decoding.loop.static_capacity", lambda longest, new_tokens, continuous: longest + new_tokens
    )
    settings = {**COMMON, **SAMPLED_MODES[name]}
    prompts, seeds = (PROMPTS[1:] + PROMPTS[:1]) * 2, (SEEDS[1:] + SEEDS[:1]) * 2
    ours, eager = both(model, tiny_tokenizer, settings, prompts, seeds=seeds, max_batch_size=3)
    assert_same(ours, eager)
    assert any(s < 0 for s in moves) and any(s > 0 for s in moves), moves


def test_idle_slots_compact_to_halves(model, tiny_tokenizer, monkeypatch, backend):
    sizes = record_calls(monkeypatch, "_compact")
    settings = {**GREEDY, **GREEDY_MODES["soft"]}
    ours, eager = both(model, tiny_tokenizer, settings)
    assert_same(ours, eager)
    assert sizes and sizes == sorted(sizes, reverse=True) and all(s & (s - 1) == 0 for s in sizes), sizes


def test_the_default_capacity_holds_a_long_continuous_run(model, tiny_tokenizer, backend):
    settings = {**COMMON, **SAMPLED_MODES["soft_gumbel"]}
    prompts = PROMPTS * 3
    eager = softthink.generate(model, prompts, tokenizer=tiny_tokenizer, seeds=SEEDS * 3, **settings)
    ours = softthink.generate(
        model, prompts, tokenizer=tiny_tokenizer, seeds=SEEDS * 3, max_batch_size=2, compile=True, **settings
    )
    assert_same(ours, eager)


@INDUCTOR
def test_a_second_call_reuses_the_graph_and_the_cache(model, tiny_tokenizer, backend):
    settings = {**GREEDY, **GREEDY_MODES["discrete"], "compile": True}
    softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, **settings)
    caches = dict(compiled._CACHES[model][1])
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    softthink.generate(model, PROMPTS, tokenizer=tiny_tokenizer, **settings)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    assert caches and compiled._CACHES[model][1] == caches  # the same cache objects, one per slot count


@pytest.mark.parametrize("arch", ["qwen2", "gpt2"])
def test_other_architectures(arch, tiny_tokenizer, backend):
    model = tiny(arch, dtype=torch.float64)
    settings = {**COMMON, **SAMPLED_MODES["soft_gumbel"]}
    ours, eager = both(model, tiny_tokenizer, settings, seeds=SEEDS, max_batch_size=3)
    assert_same(ours, eager)


def test_sliding_window_models_are_a_clear_error(tiny_tokenizer):
    with pytest.raises(SoftthinkInputError, match="compile=True needs a static KV cache of full-attention layers"):
        softthink.generate(tiny("gemma3"), "hi", tokenizer=tiny_tokenizer, compile=True, max_new_tokens=2)


def test_static_capacity():
    assert kv.static_capacity(10, 20, continuous=False) == 64
    assert kv.static_capacity(40, 30, continuous=False) == 128
    assert kv.static_capacity(40, 30, continuous=True) == 192  # 2 x 70 = 140, up to a multiple of 64
