"""Optional dependencies: features that need an extra say which one to install, instead of a bare ImportError."""

from __future__ import annotations

import importlib
from types import ModuleType

from softthink.errors import SoftthinkError


class SoftthinkMissingExtraError(SoftthinkError, ImportError):
    """A feature needs a package from one of softthink's extras that is not installed."""

    def __init__(self, message: str, *, module: str, extra: str):
        super().__init__(message)
        self.module = module
        self.extra = extra


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise `SoftthinkMissingExtraError` naming ``feature`` and the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0]:
            raise  # the package is there but one of its own imports failed: keep the real error
        raise SoftthinkMissingExtraError(
            f"{feature} needs the '{module}' package, which is not installed. Install softthink's '{extra}' extra: "
            f"pip install 'softthink[{extra}]' (from a checkout: pip install -e '.[{extra}]').",
            module=module,
            extra=extra,
        ) from err
