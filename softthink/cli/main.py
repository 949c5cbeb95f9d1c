"""Entry point of the `softthink` command: dispatches to one module per subcommand.

Each subcommand module in `softthink.cli` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Validation errors (`SoftthinkError`) exit with status 2 and a message, no traceback;
anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("generate", "demo", "eval", "analyze", "rl", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softthink", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"softthink.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"softthink.cli.{name}":
                continue  # subcommand not part of this build
            raise
        sub = subparsers.add_parser(
            name, help=module.HELP, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from softthink.errors import SoftthinkError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SoftthinkError as err:
        print(f"softthink {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
