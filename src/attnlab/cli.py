"""The ``attnlab`` command line: one subcommand per entry of the command registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import COMMANDS
from .commands.options import foreign_flags

# Errors a user can cause with bad input: printed as one line, no traceback.
# A TypeError from deep inside is a bug, shown with its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; the command named in ``argv`` builds its flags from its own arguments (its task's flags)."""
    argv = list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="attnlab",
        description="Attention mechanisms: the formula, the visual-attention zoo, ResNets with attention.",
    )
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for _, cmd in COMMANDS.items():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        own = argv[argv.index(cmd.name) + 1 :] if cmd.name == chosen else []
        cmd.add_arguments(p, own)
        p.set_defaults(_run=cmd.run, _task_flags=cmd.task_flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a flag of another task is named with the tasks that take it
        found = foreign_flags(unknown, args._task_flags, getattr(args, "_task_name", "")) if args._task_flags else None
        print(
            f"attnlab {args.command}: error: {found or 'unrecognized arguments: ' + ' '.join(unknown)}", file=sys.stderr
        )
        return 2
    try:
        return int(args._run(args) or 0)
    except USER_ERRORS as e:
        print(f"attnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attnlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
