"""The recipe's and the tasks' options as command-line flags, generated from their dataclasses.

Every flag defaults to "not given" (argparse.SUPPRESS), so a task's own defaults apply; ``--help`` lists
each task's default. A flag given to a task that has no such option is refused by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

from ..engine.config import OPTIMIZERS, RECIPE_FIELDS, SCHEDULES, Recipe, TrainConfig
from ..tasks import DEFAULT_TASK, TASKS, get_task, list_tasks

__all__ = [
    "add_task_argument",
    "add_recipe_arguments",
    "add_task_options",
    "config_from_args",
    "option_fields",
    "parse_value",
]

RECIPE_HELP = {
    "epochs": ("training epochs", None),
    "batch_size": ("global batch, over all processes", None),
    "lr": ("peak learning rate", None),
    "optimizer": ("SGD (Nesterov momentum 0.9) or AdamW", OPTIMIZERS),
    "schedule": ("learning-rate schedule", SCHEDULES),
    "weight_decay": ("weight decay (not on biases and norm scales)", None),
    "seed": ("seed of everything random", None),
    "freeze_bn": ("batch-norm statistics frozen (eval mode)", None),
    "train_limit": ("train on the first N training samples only (quick runs)", None),
}


def _base_type(hint: Any) -> tuple[type, bool]:
    """(int | None) -> (int, True): the value type of a field and whether None is allowed."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def parse_value(hint: Any, text: str, flag: str) -> Any:
    """A command-line string as a field's type ("none" is None where the field allows it)."""
    kind, optional = _base_type(hint)
    if optional and text.lower() == "none":
        return None
    if kind is bool:
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{flag}: expected true or false, got {text!r}")
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag}: expected {kind.__name__}, got {text!r}") from None


def _converter(hint: Any, flag: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse_value(hint, text, flag)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None

    convert.__name__ = _base_type(hint)[0].__name__  # argparse names the type in its error
    return convert


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def option_fields() -> dict[str, list[tuple[str, dataclasses.Field, Any]]]:
    """Option name -> [(task name, field, type hint)] over every registered task."""
    found: dict[str, list] = {}
    for name, task in TASKS.items():
        hints = typing.get_type_hints(task.Options)
        for f in dataclasses.fields(task.Options):
            found.setdefault(f.name, []).append((name, f, hints[f.name]))
    return found


def _add(group, flag: str, hint: Any, help: str, choices) -> None:
    kind, _ = _base_type(hint)
    if kind is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help)
    else:
        group.add_argument(flag, type=_converter(hint, flag), choices=choices, default=argparse.SUPPRESS, help=help)


def add_task_argument(p: argparse.ArgumentParser) -> None:
    tasks = ", ".join(f"{n} ({get_task(n).description})" for n in list_tasks())
    p.add_argument("--task", choices=list_tasks(), default=DEFAULT_TASK, help=f"what to learn: {tasks}")


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """The engine's recipe; each task's defaults in the help."""
    group = p.add_argument_group("recipe (defaults per task)")
    hints = typing.get_type_hints(Recipe)
    for name in RECIPE_FIELDS:
        help, choices = RECIPE_HELP[name]
        base = getattr(Recipe(), name)
        per_task = ", ".join(f"{t}: {task.recipe.get(name, base)}" for t, task in TASKS.items())
        _add(group, "--" + name.replace("_", "-"), hints[name], f"{help} ({per_task})", choices)


def add_task_options(p: argparse.ArgumentParser) -> None:
    """Every task's options, one flag per name; the help says which tasks take it and their defaults."""
    group = p.add_argument_group("task options (each task takes its own; defaults per task)")
    for entries in option_fields().values():
        _, f, hint = entries[0]
        defaults = ", ".join(f"{t}: {'none' if fld.default is None else fld.default}" for t, fld, _ in entries)
        _add(group, _flag(f), hint, f"{f.metadata.get('help', '')} ({defaults})", f.metadata.get("choices"))


def given_values(args: argparse.Namespace, task: str) -> dict[str, Any]:
    """The recipe fields and options given on the command line; an option the task lacks is refused."""
    t = get_task(task)
    own = {f.name for f in dataclasses.fields(t.Options)}
    values = {}
    for name, entries in option_fields().items():
        if hasattr(args, name):
            if name not in own:
                takers = ", ".join(e[0] for e in entries)
                raise ValueError(f"{_flag(entries[0][1])}: not an option of task {task!r} (it is of: {takers})")
            values[name] = getattr(args, name)
    values.update({k: getattr(args, k) for k in RECIPE_FIELDS if hasattr(args, k)})
    return values


def config_from_args(args: argparse.Namespace, **override) -> TrainConfig:
    return TrainConfig.create(args.task, **{**given_values(args, args.task), **override})
