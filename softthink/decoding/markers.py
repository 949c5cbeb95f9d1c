"""Resolving the think-end marker against a tokenizer (the config check that needs the tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass

from softthink.errors import SoftthinkConfigError

DEFAULT_THINK_END = "</think>"


@dataclass(frozen=True)
class ThinkMarker:
    """The marker that ends thinking: its text and token ids (what is injected when thinking is cut short)."""

    text: str
    token_ids: tuple[int, ...]

    @property
    def single_token(self) -> bool:
        return len(self.token_ids) == 1


def resolve_think_marker(
    think_end: str | None, tokenizer, *, required_by: str | None = None, needs_injection: bool = False
) -> ThinkMarker | None:
    """Turn the config's ``think_end`` into a `ThinkMarker`, or None for "no thinking phase".

    ``required_by`` names the mode that needs a thinking phase; ``needs_injection`` is True when a budget or
    Cold Stop may have to inject the marker. Either makes a missing marker an error.
    """
    marker = None
    if think_end == "auto":
        ids = tokenizer.encode(DEFAULT_THINK_END, add_special_tokens=False)
        if len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
            marker = ThinkMarker(DEFAULT_THINK_END, (ids[0],))
    elif think_end is not None:
        ids = tokenizer.encode(think_end, add_special_tokens=False)
        if not ids or (tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids):
            raise SoftthinkConfigError(
                f"decode.think_end {think_end!r} cannot be represented by this tokenizer (it encodes to {ids}). "
                "Pick a marker string made of characters the tokenizer knows.",
                param="think_end",
                value=think_end,
            )
        marker = ThinkMarker(think_end, tuple(ids))
    if marker is None and (required_by or needs_injection):
        why = (
            f"mode {required_by!r} feeds concept tokens only while thinking"
            if required_by
            else "max_think_tokens / cold_stop_entropy end thinking by injecting the marker"
        )
        raise SoftthinkConfigError(
            f"decode.think_end: {why}, but there is no think-end marker (think_end={think_end!r}; this tokenizer "
            f"has no single-token {DEFAULT_THINK_END!r}). Name a marker string, e.g. think_end='\\\\boxed' for a chat "
            "model that ends its reasoning with a boxed answer, or use mode='discrete'.",
            param="think_end",
            value=think_end,
        )
    return marker
