"""Argument helpers shared by the subcommands: `--config preset.yaml` plus repeatable `--set key=value`."""

from __future__ import annotations

import argparse
from typing import Any

from softthink.config_io import dataclass_fields, parse_set


def add_config_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", help=f"{what} preset name or YAML file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option (repeatable); VALUE is parsed as YAML and typed like the option: "
        "0.9, true, null, [a, b]",
    )


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["top_p=0.9", "stop_strings=[a, b]"]`` -> ``{"top_p": 0.9, "stop_strings": ["a", "b"]}``, typed like the
    `DecodeConfig` fields (`softthink.config_io.parse_set`); unknown options raise with suggestions."""
    from softthink.decoding.config import DecodeConfig

    return parse_set(pairs, dataclass_fields(DecodeConfig), what="decode option")
