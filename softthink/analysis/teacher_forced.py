"""Teacher-forced token entropy of any texts under a causal LM, batched and memory-bounded.

The model's own forward returns logits ``[batch, length, vocab]`` — for a 150k vocabulary and 8 x 4096 tokens that
is 20 GB in float32. Here the model's base (``model.base_model``) runs once per batch to give hidden states, and
the LM head (plus the model's final logit scaling or soft-capping, when it has one) is applied ``chunk_size``
positions at a time, each chunk reduced to its entropies at once (``entropy.chunked_entropy``).

Because some models post-process logits in ways we cannot see from outside, the head path is checked once per
call against the model's own forward on a short prefix. If it disagrees, ``method="auto"`` warns and switches to
the ``"forward"`` path: the full model with ``logits_to_keep`` set to one chunk of positions at a time (correct
for any model, but the base model runs once per chunk).
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
from tqdm.auto import tqdm

from softthink.analysis.entropy import chunked_entropy, entropy_from_logits
from softthink.analysis.records import TokenEntropies
from softthink.errors import SoftthinkConfigError, SoftthinkInputError
from softthink.models import context_length
from softthink.unknown_tokens import warn_unknown_tokens

Method = Literal["auto", "head", "forward"]
METHODS = ("auto", "head", "forward")
_VERIFY_PREFIX = 32  # tokens of the first sequence used to check the head path against the full forward


# ----------------------------------------------------------------------------------------------------------- API


def token_entropies(
    model,
    tokenizer,
    texts: str | Sequence[str],
    *,
    prompts: Sequence[str] | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    chunk_size: int = 512,
    prepend_bos: bool = True,
    method: Method = "auto",
    progress: bool = True,
) -> list[TokenEntropies]:
    """Entropy (nats) of the model's next-token distribution at every position that predicts a token of each text.

    Args:
        model: a Hugging Face causal LM (``AutoModelForCausalLM``), on any device.
        tokenizer: its tokenizer.
        texts: the texts to score (a single string is one text).
        prompts: optional, one per text: context that is fed to the model but not scored, so only the text
            (the completion) is scored. Prompt and text are tokenised separately and concatenated.
        batch_size: texts per forward pass (texts are sorted by length so batches pad little).
        max_length: cut each prompt + text to this many tokens (a warning says how many were cut);
            None keeps everything. A sequence longer than the model's context is an error: pass
            ``max_length=<context>`` to cut it explicitly.
        chunk_size: positions whose logits exist at once (memory ~ ``chunk_size * vocab * 4`` bytes).
        prepend_bos: without a prompt, the first token of a text has no predicting position. When True and the
            tokenizer did not add one itself, its BOS token (else its EOS token) is put before the text as
            context so that the first token is scored too. When False, the first token is left out.
        method: "auto" (head path, checked against the model's forward; switches to "forward" with a warning
            if they disagree), "head" (head path, error if the check fails) or "forward" (full model, one
            ``logits_to_keep`` chunk at a time).
        progress: show a progress bar.

    Returns:
        One ``TokenEntropies`` per text, in input order, with ``text``/``prompt`` filled in.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if prompts is not None:
        prompts = list(prompts)
        if len(prompts) != len(texts):
            raise SoftthinkInputError(
                f"prompts must give one prompt per text: got {len(prompts)} prompts for "
                f"{len(texts)} texts. Pass prompts=None to score whole texts."
            )
    contexts, targets = _encode(tokenizer, texts, prompts, prepend_bos)
    records = token_entropies_from_ids(
        model,
        tokenizer,
        targets,
        context_ids=contexts,
        batch_size=batch_size,
        max_length=max_length,
        chunk_size=chunk_size,
        method=method,
        progress=progress,
    )
    for i, rec in enumerate(records):
        rec.text = texts[i]
        rec.prompt = prompts[i] if prompts is not None else None
    return records


def token_entropies_from_ids(
    model,
    tokenizer,
    token_ids: Sequence[Sequence[int]],
    *,
    context_ids: Sequence[Sequence[int]] | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    chunk_size: int = 512,
    method: Method = "auto",
    progress: bool = True,
) -> list[TokenEntropies]:
    """Like `token_entropies`, on token ids: score ``token_ids[i]`` given ``context_ids[i]`` (not scored).

    Without ``context_ids`` the first token of each sequence is context. ``tokenizer`` (may be None) only
    supplies the token strings; without it they are the ids as strings.
    """
    _check_args(batch_size, max_length, chunk_size, method)
    targets = [list(map(int, t)) for t in token_ids]
    if context_ids is None:
        contexts = [t[:1] for t in targets]
        targets = [t[1:] for t in targets]
    else:
        contexts = [list(map(int, c)) for c in context_ids]
        if len(contexts) != len(targets):
            raise SoftthinkInputError(
                f"context_ids must give one context per sequence: got {len(contexts)} for {len(targets)} sequences."
            )
    for i, ctx in enumerate(contexts):
        if not ctx and targets[i]:
            raise SoftthinkInputError(
                f"sequence {i} has no context token, so its first token has no "
                "predicting position. Give a prompt, or keep prepend_bos=True."
            )
    contexts, targets, truncated = _truncate(contexts, targets, max_length)
    _check_context(model, contexts, targets)
    entropies = _score(
        model,
        contexts,
        targets,
        batch_size=batch_size,
        chunk_size=chunk_size,
        method=method,
        pad_id=_pad_id(tokenizer),
        progress=progress,
    )
    return [
        TokenEntropies(
            token_ids=tgt, tokens=token_strings(tokenizer, tgt), entropies=ent, truncated=cut, source="teacher_forced"
        )
        for tgt, ent, cut in zip(targets, entropies, truncated)
    ]


def token_strings(tokenizer, ids: Sequence[int]) -> list[str]:
    """Each token decoded on its own (``" world"`` rather than ``"Ġworld"``); ids as strings without a tokenizer."""
    if tokenizer is None or not ids:  # (batch_decode([]) would return one empty string)
        return [str(i) for i in ids]
    return tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False)


# -------------------------------------------------------------------------------------------------- preparation


def _check_args(batch_size: int, max_length: int | None, chunk_size: int, method: str) -> None:
    if batch_size < 1:
        raise SoftthinkConfigError(f"batch_size must be >= 1, got {batch_size}.", param="batch_size", value=batch_size)
    if max_length is not None and max_length < 2:
        raise SoftthinkConfigError(
            f"max_length must be >= 2 tokens or None (no limit), got {max_length}.",
            param="max_length",
            value=max_length,
        )
    if chunk_size < 1:
        raise SoftthinkConfigError(
            f"chunk_size must be >= 1, got {chunk_size}. It is the number of positions "
            "whose logits exist at once; 256-1024 suits most vocabularies.",
            param="chunk_size",
            value=chunk_size,
        )
    if method not in METHODS:
        raise SoftthinkConfigError(f"method must be one of {METHODS}, got {method!r}.", param="method", value=method)


def _encode(
    tokenizer, texts: list[str], prompts: list[str] | None, prepend_bos: bool
) -> tuple[list[list[int]], list[list[int]]]:
    """(context ids, target ids) per text."""
    if prompts is not None:
        contexts = [_encoded(tokenizer, p, True, f"prompt {i}") for i, p in enumerate(prompts)]
        targets = [_encoded(tokenizer, t, False, f"text {i}") for i, t in enumerate(texts)]
        return contexts, targets
    contexts, targets = [], []
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prepend_bos and prefix is None:
        warnings.warn(
            "the tokenizer has neither a BOS nor an EOS token to put before each text, so the first "
            "token of each text is context and is not scored.",
            stacklevel=3,
        )
    for i, text in enumerate(texts):
        ids = _encoded(tokenizer, text, True, f"text {i}")
        if prepend_bos and prefix is not None and not (ids and ids[0] == tokenizer.bos_token_id):
            ids = [prefix] + ids
        contexts.append(ids[:1])  # BOS (the tokenizer's own or ours), else the text's first token
        targets.append(ids[1:])
    return contexts, targets


def _encoded(tokenizer, text: str, special: bool, what: str) -> list[int]:
    """The ids of ``text``; a warning names pieces that became the unknown token (`warn_unknown_tokens`)."""
    ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    warn_unknown_tokens(tokenizer, text, ids, what)
    return ids


def _check_context(model, contexts, targets) -> None:
    """Raise when a sequence (context + text) is longer than the model's context: the model would score it anyway,
    with positions it was never trained on. ``max_length`` (``--max-length``) cuts texts explicitly."""
    limit = context_length(model) if hasattr(model, "config") else None
    if limit is None:
        return
    lengths = [len(c) + len(t) for c, t in zip(contexts, targets)]
    longer = [i for i, n in enumerate(lengths) if n > limit]
    if longer:
        first = longer[0]
        raise SoftthinkInputError(
            f"{len(longer)} of {len(lengths)} sequences are longer than the model's context of {limit} tokens "
            f"(sequence {first}: {lengths[first]} tokens, context + text); entropies past the context are not "
            f"meaningful. Pass max_length={limit} (softthink analyze --max-length {limit}) to cut them to the "
            "context (a warning says how many were cut), or shorten the texts."
        )


def _truncate(contexts, targets, max_length):
    truncated = [False] * len(targets)
    if max_length is None:
        return contexts, targets, truncated
    for i, (ctx, tgt) in enumerate(zip(contexts, targets)):
        if len(ctx) >= max_length:
            raise SoftthinkInputError(
                f"the context (prompt) of sequence {i} has {len(ctx)} tokens, which leaves "
                f"no room under max_length={max_length}. Raise max_length or shorten it."
            )
        if len(ctx) + len(tgt) > max_length:
            targets[i] = tgt[: max_length - len(ctx)]
            truncated[i] = True
    if any(truncated):
        warnings.warn(
            f"{sum(truncated)} of {len(targets)} sequences were cut to max_length={max_length} tokens; "
            "their later tokens are not scored.",
            stacklevel=3,
        )
    return contexts, targets, truncated


def _pad_id(tokenizer) -> int:
    for tid in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if tid is not None:
            return int(tid)
    return 0  # right padding under an attention mask: the value never reaches a scored position


# ------------------------------------------------------------------------------------------------------ scoring


def _score(model, contexts, targets, *, batch_size, chunk_size, method, pad_id, progress) -> list[list[float]]:
    order = sorted(range(len(targets)), key=lambda i: -(len(contexts[i]) + len(targets[i])))
    todo = [i for i in order if targets[i]]
    results: list[list[float]] = [[] for _ in targets]
    with _eval_mode(model), torch.inference_mode():
        project = _resolve_method(model, method, contexts, targets, todo)
        batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
        for batch in tqdm(batches, desc="token entropy", unit="batch", disable=not progress):
            input_ids, attention_mask = _pad([contexts[i] + targets[i] for i in batch], pad_id, model.device)
            spans = [(len(contexts[i]) - 1, len(contexts[i]) + len(targets[i]) - 1) for i in batch]
            if project is not None:
                rows = _entropies_head(model, project, input_ids, attention_mask, spans, chunk_size)
            else:
                rows = _entropies_forward(model, input_ids, attention_mask, spans, chunk_size)
            for i, row in zip(batch, rows):
                results[i] = row
    return results


def _pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask: real tokens keep positions 0..n-1, as when run one by one."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids.to(device), mask.to(device)


def _entropies_head(model, project, input_ids, attention_mask, spans, chunk_size) -> list[list[float]]:
    hidden = _last_hidden_state(model, input_ids, attention_mask)  # [b, L, H]
    length = hidden.shape[1]
    flat = torch.cat([torch.arange(a, b) + r * length for r, (a, b) in enumerate(spans)]).to(hidden.device)
    ents = chunked_entropy(hidden.reshape(-1, hidden.shape[-1])[flat], project, chunk_size).cpu()
    sizes = [b - a for a, b in spans]
    return [chunk.tolist() for chunk in torch.split(ents, sizes)]


def _entropies_forward(model, input_ids, attention_mask, spans, chunk_size) -> list[list[float]]:
    """Full model per chunk of positions (``logits_to_keep``): right for any model, slower."""
    batch = input_ids.shape[0]
    width = max(1, chunk_size // batch)
    start, stop = min(a for a, _ in spans), max(b for _, b in spans)
    ents = torch.zeros(input_ids.shape, dtype=torch.float32)
    for s in range(start, stop, width):
        keep = torch.arange(s, min(s + width, stop), device=input_ids.device)
        logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False).logits
        if logits.shape[1] != len(keep):
            raise SoftthinkInputError(
                f"{type(model).__name__} ignored logits_to_keep ({logits.shape[1]} positions "
                f"returned, {len(keep)} asked for); its entropies cannot be computed chunk by "
                "chunk. Use a transformers causal LM class that supports it."
            )
        ents[:, s : s + len(keep)] = entropy_from_logits(logits).cpu()
    return [ents[r, a:b].tolist() for r, (a, b) in enumerate(spans)]


# ------------------------------------------------------------------------------------------- the head projection


def _resolve_method(model, method, contexts, targets, todo) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The checked head projection, or None for the ``forward`` path."""
    if method == "forward" or not todo:
        return _require_logits_to_keep(model) if method == "forward" else None
    project, problem = _head_projection(model)
    if project is not None:
        i = todo[0]
        problem = _verify_head(model, project, (contexts[i] + targets[i])[:_VERIFY_PREFIX])
    if problem is None:
        return project
    if method == "head":
        raise SoftthinkInputError(
            f"method='head' cannot be used with {type(model).__name__}: {problem}. Use method='auto' or 'forward'."
        )
    warnings.warn(
        f"token entropy: {problem}; using the slower 'forward' path (the full model once per chunk of "
        f"positions). Pass method='forward' to silence this.",
        stacklevel=4,
    )
    return _require_logits_to_keep(model)


def _head_projection(model) -> tuple[Callable | None, str | None]:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    base = getattr(model, "base_model", None)
    if head is None or base is None or base is model:
        return None, "the model exposes no separate base model and LM head"
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    scale = getattr(model, "logit_scale", getattr(cfg, "logit_scale", None))  # Cohere: logits * scale
    divide = getattr(cfg, "logits_scaling", None)  # Granite: logits / scaling
    cap = getattr(cfg, "final_logit_softcapping", None)  # Gemma 2/3: cap * tanh(logits / cap)
    scale = scale if isinstance(scale, (int, float)) else None

    def project(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(hidden)
        if scale is not None:
            logits = logits * scale
        if divide is not None:
            logits = logits / divide
        if cap is not None:
            logits = torch.tanh(logits.float() / cap) * cap
        return logits

    return project, None


def _verify_head(model, project, ids: list[int]) -> str | None:
    """None if the head path gives the model's own entropies on ``ids``, else what went wrong."""
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    reference = entropy_from_logits(model(input_ids=input_ids, use_cache=False).logits[0])
    ours = entropy_from_logits(project(_last_hidden_state(model, input_ids, torch.ones_like(input_ids))[0]))
    tolerance = 1e-3 if model.dtype == torch.float32 else 5e-2
    error = (ours - reference).abs().max().item()
    if not error <= tolerance:
        return (
            f"base model + LM head does not reproduce the model's logits (max entropy difference {error:.3g} "
            f"nats > {tolerance:g}); the model post-processes its logits in a way softthink does not know"
        )
    return None


def _last_hidden_state(model, input_ids, attention_mask) -> torch.Tensor:
    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _require_logits_to_keep(model) -> None:
    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise SoftthinkInputError(
            f"{type(model).__name__}.forward has no `logits_to_keep` argument, so its entropies "
            "cannot be computed chunk by chunk. Use a transformers causal LM class that has it "
            "(transformers >= 4.50), or method='head' if its base model + LM head reproduce it."
        )
    return None


@contextlib.contextmanager
def _eval_mode(model) -> Iterator[None]:
    """Dropout off while scoring; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
