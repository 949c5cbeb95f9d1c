"""Prompt construction: every record's exact prompt text follows from the suite's ``prompt:`` block.

Styles:

- ``chat`` (default, instruct models): one user message, the ``template`` with ``{question}`` filled in (plus an
  optional system message), through the tokenizer's chat template; the default template asks for step-by-step
  reasoning and a final answer in ``\\boxed{}``.
- ``think`` (reasoning models): like ``chat``, then ``think_open`` (``"<think>\\n"``) opened after the generation
  prompt unless the template already opened it.
- ``few_shot`` (base models): plain text, ``n_shots`` GSM8K-train exemplars in the ``Question: / Answer:`` format
  ending in "The answer is N.", then the question; stops at the next ``"\\n\\nQuestion:"``.
- ``plain``: the filled ``template`` as plain text, no chat template.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from softthink.errors import SoftthinkConfigError, SoftthinkInputError, unknown_name_message

PROMPT_STYLES = ("chat", "think", "few_shot", "plain")
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
DEFAULT_TEMPLATES = {
    "chat": "{question}\n" + BOXED_INSTRUCTION,
    "think": "{question}\n" + BOXED_INSTRUCTION,
    "few_shot": "Question: {question}\nAnswer:",
    "plain": "{question}\n" + BOXED_INSTRUCTION,
}
DEFAULT_STOP_STRINGS = {"few_shot": ["\n\nQuestion:"]}


@dataclass(frozen=True)
class PromptSpec:
    """The ``prompt:`` block of a suite (or of a benchmark's defaults)."""

    style: str = "chat"
    template: str | None = None
    """Must contain ``{question}``; None = the style's default (see ``DEFAULT_TEMPLATES``)."""
    system: str | None = None
    """Optional system message (chat/think styles)."""
    n_shots: int = 8
    """few_shot: number of exemplars from GSM8K train."""
    shots_seed: int | None = None
    """few_shot: None = the first ``n_shots`` train items; an int = a seeded random sample of them."""
    think_open: str = "<think>\n"
    """think: text that opens the thinking block after the generation prompt."""
    stop_strings: tuple[str, ...] | None = None
    """Added to the decode config's stop strings; None = the style's default (few_shot: ``"\\n\\nQuestion:"``)."""

    def __post_init__(self) -> None:
        if self.style not in PROMPT_STYLES:
            raise SoftthinkConfigError(
                "prompt.style: " + unknown_name_message("prompt style", self.style, PROMPT_STYLES),
                param="prompt.style",
                value=self.style,
            )
        if self.template is not None and "{question}" not in self.template:
            raise SoftthinkConfigError(
                f"prompt.template must contain '{{question}}', got {self.template!r}.",
                param="prompt.template",
                value=self.template,
            )
        if not isinstance(self.n_shots, int) or self.n_shots < 0:
            raise SoftthinkConfigError(
                f"prompt.n_shots must be an int >= 0, got {self.n_shots!r}.", param="prompt.n_shots", value=self.n_shots
            )
        if self.stop_strings is not None:
            stops = (self.stop_strings,) if isinstance(self.stop_strings, str) else tuple(self.stop_strings)
            object.__setattr__(self, "stop_strings", stops)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PromptSpec:
        data = dict(data or {})
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SoftthinkConfigError(
                f"unknown prompt option(s) {unknown}; allowed: {sorted(allowed)}.", param="prompt", value=unknown
            )
        return cls(**data)

    @property
    def resolved_template(self) -> str:
        return self.template if self.template is not None else DEFAULT_TEMPLATES[self.style]

    @property
    def resolved_stop_strings(self) -> list[str]:
        if self.stop_strings is not None:
            return list(self.stop_strings)
        return list(DEFAULT_STOP_STRINGS.get(self.style, []))

    @property
    def uses_chat_template(self) -> bool:
        return self.style == "chat"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["template"] = self.resolved_template
        out["stop_strings"] = self.resolved_stop_strings
        return out


def fill_template(template: str, question: str) -> str:
    """``template`` with ``{question}`` replaced; other braces (``\\boxed{}``) stay as written."""
    return template.replace("{question}", question)


def prompt_hash(text: str) -> str:
    """Short stable hash of an exact prompt text (16 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def format_exemplar_solution(solution: str) -> str:
    """A GSM8K train solution as a few-shot answer: calculator marks removed, '#### N' -> 'The answer is N.'."""
    body, _, final = solution.rpartition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\nThe answer is {final.strip()}."


@dataclass
class PromptBuilder:
    """Renders prompts for one (prompt spec, tokenizer); few-shot exemplars are fixed at construction."""

    spec: PromptSpec
    tokenizer: Any
    exemplars: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.spec.style in ("chat", "think") and not getattr(self.tokenizer, "chat_template", None):
            raise SoftthinkInputError(
                f"prompt.style {self.spec.style!r} needs a chat template, but this tokenizer has "
                "none. Use prompt.style: few_shot (base models) or plain."
            )

    def model_input(self, question: str) -> str | list[dict[str, str]]:
        """What is passed to `softthink.generate`: chat messages for ``chat``, a string otherwise."""
        body = fill_template(self.spec.resolved_template, question)
        if self.spec.style == "chat":
            return self._messages(body)
        if self.spec.style == "think":
            text = self.tokenizer.apply_chat_template(self._messages(body), add_generation_prompt=True, tokenize=False)
            if not text.rstrip().endswith(self.spec.think_open.strip()):
                text += self.spec.think_open
            return self._without_duplicate_bos(text)
        if self.spec.style == "few_shot":
            shots = "".join(fill_template(self.spec.resolved_template, q) + " " + a + "\n\n" for q, a in self.exemplars)
            return shots + body
        return body

    def text(self, question: str) -> str:
        """The exact prompt text the model sees (what `Generation.prompt` reports)."""
        model_input = self.model_input(question)
        if isinstance(model_input, str):
            return model_input
        return self.tokenizer.apply_chat_template(model_input, add_generation_prompt=True, tokenize=False)

    def _messages(self, body: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.spec.system}] if self.spec.system else []
        return messages + [{"role": "user", "content": body}]

    def _without_duplicate_bos(self, text: str) -> str:
        # A string prompt is encoded with the tokenizer's special tokens; a template that writes BOS itself would
        # otherwise get two.
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and text.startswith(bos):
            ids = self.tokenizer.encode("a", add_special_tokens=True)
            if ids and ids[0] == self.tokenizer.bos_token_id:
                return text[len(bos) :]
        return text


def select_exemplars(spec: PromptSpec, train_problems: list) -> list[tuple[str, str]]:
    """The few-shot exemplars (question, formatted solution) chosen by ``spec`` from GSM8K-train problems."""
    if spec.style != "few_shot" or spec.n_shots == 0:
        return []
    if spec.n_shots > len(train_problems):
        raise SoftthinkConfigError(
            f"prompt.n_shots={spec.n_shots} exceeds the {len(train_problems)} available exemplars.",
            param="prompt.n_shots",
            value=spec.n_shots,
        )
    if spec.shots_seed is None:
        chosen = train_problems[: spec.n_shots]
    else:
        chosen = random.Random(spec.shots_seed).sample(list(train_problems), spec.n_shots)
    return [(p.question, format_exemplar_solution(p.meta["answer"])) for p in chosen]
