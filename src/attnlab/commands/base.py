"""The command registry: each command adds its arguments to a parser and runs from the parsed namespace."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from .._names import Registry

__all__ = ["COMMANDS", "Command", "register_command"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


COMMANDS: Registry[Command] = Registry("command", "attnlab --help")


def register_command(command: Command) -> Command:
    return COMMANDS.add(command.name, command)
