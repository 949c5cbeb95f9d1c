"""The numbers a careful reader takes an answer string to mean, beyond what math-verify parses itself.

`readings` turns one extracted answer into the candidate values it is compared with; the answer is correct when
any reading equals the gold answer. Each reading is a rule a human grader applies without thinking:

- scientific notation: ``1.2e3`` is 1200 and ``1e-3`` is 0.001 (never Euler's e times 3);
- a percentage: ``25%`` reads as 25 (the gold of "what percent ...?") and as 0.25 (the gold of "what fraction");
- a compound quantity in two units: ``4 hours and 30 minutes`` reads as 4.5 (hours) and as 270 (minutes), the
  same quantity in the larger or the smaller unit; pairs: hours/minutes, minutes/seconds, dollars/cents,
  feet/inches, pounds/ounces, years/months, weeks/days, meters/centimeters;
- number words: ``eighteen``, ``twenty-five``, ``1 million``, ``2.5 thousand``, ``two and a half``.

Anything else is left to math-verify as it is.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SCIENTIFIC_RE = re.compile(r"^(-?(?:\d+\.?\d*|\.\d+))[eE]([+-]?\d+)$")

_UNIT_PAIRS: tuple[tuple[str, str, int], ...] = (
    (r"hours?|hrs?|h", r"minutes?|mins?", 60),
    (r"minutes?|mins?", r"seconds?|secs?|s", 60),
    (r"dollars?", r"cents?", 100),
    (r"feet|foot|ft", r"inch(?:es)?|in", 12),
    (r"pounds?|lbs?", r"ounces?|oz", 16),
    (r"years?", r"months?", 12),
    (r"weeks?", r"days?", 7),
    (r"meters?|metres?|m", r"centimeters?|centimetres?|cm", 100),
)
_NUMBER = r"(\d+(?:\.\d+)?)"
_COMPOUND_RES = tuple(
    (re.compile(rf"^{_NUMBER}\s*(?:{major})\s*,?\s*(?:and\s+)?{_NUMBER}\s*(?:{minor})$", re.IGNORECASE), factor)
    for major, minor, factor in _UNIT_PAIRS
)

_UNITS_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SMALL = {word: n for n, word in enumerate(_UNITS_WORDS)} | {word: 20 + 10 * i for i, word in enumerate(_TENS_WORDS)}
_NOT_UNITS = {"of", "the", "is", "or", "and", "to", "than", "more", "less", "times"}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


def _decimal_text(value: Decimal) -> str:
    """``Decimal`` as plain positional text without trailing zeros: 1.2E+3 -> '1200', 0.0010 -> '0.001'."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def scientific_to_decimal(text: str) -> str | None:
    """``'1.2e3'`` -> ``'1200'``, ``'1e-3'`` -> ``'0.001'``; None unless the whole string is one such number."""
    match = _SCIENTIFIC_RE.match(text.strip())
    if not match:
        return None
    return _decimal_text(Decimal(match.group(1)) * Decimal(10) ** int(match.group(2)))


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _words_value(words: list[str]) -> Decimal | None:
    """The value of number words (digits allowed before a scale word: "2.5 million"), or None."""
    total, current, seen = Decimal(0), Decimal(0), False
    for word in words:
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _SCALES:
            current = (current if seen else Decimal(1)) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, Decimal(0)
        elif word == "and" and seen:
            continue
        elif not seen and _number(word) is not None:
            current = _number(word)  # type: ignore[assignment]
        else:
            return None
        seen = True
    return total + current if seen else None


def words_to_number(text: str) -> str | None:
    """``'eighteen'`` -> ``'18'``, ``'1 million'`` -> ``'1000000'``, ``'2 and a half hours'`` -> ``'2.5'``; else None.

    Up to two trailing words that are not number words (units: "hours", "dollars") are dropped; any other word in
    between, or a longer tail, gives None ("five or six", "one of the options"). A bare number (``'18'``) is not a
    reading of words and gives None.
    """
    words = text.strip().rstrip(".").replace("$", "").lower().replace("-", " ").split()
    known = [i for i, word in enumerate(words) if word in _SMALL or word in _SCALES or word == "half"]
    trailing = words[known[-1] + 1 :] if known else []
    if not known or len(trailing) > 2 or not all(w.isalpha() and w not in _NOT_UNITS for w in trailing):
        return None  # "one of the options", "two or more" are not numbers with a unit
    words = words[: known[-1] + 1]
    half = words[-3:] == ["and", "a", "half"]
    value = _words_value(words[:-3] if half else words)
    if value is None:
        return None
    return _decimal_text(value + (Decimal("0.5") if half else 0))


def compound_readings(text: str) -> list[str]:
    """``'4 hours and 30 minutes'`` -> ``['4.5', '270']`` (larger unit, smaller unit); [] if not compound."""
    plain = re.sub(r"\\(?:text|mathrm|textrm|mbox)\s*\{([^{}]*)\}", r" \1 ", text)
    plain = " ".join(plain.replace("\\,", " ").replace("~", " ").split()).rstrip(".")
    for regex, factor in _COMPOUND_RES:
        match = regex.match(plain)
        if match:
            major, minor = Decimal(match.group(1)), Decimal(match.group(2))
            return [_decimal_text(major + minor / factor), _decimal_text(major * factor + minor)]
    return []


def percent_reading(raw: str, normalised: str) -> str | None:
    """``0.25`` for an answer ``25%`` / ``25\\%`` / ``25 percent`` (normalised to ``'25'``); None otherwise."""
    if not re.search(r"(?:%|\bpercent)\s*\.?\s*\}?\s*$", raw.strip()):
        return None
    value = _number(normalised)
    return None if value is None else _decimal_text(value / 100)


def readings(raw: str, normalised: str) -> list[str]:
    """The candidate values of an answer: ``normalised`` first, then any reading above that differs from it."""
    found = [normalised]
    extra = [percent_reading(raw, normalised), words_to_number(raw), *compound_readings(raw)]
    for value in extra:
        if value is not None and value not in found:
            found.append(value)
    return found
