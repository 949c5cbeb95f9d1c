"""Non-math answer formats: multiple choice (letters A-J) and exact match on normalised strings.

Multiple choice. Explicit answer statements are, wherever they occur:

- ``\\boxed{B}`` (also ``\\boxed{(B)}``, ``\\boxed{\\text{B}}``, ``\\boxed{B) 42}``);
- "answer: (B)", "the answer is B", "the correct answer is option B", "final answer: **B**", "Answer: B.";

and **the last one in the text wins** (a model that corrects itself is graded on its correction). A capital "A"
or "I" followed by a lowercase word ("the answer is A train...", "the answer is I think...") is an article or a
pronoun, not a choice, and letters beyond the number of options are ignored. Without any explicit statement, a
final line that is only a letter ("(C)", "**C**", "C.") counts (rule ``final_line``). Last, the text of a
statement or of the final line is matched against the options' texts, and counts only when it equals exactly one
option (rule ``option_text``).

Exact match. The answer is the last ``\\boxed{}`` or "the answer is ..." statement, else the last non-empty line;
answer and gold are compared after SQuAD-style normalisation (lowercase, no punctuation, no articles, single
spaces). A gold answer may list aliases separated by ``|``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from softthink.eval.grading import boxed_spans

LETTERS = "ABCDEFGHIJ"

_STATEMENT_RE = re.compile(
    r"(?:final\s+|correct\s+|right\s+|best\s+)?answer\s*(?:is|:|would\s+be|=)\s*:?\s*", re.IGNORECASE
)
# A choice letter at the start of an answer phrase: optional bold/paren/"option", the letter, then a boundary.
_LETTER_RE = re.compile(r"^(?:\*\*|__)?\s*(?:(?:option|choice)\s+)?[\(\[]?\s*([A-J])\s*(?![A-Za-z0-9])", re.IGNORECASE)
_ARTICLE_RE = re.compile(r"^[AI]\s+[a-z]")
_FINAL_LINE_RE = re.compile(r"^(?:\*\*|__)?\s*[\(\[]?\s*([A-J])\s*[\)\]]?\s*(?:\*\*|__)?\s*\.?$")


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every non-empty ``\\boxed{...}`` with balanced braces."""
    return [(pos, content) for pos, content in boxed_spans(text) if content]


def _statement_spans(text: str) -> list[tuple[int, str]]:
    """(position, rest of the line) after every "the answer is" / "answer:" statement."""
    spans = []
    for match in _STATEMENT_RE.finditer(text):
        rest = text[match.end() :].split("\n", 1)[0].strip()
        if rest:
            spans.append((match.start(), rest))
    return spans


def _unwrap(content: str) -> str:
    """``\\text{B}`` -> ``B``; ``$B$`` -> ``B``."""
    content = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", content)
    return content.replace("$", "").strip()


def _letter(phrase: str, n_choices: int, *, strict_case: bool) -> str | None:
    """The choice letter an answer phrase starts with, or None (articles, out-of-range letters, words)."""
    phrase = _unwrap(phrase)
    match = _LETTER_RE.match(phrase)
    if not match:
        return None
    letter = match.group(1)
    if letter.islower():
        if strict_case:
            return None
        letter = letter.upper()
    delimited = phrase[: match.start(1)].strip() != "" or phrase[match.end(1) : match.end(1) + 1] in (")", "]")
    if not delimited and _ARTICLE_RE.match(phrase[match.start(1) :]):
        return None
    return letter if LETTERS.index(letter) < n_choices else None


def _normalise_text(text: str) -> str:
    """SQuAD-style: lowercase, drop punctuation and the articles a/an/the, collapse spaces."""
    text = _unwrap(str(text)).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _option_match(phrase: str, choices: Sequence[str]) -> str | None:
    """The letter of the one option whose text the phrase equals (after normalisation); None if 0 or 2+."""
    target = _normalise_text(re.split(r"\.(?=\s|$)", phrase, maxsplit=1)[0])
    if not target:
        return None
    hits = [i for i, choice in enumerate(choices) if _normalise_text(choice) == target]
    return LETTERS[hits[0]] if len(hits) == 1 else None


def extract_choice(text: str, choices: Sequence[str] | None = None) -> tuple[str | None, str | None]:
    """``(letter, rule)`` of the answer to a multiple-choice question, or ``(None, None)``.

    ``choices`` (the options' texts, in letter order) bounds the valid letters and enables option-text matching.
    """
    n = len(choices) if choices else len(LETTERS)
    statements = sorted(
        [(pos, phrase, "boxed") for pos, phrase in _boxed_spans(text)]
        + [(pos, phrase, "answer_is") for pos, phrase in _statement_spans(text)]
    )
    for _, phrase, rule in reversed(statements):  # the last explicit statement wins
        letter = _letter(phrase, n, strict_case=rule == "answer_is")
        if letter:
            return letter, rule
        if choices and _option_match(phrase, choices):
            return _option_match(phrase, choices), "option_text"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        final = _FINAL_LINE_RE.match(lines[-1])
        if final and LETTERS.index(final.group(1)) < n:
            return final.group(1), "final_line"
        if choices and _option_match(lines[-1], choices):
            return _option_match(lines[-1], choices), "option_text"
    return None, None


def normalise_choice_gold(gold: str) -> str:
    """Gold of a multiple-choice item as one capital letter ('b', '(B)', 'B.' -> 'B'); raises ValueError."""
    match = _FINAL_LINE_RE.match(str(gold).strip().upper())
    if not match:
        raise ValueError(f"expected a choice letter A-J, got {gold!r}")
    return match.group(1)


def extract_short_answer(text: str) -> tuple[str | None, str | None]:
    """``(answer, rule)`` for exact match: the last boxed / "answer is" statement, else the last line."""
    statements = sorted(
        [(pos, phrase, "boxed") for pos, phrase in _boxed_spans(text)]
        + [(pos, phrase, "answer_is") for pos, phrase in _statement_spans(text)]
    )
    if statements:
        _, phrase, rule = statements[-1]
        if rule == "answer_is":
            phrase = re.split(r"\.(?=\s|$)", phrase, maxsplit=1)[0]
        return _unwrap(phrase).strip("*_ ").strip() or None, rule
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1], "last_line") if lines else (None, None)


def exact_match(answer: str, gold: str) -> bool:
    """Normalised equality with the gold answer or one of its ``|``-separated aliases."""
    target = _normalise_text(answer)
    return bool(target) and any(target == _normalise_text(alias) for alias in str(gold).split("|"))
