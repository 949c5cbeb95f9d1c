"""The one exception family of softthink: every message says what was wrong and what to do."""

from __future__ import annotations

from collections.abc import Collection
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


class SoftthinkStorageError(SoftthinkError, OSError):
    """An output file cannot be written (disk full, read-only or not permitted); ``path`` names it."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class SoftthinkLockedError(SoftthinkError):
    """An output folder is in use by another run (its lock is held)."""


def unknown_name_message(
    kind: str, name: str | list[str], available: Collection[str], *, listing: str | None = None
) -> str:
    """The one "did you mean" message of softthink, for registry lookups and unknown config keys.

    One name: ``unknown KIND 'x'. Did you mean 'y'? Available: a, b, c.``; a list of names:
    ``unknown KIND(s) 'x' (did you mean 'y'?), 'z'. Available: ...`` (the best match of each). ``listing``
    replaces the sorted list of available names (for lists too long to help, such as the ~250 trl fields).
    """
    import difflib

    listing = listing or f"Available: {', '.join(sorted(available))}."

    def close(one: str) -> list[str]:
        return difflib.get_close_matches(one, list(available), n=3)

    if isinstance(name, str):
        hint = f" Did you mean {', '.join(repr(c) for c in close(name))}?" if close(name) else ""
        return f"unknown {kind} {name!r}.{hint} {listing}"
    parts = [f"{n!r} (did you mean {close(n)[0]!r}?)" if close(n) else repr(n) for n in name]
    return f"unknown {kind}(s) {', '.join(parts)}. {listing}"
