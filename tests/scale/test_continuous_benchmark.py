"""benchmarks/continuous_batching.py's model-call counter, by hand on a tiny model."""

from __future__ import annotations

import softthink
from benchmarks.continuous_batching import ForwardCounter
from tests.conftest import tiny


def test_forward_counter_counts_prefills_and_decode_steps(tiny_tokenizer):
    """3 prompts x 5 tokens in one batch: one prefill forward (its logits give the first token), then one decode
    step of 3 rows for each of tokens 2 to 5 (the last token is never fed)."""
    model = tiny()
    with ForwardCounter(model) as counter:
        softthink.generate(
            model, ["hi", "a longer prompt", "x"], tokenizer=tiny_tokenizer, max_new_tokens=5, ignore_eos=True
        )
    assert (counter.prefills, counter.steps, counter.step_rows) == (1, 4, 12)
    softthink.generate(model, "hi", tokenizer=tiny_tokenizer, max_new_tokens=3)
    assert (counter.prefills, counter.steps) == (1, 4), "the hook is removed on exit"
