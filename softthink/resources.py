"""Where softthink's bundled YAML configs live: ``configs/<kind>/`` of the source tree (a checkout or an editable
install), else the copy shipped inside the installed package (``softthink/_configs/<kind>/``: in the source tree a
symlink to ``configs/``, which a wheel build copies as package data)."""

from __future__ import annotations

from pathlib import Path

SOURCE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PACKAGED_CONFIGS = Path(__file__).resolve().parent / "_configs"


def bundled_config_dir(kind: str) -> Path:
    """The directory of bundled configs of ``kind`` (``"decode"`` or ``"rl"``): the source tree's when it exists,
    otherwise the installed package's copy. The returned path may not exist (a broken install); callers list it
    in their error messages."""
    source = SOURCE_CONFIGS / kind
    return source if source.is_dir() else PACKAGED_CONFIGS / kind
