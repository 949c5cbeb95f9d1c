"""Write softthink in the layout another tool loads.

examples:
  softthink export custom-generate ./softthink-generate
      then: model.generate(**inputs, custom_generate="./softthink-generate", trust_remote_code=True,
                           softthink_tokenizer=tokenizer, mode="soft")
"""

from __future__ import annotations

import argparse

HELP = "write integration files (the transformers custom_generate folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_subparsers(dest="target", required=True)
    folder = targets.add_parser("custom-generate", help="the Hub custom_generate folder layout, in DIR")
    folder.add_argument("directory", metavar="DIR", help="directory to write (created if missing)")
    folder.add_argument("--overwrite", action="store_true", help="replace files of an earlier export")


def run(args: argparse.Namespace) -> int:
    from softthink.integrations.hub_folder import write_custom_generate

    for path in write_custom_generate(args.directory, overwrite=args.overwrite):
        print(path)
    return 0
