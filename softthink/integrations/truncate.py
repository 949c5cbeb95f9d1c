"""Cutting a finished `Generation` short, for stopping criteria applied after decoding."""

from __future__ import annotations

import dataclasses

from softthink.decoding.output import Generation, StepTrace


def truncate_generation(generation: Generation, n_tokens: int, tokenizer) -> Generation:
    """The first ``n_tokens`` generated tokens of ``generation`` (0 < n < its length), with texts, counts and trace
    recomputed and ``stop_reason="stopping_criteria"``."""
    if not 0 < n_tokens < generation.num_tokens:
        raise ValueError(f"n_tokens must be in (0, {generation.num_tokens}), got {n_tokens}")
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False)
    ids = generation.token_ids[:n_tokens]
    trace = StepTrace(**{f.name: getattr(generation.trace, f.name)[:n_tokens] for f in dataclasses.fields(StepTrace)})
    think_tokens = sum(trace.thinking)
    cut_in_thinking = think_tokens < generation.think_tokens
    return dataclasses.replace(
        generation,
        text=decode(ids),
        token_ids=ids,
        trace=trace,
        think_tokens=think_tokens,
        answer_tokens=n_tokens - think_tokens,
        soft_steps=sum(trace.soft),
        stop_reason="stopping_criteria",
        thinking_text=decode(ids) if cut_in_thinking else generation.thinking_text,
        answer_text=decode(ids[think_tokens:]),
        think_end_reason=None if cut_in_thinking else generation.think_end_reason,
    )
