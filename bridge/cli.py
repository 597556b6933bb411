"""The `xpander-bridge` command line: one subcommand per process the project can run."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# Each subcommand lives in its own module exposing `add_arguments(parser)` and `main(args) -> int`.
# Those modules keep heavy imports inside `main` so that building the parser stays cheap.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("bridge.server_cli", "serve the gRPC bridge"),
    "local-platform": ("bridge.localplatform.cli", "serve the embedded local platform (HTTP emulator)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="xpander-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    args = parser.parse_args(argv)
    exit_code: int = args._module.main(args)
    return exit_code
