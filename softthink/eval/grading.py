"""Rule-based grading: answer extraction plus math equivalence (`math-verify`), with a per-item timeout.

One grader for every decode mode and policy, so a gain cannot come from a more lenient judge.

Extraction rules, enabled by ``GraderConfig.rules`` (default: all four):

- ``boxed``: the content of a ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces; an empty box is no answer;
- ``hash``: the text after a ``####`` (GSM8K style);
- ``answer_is``: the text after "the answer is" / "final answer:" up to the end of the sentence;
- ``last_number``: the last number in the text, a fallback that is always recorded as such.

The last explicit statement (``boxed``, ``hash`` or ``answer_is``) in the text is the answer, so a model that
corrects itself is graded on its correction; ``last_number`` is used only when there is none (see
`extract_answer`). The extracted answer is then compared through its readings (`softthink.eval.answer_readings`:
scientific notation, percentages, two-unit quantities such as "4 hours and 30 minutes", number words).

``GraderConfig.answer_format`` picks the format: ``"math"`` (the default, above), ``"multiple_choice"`` (letters
A-J) or ``"exact_match"`` (normalised strings); the last two are described in `softthink.eval.answer_formats`.

Every `GradeResult` keeps the extracted string and the rule that extracted it, so a report can tell how many
answers were only found by the fallback.
"""

from __future__ import annotations

import re
import signal
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from softthink.errors import SoftthinkConfigError, unknown_name_message
from softthink.eval.answer_readings import readings, scientific_to_decimal

GRADER_VERSION = 3
"""Bump when extraction or equivalence changes: records graded by another version are regraded on the next run."""

EXTRACTION_RULES = ("boxed", "hash", "answer_is", "last_number")
"""Every extraction rule: three explicit statements, then the fallback."""

GRADING_FORMATS = ("math", "multiple_choice", "exact_match")
"""Values of ``GraderConfig.answer_format``."""


@dataclass(frozen=True)
class GraderConfig:
    """Options of the grader (the ``grader:`` block of a suite or benchmark YAML)."""

    rules: tuple[str, ...] = EXTRACTION_RULES
    """Extraction rules to use; their order does not matter (the last statement in the text wins, the last number is
    the fallback). Drop ``last_number`` for a stricter grader."""
    timeout_seconds: float = 5.0
    """Wall-clock bound for grading one item (parse + verify). 0 disables it (not recommended)."""
    float_rounding: int = 6
    """Decimal places kept when math-verify compares floats."""
    answer_format: str = "math"
    """``"math"`` (extraction rules + math equivalence), ``"multiple_choice"`` or ``"exact_match"``."""

    def __post_init__(self) -> None:
        rules = (self.rules,) if isinstance(self.rules, str) else tuple(self.rules)
        object.__setattr__(self, "rules", rules)
        if not rules:
            raise SoftthinkConfigError(
                f"grader.rules must list at least one extraction rule, got []. Use any of {list(EXTRACTION_RULES)}.",
                param="grader.rules",
                value=rules,
            )
        for rule in rules:
            if rule not in EXTRACTION_RULES:
                raise SoftthinkConfigError(
                    "grader.rules: " + unknown_name_message("extraction rule", rule, EXTRACTION_RULES),
                    param="grader.rules",
                    value=rule,
                )
        if self.answer_format not in GRADING_FORMATS:
            raise SoftthinkConfigError(
                "grader.answer_format: "
                + unknown_name_message("answer format", str(self.answer_format), GRADING_FORMATS),
                param="grader.answer_format",
                value=self.answer_format,
            )
        if not isinstance(self.timeout_seconds, (int, float)) or self.timeout_seconds < 0:
            raise SoftthinkConfigError(
                f"grader.timeout_seconds must be a number >= 0, got {self.timeout_seconds!r}."
                " Use 0 to disable the per-item timeout.",
                param="grader.timeout_seconds",
                value=self.timeout_seconds,
            )
        if not isinstance(self.float_rounding, int) or self.float_rounding < 0:
            raise SoftthinkConfigError(
                f"grader.float_rounding must be an int >= 0, got {self.float_rounding!r}.",
                param="grader.float_rounding",
                value=self.float_rounding,
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GraderConfig:
        data = dict(data or {})
        unknown = sorted(set(data) - {"rules", "timeout_seconds", "float_rounding", "answer_format"})
        if unknown:
            raise SoftthinkConfigError(
                f"unknown grader option(s) {unknown}; allowed: rules, timeout_seconds, float_rounding, answer_format.",
                param="grader",
                value=unknown,
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "rules": list(self.rules),
            "timeout_seconds": self.timeout_seconds,
            "float_rounding": self.float_rounding,
        }
        if self.answer_format != "math":  # math records keep the fingerprint they had before formats existed
            out["answer_format"] = self.answer_format
        return out

    def fingerprint(self) -> str:
        """Identifies the grading a record got: these options plus `GRADER_VERSION`."""
        import hashlib
        import json

        text = json.dumps({"version": GRADER_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class GradeResult:
    """The verdict on one completion: ``correct``, what was ``extracted`` and by which ``rule``."""

    correct: bool
    extracted: str | None
    rule: str | None
    gold: str
    method: str | None = None
    """``"exact"`` (normalised strings equal), ``"math_verify"`` or None when nothing was compared."""
    timed_out: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------------
# Extraction

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_IS_RE = re.compile(  # not "check our answer: 17 * 44 = ...": a possessive answer is being checked, not given
    r"(?<!\bour\s)(?<!\bmy\s)(?<!\byour\s)(?<!\bthis\s)(?<!\bthat\s)"
    r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*",
    re.IGNORECASE,
)
_HASH_RE = re.compile(r"####\s*")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?|-?\.\d+")
_STEP_LABEL_RE = re.compile(r"\bstep\s+\d+(?:\.\d+)*", re.IGNORECASE)  # "Step 3:", "Step 2.1"
_TRAILING_CLAUSE_RE = re.compile(r",\s+(?:i\.\s?e|e\.\s?g|which|so|because|since|that is)\b.*$", re.IGNORECASE)
_STATES_A_VALUE_RE = re.compile(r"^[-+\u2212(\[{.\d\\]")  # "6", "-2", "(1, 2)", "\frac12"; not "correct"


def boxed_spans(text: str) -> list[tuple[int, str]]:
    """``(position, content)`` of every ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``, in order.

    Braces must balance: a box cut off by the end of the output is skipped. An empty box (``\\boxed{}``,
    ``\\boxed{{}}``) is ``(position, "")``: callers treat it as no answer. ``\\boxed 5`` (no braces) gives ``"5"``.
    """
    found = []
    for match in _BOX_RE.finditer(text):
        rest = text[match.end() :]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            start = len(rest) - len(stripped)
            depth = 0
            for i, ch in enumerate(rest[start:], start):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        content = rest[start + 1 : i].strip()
                        found.append((match.start(), content if content.strip("{} ") else ""))  # {{}} is empty
                        break
        elif rest.startswith(" "):  # "\boxed 5"
            token = re.match(r"\s+([^\s$.,]+)", rest)
            if token:
                found.append((match.start(), token.group(1)))
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty ``\\boxed{...}`` with balanced braces (``\\boxed 5`` also works); None if
    absent. Empty and cut-off boxes are skipped."""
    contents = [content for _, content in boxed_spans(text) if content]
    return contents[-1] if contents else None


def _sentence_after(text: str, end: int) -> str:
    """The text from ``end`` to the end of its line and sentence, without ``$`` or markdown ``**`` around it."""
    line = text[end:].split("\n", 1)[0]
    # End of sentence: a period followed by a space or the end, not a decimal point.
    line = re.split(r"\.(?=\s|$)", line, maxsplit=1)[0]
    return line.strip().strip("*").strip().strip("$").strip()  # "**18**", "$\\frac12$"


def _rhs(answer: str) -> str:
    """'1.5*2.5 = 3.75 bolts' -> '3.75 bolts': prose answers often end with the computation that gives them."""
    return answer.rsplit("=", 1)[1].strip() if "=" in answer else answer


def _statements(text: str, rules: tuple[str, ...]) -> tuple[list[tuple[int, str, str]], bool]:
    """Every explicit answer statement of the enabled rules as ``(position, answer, rule)``, in text order, and
    whether an "answer is" statement stated an empty box (``the answer is \\boxed{}``)."""
    found: list[tuple[int, str, str]] = []
    empty_statement = False
    if "boxed" in rules:
        found += [(pos, content, "boxed") for pos, content in boxed_spans(text) if content]
    if "hash" in rules:
        found += [(m.start(), _sentence_after(text, m.end()), "hash") for m in _HASH_RE.finditer(text)]
    if "answer_is" in rules:
        for match in _ANSWER_IS_RE.finditer(text):
            answer = _sentence_after(text, match.end())
            if _BOX_RE.match(answer):  # "the answer is \boxed{5}": the box is the statement (rule boxed if enabled)
                boxed = last_boxed(answer)
                empty_statement |= not boxed
                if boxed and "boxed" not in rules:
                    found.append((match.start(), boxed, "answer_is"))
                continue
            found.append((match.start(), _TRAILING_CLAUSE_RE.sub("", _rhs(answer)).strip(), "answer_is"))
    return sorted(s for s in found if s[1]), empty_statement


def _last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(_STEP_LABEL_RE.sub(" ", text))
    return numbers[-1] if numbers else None


def extract_answer(text: str, rules: tuple[str, ...] = EXTRACTION_RULES) -> tuple[str | None, str | None]:
    """``(extracted, rule)`` of the final answer in ``text``, else ``(None, None)``.

    The last explicit statement in the text wins (a model that corrects itself is graded on its correction):
    among the enabled ``boxed``, ``hash`` and ``answer_is`` statements, the one that starts last. A prose
    "the answer is ..." after a box or ``####`` replaces it only when it states a value (it starts with a number,
    a bracket or LaTeX), so "the answer is correct because 5 works" does not. ``last_number`` is the fallback
    when no statement is found, except after ``the answer is \\boxed{}``: an empty box states no answer, and a
    number from the working is not taken for one.
    """
    statements, empty_statement = _statements(text, rules)
    for index in range(len(statements) - 1, -1, -1):
        _, answer, rule = statements[index]
        replaces_a_marker = any(r != "answer_is" for _, _, r in statements[:index])
        if rule != "answer_is" or not replaces_a_marker or _STATES_A_VALUE_RE.match(answer):
            return answer, rule
    if "last_number" in rules and not empty_statement:
        found = _last_number(text)
        if found:
            return found, "last_number"
    return None, None


# ----------------------------------------------------------------------------------------------------------------
# Normalisation and equivalence

_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:(?:,|\{,\}|\\,|\\ |\s)\d{3})+(?:\.\d+)?$")
_UNIT_WORD = r"(?:[A-Za-z]{3,}|km|cm|mm|kg|mg|lbs?|oz|ft|mi|hrs?|mph|ml|m|g|s|h|l)(?:/[A-Za-z]+)?(?:\^?[23]|[²³])?"
_SCALE_WORD = r"(?:hundred|thousand|million|billion)\b"  # "1 million" is not 1 with a unit
_NUMBER_THEN_WORDS_RE = re.compile(  # "18 dollars", "5 km/h", "5e4 dollars"
    rf"^(-?(?:\d{{1,3}}(?: \d{{3}})+(?:\.\d+)?|[\d.,/]*\d(?:[eE][+-]?\d+)?))\s*"  # "12 500 dollars" too
    rf"(?:(?!{_SCALE_WORD}){_UNIT_WORD}\.?\s*){{1,3}}$",
    re.IGNORECASE,
)
_PAREN_WORDS_RE = re.compile(r"^(-?[\d.,]*\d)\s*\([A-Za-z\s]+\)$")  # "6 (six)"


def normalize_answer(answer: str) -> str:
    """Light, safe normalisation before comparison: spaces, ``$``, thousands separators, trailing period, ``\\%``,
    unit words after a number, scientific notation (``1.2e3`` -> ``1200``)."""
    s = str(answer).strip()
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").replace("\u2212", "-").strip()
    s = re.sub(r"\\(?:d|t)frac", r"\\frac", s)
    s = re.sub(r"\\(?:left|right)\b", "", s)
    s = re.sub(r"\\(?:textbf|mathbf)\{([^{}]*)\}", r"\1", s)
    if re.fullmatch(r"\(\s*-?[\d.]+\s*\)", s):  # "(073)": a parenthesised number, e.g. an AIME choice
        s = s[1:-1].strip()
    s = s.rstrip(".").strip()
    s = re.sub(r"\\?%$", "", s).strip()
    s = re.sub(r"\s*percent$", "", s).strip()
    for pattern in (_NUMBER_THEN_WORDS_RE, _PAREN_WORDS_RE):
        match = pattern.match(s)
        if match:
            s = match.group(1)
    if _THOUSANDS_RE.match(s):
        s = re.sub(r"\{,\}|\\,|\\ |[,\s]", "", s)
    s = scientific_to_decimal(s) or s
    if re.fullmatch(r"-?\d+\.0+", s):
        s = s.split(".")[0]
    return s


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple:
    from math_verify import parse

    # Wrapped in \boxed{} so that LaTeX and plain expressions alike are taken whole, not searched for.
    return tuple(parse("\\boxed{" + text + "}", parsing_timeout=None))


def _equivalent(pred: str, gold: str, float_rounding: int) -> tuple[bool, str]:
    if pred == gold:
        return True, "exact"
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False, "math_verify"
    ok = verify(list(gold_parsed), list(pred_parsed), float_rounding=float_rounding, timeout_seconds=None)
    return bool(ok), "math_verify"


def _any_equivalent(extracted: str, gold: str, float_rounding: int) -> tuple[bool, str]:
    """Whether any reading of ``extracted`` (`softthink.eval.answer_readings`) equals the normalised ``gold``."""
    method = "exact"
    for reading in readings(extracted, normalize_answer(extracted)):
        correct, method = _equivalent(reading, gold, float_rounding)
        if correct:
            return True, method
    return False, method


class GradingTimeout(BaseException):
    """Raised by the alarm inside one grading call. A BaseException so math-verify's ``except Exception`` lets it
    through."""


_thread_warning_shown = False


def _with_timeout(seconds: float, fn, *args):
    """Run ``fn(*args)`` under a SIGALRM wall-clock bound (main thread only; elsewhere unbounded, with a warning)."""
    global _thread_warning_shown
    if seconds <= 0:
        return fn(*args)
    if threading.current_thread() is not threading.main_thread():
        if not _thread_warning_shown:
            warnings.warn(
                "softthink grading runs outside the main thread: the per-item timeout (SIGALRM) is off. "
                "Grade in the main thread to keep it.",
                RuntimeWarning,
                stacklevel=3,
            )
            _thread_warning_shown = True
        return fn(*args)

    def _raise(signum, frame):
        raise GradingTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _quiet_math_verify() -> None:
    # math-verify warns once that its own timeout is off: we bound the whole item ourselves (see _with_timeout).
    import math_verify.grader
    import math_verify.parser

    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True


def is_equivalent(pred: str, gold: str, config: GraderConfig | None = None) -> bool:
    """True when the answer strings ``pred`` and ``gold`` are mathematically equivalent (no extraction)."""
    config = config or GraderConfig()
    _quiet_math_verify()
    try:
        return _with_timeout(
            config.timeout_seconds, _any_equivalent, pred, normalize_answer(gold), config.float_rounding
        )[0]
    except GradingTimeout:
        return False


def grade(
    completion_text: str,
    gold_answer: Any,
    config: GraderConfig | dict | None = None,
    choices: Sequence[str] | None = None,
) -> GradeResult:
    """Grade one completion against a gold answer: extract (recording the rule), then compare.

    ``gold_answer`` is the benchmark's normalised answer string (numbers are accepted too). A comparison that
    exceeds ``config.timeout_seconds`` counts as incorrect with ``timed_out=True``; any other failure inside
    math-verify counts as incorrect with ``error`` set. Nothing here raises on odd model output.
    ``choices`` (the options' texts, multiple choice only) bound the letters and allow option-text answers.
    """
    if isinstance(config, dict) or config is None:
        config = GraderConfig.from_dict(config)
    if config.answer_format != "math":
        return _grade_non_math(completion_text or "", str(gold_answer), config.answer_format, choices)
    gold = normalize_answer(str(gold_answer))
    extracted, rule = extract_answer(completion_text or "", config.rules)
    if extracted is None:
        return GradeResult(correct=False, extracted=None, rule=None, gold=gold)
    _quiet_math_verify()
    try:
        correct, method = _with_timeout(config.timeout_seconds, _any_equivalent, extracted, gold, config.float_rounding)
    except GradingTimeout:
        return GradeResult(False, extracted, rule, gold, method="math_verify", timed_out=True)
    except Exception as err:  # math-verify/sympy internals on pathological strings
        return GradeResult(False, extracted, rule, gold, method="math_verify", error=f"{type(err).__name__}: {err}")
    return GradeResult(correct=correct, extracted=extracted, rule=rule, gold=gold, method=method)


def _grade_non_math(text: str, gold: str, answer_format: str, choices: Sequence[str] | None) -> GradeResult:
    from softthink.eval import answer_formats as formats

    if answer_format == "multiple_choice":
        gold = formats.normalise_choice_gold(gold)
        letter, rule = formats.extract_choice(text, choices)
        return GradeResult(
            correct=letter == gold, extracted=letter, rule=rule, gold=gold, method="choice" if letter else None
        )
    answer, rule = formats.extract_short_answer(text)
    return GradeResult(
        correct=answer is not None and formats.exact_match(answer, gold),
        extracted=answer,
        rule=rule,
        gold=gold,
        method="exact_match" if answer is not None else None,
    )
