"""Warn when a tokenizer turns part of a text into its unknown token (``<unk>``), naming where.

A word-level tokenizer (the testbed's, for one) maps every piece of text outside its vocabulary to ``<unk>``;
the model then sees ``<unk>`` there and the text it was given is silently not the text it reads. Byte-level
tokenizers (GPT-2, Llama 3, Qwen, SmolLM2) have no unknown token, so this never fires for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

SHOWN = 10
"""At most this many unknown pieces are listed in one warning."""


def unknown_spans(tokenizer, text: str, ids: Sequence[int]) -> list[tuple[int, str]]:
    """``[(character offset, piece of text)]`` of the tokens of ``text`` that became the unknown token.

    ``ids`` is the encoding already made (the check costs nothing when it holds no unknown token). A literal
    ``<unk>`` written in the text is not reported. Tokenizers without offset mappings (slow ones) report the
    token index instead of the character offset, with the piece ``"?"``.
    """
    unk_id = getattr(tokenizer, "unk_token_id", None)
    if unk_id is None or unk_id not in ids:
        return []
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):  # slow tokenizers have no offsets
        return [(index, "?") for index, token in enumerate(ids) if token == unk_id]
    spans = []
    for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        piece = text[start:end]
        if token == unk_id and piece != tokenizer.unk_token:
            spans.append((start, piece))
    return spans


def warn_unknown_tokens(tokenizer, text: str, ids: Sequence[int], what: str) -> list[tuple[int, str]]:
    """Warn (`UserWarning`) when ``ids``, the encoding of ``text``, holds the unknown token; ``what`` names the text
    ("prompt 2"). Returns the spans of `unknown_spans`."""
    spans = unknown_spans(tokenizer, text, ids)
    if spans:
        shown = ", ".join(f"{piece!r} at {offset}" for offset, piece in spans[:SHOWN])
        more = f" (and {len(spans) - SHOWN} more)" if len(spans) > SHOWN else ""
        warnings.warn(
            f"{what}: {len(spans)} piece(s) of text the tokenizer cannot represent became "
            f"{tokenizer.unk_token!r}: {shown}{more} (character offsets in the text the model reads). The model "
            "sees the unknown token there; rewrite them with characters the tokenizer knows, or use a tokenizer "
            "that covers them.",
            UserWarning,
            stacklevel=3,
        )
    return spans
