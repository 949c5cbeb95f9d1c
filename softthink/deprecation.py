"""Deprecated public names: a module-level ``__getattr__`` that maps an old name to its new one with a warning."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any


def renamed_attributes(module: str, renames: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each old name of ``renames`` (old -> new) as the module's new object.

    Use as ``__getattr__ = renamed_attributes(__name__, {"OldName": "NewName"})``. Reading an old name emits a
    `FutureWarning` that names the new one; any other missing name raises `AttributeError` as usual.
    """

    def __getattr__(name: str) -> Any:
        if name not in renames:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new = renames[name]
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed; use {module}.{new} (same object).",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(sys.modules[module], new)

    return __getattr__
