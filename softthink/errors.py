"""The one exception family of softthink: every message says what was wrong and what to do."""
from __future__ import annotations

from typing import Any


class SoftthinkError(Exception):
    """Base class of softthink's own errors (bad input, bad config, unusable model or data)."""


class SoftthinkConfigError(SoftthinkError, ValueError):
    """An invalid configuration value. ``param`` names the field, ``value`` is what was given."""

    def __init__(self, message: str, *, param: str | None = None, value: Any = None):
        super().__init__(message)
        self.param = param
        self.value = value


class SoftthinkInputError(SoftthinkError, ValueError):
    """Unusable input: an empty prompt, a prompt longer than the context, a model we cannot drive."""


class SoftthinkDataError(SoftthinkError, ValueError):
    """A missing or malformed data file, or a record without the fields it needs."""


def unknown_name_message(kind: str, name: str, available: list[str] | tuple[str, ...]) -> str:
    """'unknown KIND 'x'; did you mean 'y'? Available: a, b, c' — for every registry lookup."""
    import difflib

    close = difflib.get_close_matches(name, list(available), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Available: {', '.join(sorted(available))}."
