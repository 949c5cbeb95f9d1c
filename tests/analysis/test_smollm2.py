"""Real model: teacher-forced entropies of SmolLM2-135M-Instruct on a few sentences, and their statistics."""

from __future__ import annotations

import math

import pytest

from softthink.analysis import entropy_stats, token_entropies

SENTENCES = [
    "The capital of France is Paris.",
    "To solve 12 + 30, we first add the tens: 10 + 30 = 40, then the ones: 2, so the answer is 42.",
    "Wait, let me check that again. Suppose x = 3; then 2x + 1 = 7.",
    "Once upon a time, there was a little girl who lived in a village near the forest.",
]


@pytest.mark.slow
def test_smollm2_entropies_and_stats(smollm2):
    model, tok = smollm2
    records = token_entropies(model, tok, SENTENCES, batch_size=4, chunk_size=64, progress=False)
    vocab = model.config.vocab_size
    for text, rec in zip(SENTENCES, records):
        assert tok.decode(rec.token_ids) == text  # every token of the text is scored (BOS put before it)
        assert all(0.0 <= h <= math.log(vocab) + 1e-4 for h in rec.entropies)
    # the head path (chunked LM head on hidden states) agrees with the full model, chunk by chunk
    forward = token_entropies(model, tok, SENTENCES[1], method="forward", chunk_size=16, progress=False)[0]
    assert forward.entropies == pytest.approx(records[1].entropies, abs=2e-3)
    stats = entropy_stats(records)
    assert 0.0 <= stats.share_below_low <= 1.0
    assert stats.top_mass_share > 0.2  # entropy concentrates on a minority of tokens
    assert stats.n_tokens == sum(len(r) for r in records) and stats.n_forking == round(0.2 * stats.n_tokens)
    assert stats.percentiles[50] < stats.p80 < stats.percentiles[95]
