"""Property tests (hypothesis) of the step numerics: entropy, filtering and mixture weights on hostile logits.

Logits come with -inf entries (at least one finite per row), huge magnitudes, many ties, fp16 / bf16 / fp32 /
fp64 dtypes and one-token vocabularies. The step distribution is built as the decode loop builds it. Invariants:
nothing is NaN, entropies lie in [0, log V], mixture weights are >= 0 and sum to 1, dropped tokens weigh 0, and the
most likely token is always kept.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softthink
from softthink.analysis.entropy import entropy_from_logits, log_probs_at_temperature, probs_and_entropy
from softthink.decoding.processors import dirichlet_weights, gumbel_softmax_weights, truncate_sorted
from softthink.decoding.randomness import PerRowRandomness
from softthink.decoding.rules import rule_class
from softthink.decoding.rules.base import StepInput
from softthink.decoding.rules.mixture_of_inputs import moi_weights

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
ATOL = 1e-5


@st.composite
def logits_batches(draw) -> torch.Tensor:
    """``[batch, vocab]`` logits in a random dtype: ties, -inf, huge values; every row has a finite entry."""
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.integers(1, 3))
    vocab = draw(st.sampled_from([1, 2, 3, 5, 17, 40]))
    big = torch.finfo(dtype).max
    pool = [0.0, 1.0, -1.0, 2.5, 30.0, -30.0, 1e4, -1e4, big, -big, big / 2, float("-inf")]
    value = st.one_of(st.sampled_from(pool), st.floats(-50, 50, allow_nan=False, width=16))
    rows = draw(st.lists(st.lists(value, min_size=vocab, max_size=vocab), min_size=batch, max_size=batch))
    logits = torch.tensor(rows, dtype=torch.float64)
    for row in logits:
        if not torch.isfinite(row).any():
            row[draw(st.integers(0, vocab - 1))] = draw(st.sampled_from([0.0, big]))
    return logits.clamp(min=-big, max=big).to(dtype) if dtype != torch.float64 else logits


temperatures = st.sampled_from([0.05, 0.3, 0.7, 1.0, 1.5, 4.0])


def step_distribution(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, entropy)`` as the decode loop builds them for a step."""
    return probs_and_entropy(log_probs_at_temperature(logits, temperature))


def assert_distribution(probs: torch.Tensor, entropy: torch.Tensor, logits: torch.Tensor) -> None:
    assert probs.dtype in (torch.float32, torch.float64) and not probs.isnan().any()
    torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs[:, 0]), atol=ATOL, rtol=0)
    assert torch.isfinite(entropy).all()
    n_finite = torch.isfinite(logits).sum(-1).double()
    assert (entropy >= -ATOL).all() and (entropy.double() <= n_finite.log() + ATOL).all()
    assert (probs[~torch.isfinite(logits)] == 0).all()  # -inf logits have probability 0


def assert_kept(probs: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> None:
    """Weights >= 0, rows summing to 1, the top-1 token kept first, only tokens of positive probability kept."""
    assert not weights.isnan().any() and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[:, 0]), atol=ATOL, rtol=0)
    top = probs.max(-1).values
    assert (probs.gather(1, ids[:, :1]).squeeze(1) == top).all() and (weights[:, 0] > 0).all()
    assert (probs.gather(1, ids)[weights > 0] > 0).all()
    for row in ids.tolist():
        assert len(set(row)) == len(row)


@SETTINGS
@given(logits=logits_batches(), temperature=temperatures)
def test_entropy_is_finite_and_bounded(logits, temperature):
    probs, entropy = step_distribution(logits, temperature)
    assert_distribution(probs, entropy, logits)
    torch.testing.assert_close(entropy_from_logits(logits, temperature), entropy)


@SETTINGS
@given(
    logits=logits_batches(),
    temperature=temperatures,
    top_k=st.integers(0, 70),
    top_p=st.sampled_from([1e-6, 0.1, 0.5, 0.9, 0.999, 1.0]),
    min_p=st.sampled_from([0.0, 0.01, 0.5, 1.0]),
    max_keep=st.sampled_from([None, 1, 2, 15]),
)
def test_filters_keep_the_top_token_and_renormalise(logits, temperature, top_k, top_p, min_p, max_keep):
    probs, _ = step_distribution(logits, temperature)
    ids, weights = truncate_sorted(probs, top_k=top_k, top_p=top_p, min_p=min_p, max_keep=max_keep)
    assert_kept(probs, ids, weights)
    if max_keep is not None:
        assert ids.shape[1] <= max_keep


@SETTINGS
@given(
    logits=logits_batches(),
    tau=st.sampled_from([1e-3, 0.1, 1.0, 10.0]),
    alpha=st.sampled_from([1e-3, 0.1, 1.0, 100.0]),
    beta=st.sampled_from([1e-3, 1.0, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_mixture_weights_sum_to_one_and_respect_dropped_tokens(logits, tau, alpha, beta, seed):
    probs, _ = step_distribution(logits, 1.0)
    _, kept = truncate_sorted(probs, top_p=0.9, max_keep=15)
    random = PerRowRandomness([torch.Generator().manual_seed(seed + row) for row in range(kept.shape[0])])
    sampled = random.multinomial(kept)
    for weights in (
        gumbel_softmax_weights(kept, tau, random),
        dirichlet_weights(kept, alpha, random),
        moi_weights(kept, sampled, beta),
    ):
        assert not weights.isnan().any() and (weights >= -ATOL).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[:, 0]), atol=ATOL, rtol=0)
        assert (weights[kept == 0] == 0).all()


MODES = {
    "discrete": {},
    "soft": {"max_topk": 5},
    "soft-gumbel": {"mode": "soft", "noise": "gumbel", "gumbel_tau": 0.5},
    "soft-dirichlet": {"mode": "soft", "noise": "dirichlet"},
    "gated": {"entropy_threshold": 0.5},
    "mixture_of_inputs": {"do_sample": True, "temperature": 0.8},
    "forking_temperature": {"fork_threshold": 0.5, "fork_temperature": 0.3, "do_sample": True},
    "swir": {},
}


@pytest.mark.parametrize("name", sorted(MODES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logits=logits_batches(), seed=st.integers(0, 2**16))
def test_every_rule_step_is_a_valid_mixture(name, logits, seed):
    options = dict(MODES[name])
    config = softthink.DecodeConfig(mode=options.pop("mode", name), **options)
    sampling = config.think_sampling()
    rule = rule_class(config.mode)(config, sampling)
    probs, entropy = step_distribution(logits, sampling.temperature)
    random = PerRowRandomness([torch.Generator().manual_seed(seed + row) for row in range(logits.shape[0])])
    state = rule.init_state(logits.shape[0], logits.device)
    step = rule.step(StepInput(logits, probs, entropy, state, random))
    assert not step.weights.isnan().any() and (step.weights >= -ATOL).all()
    torch.testing.assert_close(step.weights.sum(-1), torch.ones_like(step.weights[:, 0]), atol=ATOL, rtol=0)
    shown = probs.gather(1, step.token_ids[:, None]).squeeze(1)
    assert (shown > 0).all()  # never a token of probability 0 (a -inf logit)
    if not sampling.do_sample and config.noise == "none":
        assert (shown == probs.max(-1).values).all()  # greedy rules show the top-1


def test_one_token_vocabulary_is_certain():
    for dtype in DTYPES:
        logits = torch.tensor([[3.0], [-1e4]], dtype=dtype)
        probs, entropy = step_distribution(logits, 0.7)
        assert probs.tolist() == [[1.0], [1.0]] and entropy.tolist() == [0.0, 0.0]
        ids, weights = truncate_sorted(probs, top_k=5, top_p=0.5, min_p=0.9, max_keep=3)
        assert ids.tolist() == [[0], [0]] and weights.tolist() == [[1.0], [1.0]]


def test_huge_logits_at_a_low_temperature_stay_finite():
    """float32 logits near its maximum divided by a temperature < 1 overflow to inf unless shifted first."""
    big = torch.finfo(torch.float32).max
    logits = torch.tensor([[big, big / 2, 0.0, float("-inf")]])
    probs, entropy = step_distribution(logits, 0.5)
    assert probs.tolist() == [[1.0, 0.0, 0.0, 0.0]] and entropy.tolist() == [0.0]
    ties = torch.tensor([[big, big, -big]])
    probs, entropy = step_distribution(ties, 0.1)
    torch.testing.assert_close(probs, torch.tensor([[0.5, 0.5, 0.0]]))
    assert entropy.item() == pytest.approx(math.log(2))


def test_shifted_log_probs_equal_plain_log_softmax_on_ordinary_logits():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, float("-inf"), -0.5]])
    temperature = torch.tensor([[0.5], [2.0]])  # per-row, as the loop passes them
    torch.testing.assert_close(
        log_probs_at_temperature(logits, temperature), torch.log_softmax(logits / temperature, dim=-1)
    )
    # by hand: softmax([2, 4, 6]) = [e^-4, e^-2, 1] / (1 + e^-2 + e^-4)
    z = 1 + math.exp(-2) + math.exp(-4)
    torch.testing.assert_close(
        log_probs_at_temperature(logits[:1], 0.5).exp(), torch.tensor([[math.exp(-4) / z, math.exp(-2) / z, 1 / z]])
    )
