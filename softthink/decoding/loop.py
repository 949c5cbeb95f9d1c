"""The one decode loop. Every mode runs through it; modes differ only in their per-step rule.

Per step: turn the logits into the phase's distribution and entropy, let the phase's rule decide (visible token +
weighted tokens to feed back), override with injected marker tokens, update each row's phase and stop state on
the host (one device-to-host copy per step), drop finished rows, and feed the concept/token embeddings of the
survivors back through the KV cache.

Continuous batching (``max_batch_size=K`` below the number of prompts): the first K prompts are prefilled as one
batch, the rest wait in a queue. When rows finish and prompts are queued, each finished row's slot takes the next
prompt before the step's forward: the queued prompts are prefilled but for their last token ahead of need, K at
a time in a batch and cache of their own (`QueuedPrompts`), the new prompt's KV rows are copied into the slot in
place, right-aligned to the batch's columns
(`softthink.decoding.slots`), and its last token is fed in the same forward as the running rows' mixtures, so that
forward yields the new row's first logits. Memory stays bounded without a full-cache copy per finished row: the
only full copies are `DynamicCache`'s own concatenation each step and, rarely, growing the batch on the left when
a new prompt is wider than the batch; each step drops the leading columns that every row masks out (views that
the next concatenation compacts), so the cache is as wide as the longest live row. Finished rows with nothing
queued are dropped as usual. Per-prompt generators (``prompt_seeds``) make each row's draws independent of which
slot it lands in and when.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from softthink.decoding import slots as slots_kv
from softthink.decoding.concept import concept_embeddings
from softthink.decoding.config import DecodeConfig
from softthink.decoding.decision import StepDecider, host_values
from softthink.decoding.host import host_tensor
from softthink.decoding.kv import DynamicKV, ModelStep, RunningKV, StaticKV, static_capacity
from softthink.decoding.markers import ThinkMarker
from softthink.decoding.prompts import EncodedBatch
from softthink.decoding.randomness import GLOBAL_RANDOMNESS, PromptGenerators
from softthink.decoding.rules import DecodeRule, Step, merge_steps, rule_class
from softthink.decoding.rules.discrete import Discrete
from softthink.decoding.state import ActiveBatch, RowRecord, SlotPrefill
from softthink.errors import SoftthinkInputError


@dataclass
class LoopResult:
    """Raw output of `decode`: one `RowRecord` per prompt, and the kept tokens/weights per step if traced."""

    records: list[RowRecord]
    kept_ids: list[list[list[int]]] | None
    kept_weights: list[list[list[float]]] | None


class StopStringMatcher:
    """Checks whether the answer text of a row now contains a stop string (decoding only a short tail)."""

    def __init__(self, stop_strings: list[str], tokenizer):
        self.stop_strings = stop_strings
        self.tokenizer = tokenizer
        # A stop string of n characters spans at most n tokens (plus one partially overlapping on each side).
        self.window = max((len(s) for s in stop_strings), default=0) + 2

    def hit(self, record: RowRecord) -> bool:
        if not self.stop_strings:
            return False
        answer = record.token_ids[record.answer_start :]
        tail = self.tokenizer.decode(answer[-self.window :], skip_special_tokens=False)
        return any(s in tail for s in self.stop_strings)


class MarkerMatcher:
    """Detects that the visible tokens just completed the think-end marker."""

    def __init__(self, marker: ThinkMarker, tokenizer):
        self.marker = marker
        self.tokenizer = tokenizer
        self.window = len(marker.token_ids) + 2

    def completed(self, record: RowRecord) -> bool:
        if self.marker.single_token:
            return record.token_ids[-1] == self.marker.token_ids[0]
        # Several tokens: compare text, since the model may spell the marker with other token boundaries.
        tail = self.tokenizer.decode(record.token_ids[-self.window :], skip_special_tokens=False)
        return self.marker.text in tail


def decode(
    model,
    tokenizer,
    batch: EncodedBatch,
    config: DecodeConfig,
    marker: ThinkMarker | None,
    eos_token_ids: set[int],
    prompt_seeds: Sequence[int] | None = None,
    on_step: Callable[[list[int], torch.Tensor], None] | None = None,
    generators: PromptGenerators | None = None,
    on_feed: Callable[[list[int], Step, torch.Tensor], torch.Tensor] | None = None,
    max_batch_size: int | None = None,
) -> LoopResult:
    """Run the decode loop on a left-padded batch. Call inside ``torch.no_grad()`` (``generate`` does).

    With ``prompt_seeds`` (one per row) each row draws from its own generator, and both phase rules run on every
    row at every step, so a row's sequence of draws never depends on the other rows' phases or lengths.
    ``on_step(rows, logits)``, if given, sees each step's raw logits ``[active rows, vocab]`` and the original
    indices of those rows (e.g. to return per-step scores); it must not modify them.
    ``generators`` replaces ``PromptGenerators(prompt_seeds)`` (e.g. one that records its draws, for RL replay).
    ``on_feed(rows, step, embeds)``, if given, sees every step's decision and its embeddings (the active rows,
    before finished rows are dropped; the last step too, which is never fed) and returns the ``[rows, hidden]``
    embeddings to feed instead of ``embeds`` (e.g. with noise added)."""
    device = batch.input_ids.device
    if config.ignore_eos:
        eos_token_ids = set()
    if generators is None and prompt_seeds is not None:
        generators = PromptGenerators(prompt_seeds, device)
    think_rule: DecodeRule = rule_class(config.mode)(config, config.think_sampling())
    answer_rule = Discrete(config, config.answer_sampling())
    marker_matcher = MarkerMatcher(marker, tokenizer) if marker else None
    stop_matcher = StopStringMatcher(config.stop_strings, tokenizer)
    embed = model.get_input_embeddings()
    forward = ModelStep(model)
    decide = StepDecider(think_rule, answer_rule, both=generators is not None, compile=config.compile, device=device)

    n = batch.input_ids.shape[0]
    slots = n if max_batch_size is None else min(max_batch_size, n)
    queue = QueuedPrompts(forward, model, batch, range(slots, n), chunk=slots)
    continuous = bool(queue)
    records = [RowRecord(thinking=marker is not None) for _ in range(n)]
    traced_steps: list[tuple[list[int], torch.Tensor, torch.Tensor]] = []

    first = _first_slots(batch, slots)
    kv: RunningKV
    if config.compile:
        longest = max(len(ids) for ids in batch.token_ids)
        kv = StaticKV(model, forward, slots, static_capacity(longest, config.max_new_tokens, continuous))
    else:
        kv = DynamicKV(model, forward)
    active = ActiveBatch(
        rows=list(range(slots)),
        attention_mask=first.attention_mask,
        next_position=first.attention_mask.sum(-1),
        cache=kv,
        rule_state=think_rule.init_state(slots, device),
        lengths=[len(ids) for ids in batch.token_ids[:slots]],
    )
    prefill_positions = (first.attention_mask.cumsum(-1) - 1).clamp_min(0)
    logits = kv.forward(active.attention_mask, input_ids=first.input_ids, position_ids=prefill_positions)
    if continuous:
        kv.check_slots()

    for t in itertools.count():
        rows = list(active.rows)  # a copy: a refill changes active.rows in place
        if on_step is not None:
            on_step(rows, logits)
        live = [records[r] for r in rows]
        thinking = [rec.thinking for rec in live]

        # 1-2. The step's distribution at each row's phase temperature, its entropy, and the phase's rule decision
        # (`softthink.decoding.decision`); injected marker tokens override it.
        random = generators.for_rows(rows) if generators else GLOBAL_RANDOMNESS
        step, step_entropy, packed = decide(logits, thinking, random, active.rule_state)
        forced = [bool(rec.forced) for rec in live]
        if any(forced):
            forced_tokens = host_tensor([rec.forced[0] if rec.forced else 0 for rec in live], device=device)
            step = merge_steps(host_tensor(forced, device=device), Step.discrete(forced_tokens), step)
            packed = host_values(step, step_entropy)

        # 3. One device-to-host copy: the visible tokens, entropies and soft flags.
        synced = packed.tolist()
        if not all(map(_finite, (e for _, e, _ in synced))):
            _raise_non_finite(logits, rows, t)

        # 4. Host bookkeeping: phases, Cold Stop, budget, EOS, stop strings, length.
        ended_by_marker = []
        for rec, was_forced, (token, entropy, soft) in zip(live, forced, synced):
            ended_by_marker.append(
                _advance(
                    rec,
                    int(token),
                    entropy,
                    bool(soft),
                    was_forced,
                    config,
                    marker,
                    marker_matcher,
                    stop_matcher,
                    eos_token_ids,
                    last_step=len(rec.token_ids) + 1 == config.max_new_tokens,  # before this step's token
                )
            )
        # A soft step whose visible token completes the marker feeds the marker token itself.
        if any(e and s for e, (_, _, s) in zip(ended_by_marker, synced)):
            ended = host_tensor(ended_by_marker, device=device)
            step = merge_steps(ended, Step.discrete(step.token_ids), step)
            for rec, e in zip(live, ended_by_marker):
                if e:
                    rec.soft[-1] = False
        if config.trace:
            traced_steps.append((rows, step.kept_ids, step.weights))

        # 5. Refill finished rows' slots from the queue, drop the other finished rows, feed the rest.
        done = [i for i, rec in enumerate(live) if rec.finished]
        finished_all = len(done) == len(live) and not queue
        if finished_all and on_feed is None:
            break
        mixture = concept_embeddings(embed, step.kept_ids, step.weights)
        if on_feed is not None:  # sees (and may replace) every decision's fed input, the last one included
            mixture = on_feed(rows, step, mixture)
            if finished_all:
                break
        refill, drop = done[: len(queue)], done[len(queue) :]
        if refill:
            new_rows, prefill = queue.take(len(refill))
            # A new row's first fed input is its prompt's last token: this step's forward yields its first logits.
            last_tokens = host_tensor([batch.token_ids[r][-1] for r in new_rows], device=device)
            mixture[host_tensor(refill, device=device)] = embed(last_tokens).to(mixture.dtype)
            active.refill(refill, new_rows, prefill, think_rule.init_state(len(refill), device))
        if drop:
            dropped = set(drop)
            mixture = mixture[active.select([i for i in range(len(live)) if i not in dropped])]
        active.attention_mask = torch.cat(
            [active.attention_mask, active.attention_mask.new_ones(len(active.lengths), 1)], 1
        )
        logits = active.cache.forward(
            active.attention_mask,
            inputs_embeds=mixture[:, None, :],
            position_ids=active.next_position[:, None],
        )
        active.next_position = active.next_position + 1
        active.lengths = [length + 1 for length in active.lengths]
        if continuous:
            active.trim_padding()

    if not config.trace:
        return LoopResult(records, None, None)
    return LoopResult(records, *_collect_trace(traced_steps, n))


def _first_slots(batch: EncodedBatch, slots: int) -> EncodedBatch:
    """The first ``slots`` prompts of ``batch``, without the columns that are padding in all of them."""
    if slots == len(batch.token_ids):
        return batch
    width = max(len(ids) for ids in batch.token_ids[:slots])
    return EncodedBatch(
        batch.texts[:slots],
        batch.token_ids[:slots],
        batch.input_ids[:slots, -width:],
        batch.attention_mask[:slots, -width:],
    )


class QueuedPrompts:
    """The prompts waiting for a slot (continuous batching), prefilled but for their last token ahead of need, in
    chunks of up to ``chunk`` prompts: a refill then copies KV rows out of the chunk instead of running a forward of
    its own, so a slot-step that refills costs a copy rather than a second model call (one prefill forward per
    ``chunk`` new rows)."""

    def __init__(self, forward: ModelStep, model, batch: EncodedBatch, rows: Sequence[int], chunk: int):
        self.forward, self.model, self.batch, self.chunk = forward, model, batch, chunk
        self.waiting = deque(rows)
        self.prefilled: list[int] = []  # the current chunk's rows, in order
        self.taken = 0  # of them, how many have left for a slot
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.waiting) + len(self.prefilled) - self.taken

    def take(self, count: int) -> tuple[list[int], SlotPrefill]:
        """The next ``count`` prompts and their prefilled KV (one `SlotPrefill`)."""
        if len(self.prefilled) - self.taken < count:
            # not enough left in this chunk: prefill the rest of it again with the next prompts
            rest = self.prefilled[self.taken :]
            more = [self.waiting.popleft() for _ in range(min(len(self.waiting), max(self.chunk, count) - len(rest)))]
            self._prefill(rest + more)
        rows = self.prefilled[self.taken : self.taken + count]
        picked = list(range(self.taken, self.taken + count))
        self.taken += count
        return rows, self._slot_prefill(rows, picked)

    def _prefill(self, rows: list[int]) -> None:
        """Prefill prompts ``rows`` but for their last token, as one left-padded batch of their own."""
        self.prefilled, self.taken = rows, 0
        lengths = [len(self.batch.token_ids[r]) - 1 for r in rows]
        width = max(lengths)
        self.cache = self.mask = None
        if width == 0:
            return
        device = self.batch.input_ids.device
        at = host_tensor(rows, device=device)
        end = self.batch.input_ids.shape[1] - 1  # prompts are left-padded: each one's last token is the last column
        input_ids = self.batch.input_ids[at, end - width : end]
        self.mask = self.batch.attention_mask[at, end - width : end]
        self.cache = DynamicCache(config=self.model.config)
        self.forward(self.cache, self.mask, input_ids=input_ids, position_ids=(self.mask.cumsum(-1) - 1).clamp_min(0))

    def _slot_prefill(self, rows: list[int], picked: list[int]) -> SlotPrefill:
        lengths = [len(self.batch.token_ids[r]) - 1 for r in rows]
        next_position = host_tensor(lengths, device=self.batch.input_ids.device)
        prefilled = [length > 0 for length in lengths]
        with_tokens = [i for i, p in zip(picked, prefilled) if p]
        if not with_tokens:
            return SlotPrefill(None, None, 0, prefilled, next_position, lengths)
        assert self.cache is not None and self.mask is not None, "a chunk with tokens has a cache"
        width = max(lengths)
        at = host_tensor(with_tokens, device=self.mask.device)
        return SlotPrefill(
            slots_kv.PrefilledRows(self.cache, at, width),
            self.mask[at, -width:],
            width,
            prefilled,
            next_position,
            lengths,
        )


def _advance(
    rec: RowRecord,
    token: int,
    entropy: float,
    soft: bool,
    was_forced: bool,
    config: DecodeConfig,
    marker: ThinkMarker | None,
    marker_matcher: MarkerMatcher | None,
    stop_matcher: StopStringMatcher,
    eos_token_ids: set[int],
    last_step: bool,
) -> bool:
    """Record one step of one row and update its phase and stop state. Returns True if the model itself just
    completed the think-end marker (so the loop feeds the marker token rather than a mixture)."""
    rec.token_ids.append(token)
    rec.entropy.append(entropy)
    rec.soft.append(soft)
    rec.in_thinking.append(rec.thinking)
    ended_naturally = False
    if rec.thinking:
        # A row starts thinking only when there is a think marker (and so a matcher), see `decode`.
        assert marker is not None and marker_matcher is not None, "a thinking row without a think marker"
        if was_forced:
            rec.forced.pop(0)
            if not rec.forced:
                assert rec.pending_end_reason is not None, "forced marker tokens are always queued with a reason"
                _end_thinking(rec, rec.pending_end_reason)
        elif marker_matcher.completed(rec):
            ended_naturally = True
            _end_thinking(rec, "think_marker")
        else:
            rec.think_content += 1
            low = config.cold_stop_entropy is not None and entropy < config.cold_stop_entropy
            rec.low_entropy_run = rec.low_entropy_run + 1 if low else 0
            if config.cold_stop_entropy is not None and rec.low_entropy_run >= config.cold_stop_patience:
                rec.forced, rec.pending_end_reason = list(marker.token_ids), "cold_stop"
            elif config.max_think_tokens is not None and rec.think_content >= config.max_think_tokens:
                rec.forced, rec.pending_end_reason = list(marker.token_ids), "think_budget"
    if token in eos_token_ids and not was_forced:
        rec.stop_reason = "eos"
    elif not rec.thinking and len(rec.token_ids) > rec.answer_start and stop_matcher.hit(rec):
        rec.stop_reason = "stop_string"
    elif last_step:
        rec.stop_reason = "max_tokens"
    return ended_naturally


def _end_thinking(rec: RowRecord, reason: str) -> None:
    rec.thinking = False
    rec.think_end_reason = reason
    rec.answer_start = len(rec.token_ids)


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


def _raise_non_finite(logits: torch.Tensor, rows: list[int], t: int) -> None:
    bad = [r for r, ok in zip(rows, torch.isfinite(logits).all(-1).tolist()) if not ok]
    raise SoftthinkInputError(
        f"the model produced non-finite logits (NaN/inf) at decode step {t} for prompt(s) {bad}. This usually "
        "means a numerically unstable dtype (try torch_dtype=torch.bfloat16 or float32 instead of float16) or "
        "broken weights; softthink does not silently replace them."
    )


def _collect_trace(steps: list[tuple[list[int], torch.Tensor, torch.Tensor]], n: int):
    """Per-row lists of the kept tokens and weights of every step, without the zero-weight padding."""
    ids: list[list[list[int]]] = [[] for _ in range(n)]
    weights: list[list[list[float]]] = [[] for _ in range(n)]
    for rows, step_ids, step_weights in steps:
        for r, row_ids, row_w in zip(rows, step_ids.tolist(), step_weights.tolist()):
            ids[r].append([i for i, w in zip(row_ids, row_w) if w > 0])
            weights[r].append([w for w in row_w if w > 0])
    return ids, weights
