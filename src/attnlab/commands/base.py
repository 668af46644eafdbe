"""The command registry: each command adds its arguments to a parser and runs from the parsed namespace.

``add_arguments(parser, argv)`` gets the command's own arguments (``argv``, after the command's name; empty when
another command runs): a command whose flags depend on the task reads the task from them first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._names import Registry

__all__ = ["COMMANDS", "Command", "register_command"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser, Sequence[str]], None]
    run: Callable[[argparse.Namespace], int | None]
    task_flags: str = ""  # "options" or "predict": takes a task's own flags; another task's is refused naming it


COMMANDS: Registry[Command] = Registry("command", "attnlab --help")


def register_command(command: Command) -> Command:
    return COMMANDS.add(command.name, command)
