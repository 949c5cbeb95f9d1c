"""Argument helpers shared by the subcommands: `--config preset.yaml` plus repeatable `--set key=value`."""
from __future__ import annotations

import argparse
from typing import Any

import yaml

from softthink.errors import SoftthinkConfigError


def add_config_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", help=f"{what} preset name or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one option (repeatable); VALUE is parsed as YAML: 0.9, true, null, [a, b]")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["top_p=0.9", "stop_strings=[a, b]"]`` -> ``{"top_p": 0.9, "stop_strings": ["a", "b"]}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise SoftthinkConfigError(f"--set expects KEY=VALUE, got {pair!r}.", param="--set", value=pair)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out
