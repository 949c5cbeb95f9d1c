"""Token entropies of generations, read from the decoder's trace (no extra forward pass).

A ``softthink.Generation`` made with ``DecodeConfig(trace=True)`` carries ``g.trace.entropy`` (nats, the entropy
of the distribution each generated token was drawn from), ``g.trace.token_ids``, ``g.trace.soft`` and
``g.trace.thinking``. The dict form (``g.to_dict()``, e.g. read back from JSONL) works too.
To score a generation under a *different* model, use ``token_entropies(model, tok, [g.text], prompts=[g.prompt])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from softthink.analysis.records import TokenEntropies
from softthink.analysis.teacher_forced import token_strings
from softthink.errors import SoftthinkConfigError, SoftthinkInputError

PARTS = ("all", "thinking", "answer")


def from_generation(generation: Any, tokenizer=None, *, part: str = "all") -> TokenEntropies:
    """The generated tokens of one generation and their entropies, from its trace.

    Args:
        generation: a ``softthink.Generation`` (or its ``to_dict()``) made with tracing on.
        tokenizer: to show the tokens as strings; without it they are shown as ids.
        part: "all" tokens, only the "thinking" phase, or only the "answer" (the tokens after thinking).
    """
    if part not in PARTS:
        raise SoftthinkConfigError(f"part must be one of {PARTS}, got {part!r}.", param="part", value=part)
    trace = _get(generation, "trace")
    if trace is None:
        raise SoftthinkInputError(
            "this generation has no trace, so its token entropies were not recorded. "
            "Generate with DecodeConfig(trace=True)."
        )
    if _get(trace, "entropy") is None or _get(trace, "token_ids") is None:
        raise SoftthinkInputError(
            "this generation's trace has no entropy or token_ids; it was not made by "
            "softthink.generate with DecodeConfig(trace=True)."
        )
    entropy = [float(h) for h in _get(trace, "entropy")]
    token_ids = [int(t) for t in _get(trace, "token_ids")]
    soft = _optional_bools(_get(trace, "soft"))
    thinking = _optional_bools(_get(trace, "thinking"))
    if len(entropy) != len(token_ids):
        raise SoftthinkInputError(
            f"the trace holds {len(token_ids)} token ids but {len(entropy)} entropies; it is not from one decode."
        )
    keep = list(range(len(token_ids)))
    if part != "all":
        if thinking is None:
            raise SoftthinkInputError(f"part={part!r} needs trace.thinking, which this trace lacks. Use part='all'.")
        keep = [i for i in keep if thinking[i] == (part == "thinking")]
    ids = [token_ids[i] for i in keep]
    meta = {k: _get(generation, k) for k in ("stop_reason", "think_end_reason") if _get(generation, k) is not None}
    return TokenEntropies(
        token_ids=ids,
        tokens=token_strings(tokenizer, ids),
        entropies=[entropy[i] for i in keep],
        text=_get(generation, "text"),
        prompt=_get(generation, "prompt"),
        source="generation",
        soft=[soft[i] for i in keep] if soft is not None else None,
        thinking=[thinking[i] for i in keep] if thinking is not None else None,
        meta=meta,
    )


def from_generations(generations: Sequence[Any], tokenizer=None, *, part: str = "all") -> list[TokenEntropies]:
    """`from_generation` for each generation, in order."""
    return [from_generation(g, tokenizer, part=part) for g in generations]


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _optional_bools(values) -> list[bool] | None:
    return None if values is None else [bool(v) for v in values]
