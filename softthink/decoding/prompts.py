"""Turning what the user passed as a prompt into left-padded token ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from softthink.errors import SoftthinkInputError
from softthink.unknown_tokens import warn_unknown_tokens

Messages = list[dict[str, Any]]
PromptLike = str | Messages


@dataclass
class EncodedBatch:
    """Left-padded prompts: ``input_ids``/``attention_mask`` are ``[batch, length]``."""

    texts: list[str]
    token_ids: list[list[int]]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


def split_batch(prompt: PromptLike | Sequence[PromptLike]) -> tuple[list[PromptLike], bool]:
    """Normalise a prompt argument to a list of prompts; the flag says whether the caller passed a batch."""
    if isinstance(prompt, str):
        return [prompt], False
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise SoftthinkInputError(
                "prompt is an empty list; pass a string, chat messages, or a non-empty list of them."
            )
        if all(isinstance(m, dict) for m in prompt):
            return [list(prompt)], False
        if all(isinstance(p, str) for p in prompt) or all(isinstance(p, (list, tuple)) for p in prompt):
            return [p if isinstance(p, str) else list(p) for p in prompt], True
    raise SoftthinkInputError(
        f"prompt must be a string, a list of chat messages ({{'role': ..., 'content': ...}}), or a list of either; "
        f"got {type(prompt).__name__}."
    )


def render_prompt(prompt: PromptLike, tokenizer, use_chat_template: bool) -> tuple[str, bool]:
    """The prompt text the model sees, and whether a chat template produced it."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if isinstance(prompt, str):
        if not prompt.strip():
            raise SoftthinkInputError("prompt is empty; give the model something to continue.")
        if not (use_chat_template and has_template):
            return prompt, False
        messages: Messages = [{"role": "user", "content": prompt}]
    else:
        messages = prompt
        if not messages or any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in messages):
            raise SoftthinkInputError("chat messages must be a non-empty list of {'role': ..., 'content': ...} dicts.")
        if not has_template:
            raise SoftthinkInputError(
                "chat messages were given but the tokenizer has no chat template; pass a plain "
                "string prompt, or set tokenizer.chat_template."
            )
        if not use_chat_template:
            raise SoftthinkInputError(
                "chat messages were given with chat_template=False; pass a string prompt instead."
            )
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), True


def encode_prompts(
    prompts: list[PromptLike], tokenizer, use_chat_template: bool, pad_token_id: int, device: torch.device
) -> EncodedBatch:
    """Render and tokenize prompts, then left-pad them into one batch. Text the tokenizer cannot represent (it
    becomes the unknown token) is a warning naming the prompt and the positions (`warn_unknown_tokens`)."""
    texts, token_ids = [], []
    for index, prompt in enumerate(prompts):
        text, templated = render_prompt(prompt, tokenizer, use_chat_template)
        # A chat template writes its own BOS; a raw string gets the tokenizer's usual special tokens.
        ids = tokenizer.encode(text, add_special_tokens=not templated)
        if not ids:
            raise SoftthinkInputError(f"prompt {text!r} encodes to no tokens.")
        warn_unknown_tokens(tokenizer, text, ids, f"prompt {index} ({text[:40]!r}{'...' if len(text) > 40 else ''})")
        texts.append(text)
        token_ids.append(ids)
    return left_pad(texts, token_ids, pad_token_id, device)


def left_pad(texts: list[str], token_ids: list[list[int]], pad_token_id: int, device: torch.device) -> EncodedBatch:
    """Left-pad already tokenized prompts (one non-empty id list each) into one batch."""
    width = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    return EncodedBatch(texts, token_ids, input_ids.to(device), attention_mask.to(device))
