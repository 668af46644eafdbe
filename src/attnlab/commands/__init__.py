"""CLI commands, one module each; ``COMMANDS`` is the registry the CLI builds its parser from."""

from . import bench, compare, evaluate, export, formula, listing, predict, train, visualize  # noqa: F401  (each registers its command)
from .base import COMMANDS, Command, register_command

__all__ = ["COMMANDS", "Command", "register_command"]
