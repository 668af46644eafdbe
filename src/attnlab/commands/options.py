"""The recipe's and a task's options as command-line flags, generated from their dataclasses, for one task at a time.

The command line is read twice: first for what picks the task (``--task``, a ``--config`` file's ``task``, or the
``--checkpoint`` run's), then with that task's own flags, so two tasks may give one name other types, choices,
defaults and help. Every flag defaults to "not given" (argparse.SUPPRESS): the task's defaults, or a config
file's values, apply. A flag that only other tasks take is refused naming them.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.config import RECIPE_FIELDS, Recipe, TrainConfig
from ..engine.run_folder import RUNS
from ..tasks import DEFAULT_TASK, TASKS, Task, get_task, list_tasks
from ..tasks.base import flag_of
from .config_file import base_type, check_values, field_choices, read_config_file

__all__ = [
    "Varied",
    "add_config_arguments",
    "add_override_arguments",
    "add_option_flags",
    "add_recipe_arguments",
    "config_from_args",
    "foreign_flags",
    "overrides_from_args",
    "parse_value",
    "peek",
]

RECIPE_HELP = {
    "epochs": "training epochs (default: from --samples-seen and the training split's size)",
    "batch_size": "global batch, over all processes (default: --base-batch, smaller for small data)",
    "lr": "peak learning rate (default: --base-lr scaled to the batch)",
    "samples_seen": "training samples seen in a run without --epochs",
    "max_epochs": "the most epochs --samples-seen may give (tiny data sets)",
    "base_batch": "the batch when an epoch has at least --min-steps steps",
    "base_lr": "the peak learning rate at --base-batch",
    "min_steps": "the fewest steps an epoch should have (the batch shrinks below that)",
    "val_fraction": "of each class carved from the training split for validation (data without its own)",
    "early_stop": "stop after this many epochs without a better validation metric (0: never)",
    "ema": "decay of a moving average of the weights, which validation, the best checkpoint and test use (0: none)",
    "precision": "bf16 autocast, fp32, or auto (bf16 on CUDA, and on CPUs with bf16 for the tasks it speeds up)",
    "optimizer": "SGD (Nesterov momentum 0.9) or AdamW",
    "schedule": "learning-rate schedule",
    "weight_decay": "weight decay (not on biases and norm scales)",
    "seed": "seed of everything random",
    "freeze_bn": "batch-norm statistics frozen (eval mode)",
    "train_limit": "train on the first N training samples only (quick runs)",
}


class Varied(tuple):
    """Several values of one flag (``compare --head capsule,mean``): the field is varied, not set."""


def parse_value(hint: Any, text: str, flag: str, choices: Sequence[str] | None = None) -> Any:
    """A command-line string as a field's type ("none" is None where the field allows it)."""
    kind, optional = base_type(hint)
    if optional and text.lower() == "none":
        return None
    if kind is bool:
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{flag}: expected true or false, got {text!r}")
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag}: expected {kind.__name__}, got {text!r}") from None
    if choices and value not in choices:
        raise ValueError(f"{flag}: expected one of {', '.join(choices)}, got {text!r}")
    return value


def _converter(hint: Any, flag: str, choices, lists: bool) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            if lists and "," in text:
                return Varied(parse_value(hint, t.strip(), flag, choices) for t in text.split(","))
            return parse_value(hint, text, flag, choices)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None

    convert.__name__ = base_type(hint)[0].__name__  # argparse names the type in its error
    return convert


def _add(group, flag: str, hint: Any, help: str, choices, *, lists: bool) -> None:
    kind, _ = base_type(hint)
    if kind is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help)
        return
    # choices are checked by the converter, so that a comma list (compare) can name several
    metavar = "{" + ",".join(choices) + "}" if choices else None
    if lists:
        help += "; a comma list varies it"
    convert = _converter(hint, flag, choices, lists)
    group.add_argument(flag, type=convert, default=argparse.SUPPRESS, help=help, metavar=metavar)


def _with_default(help: str, value: Any) -> str:
    """The help with the default appended, unless the help already says what the default is."""
    return help if "default" in help else f"{help} (default {'none' if value is None else value})"


def add_recipe_arguments(p: argparse.ArgumentParser, task: type[Task], *, lists: bool = False) -> None:
    """The engine's recipe, with ``task``'s defaults in the help."""
    group = p.add_argument_group(f"recipe (the {task.name} task's defaults)")
    hints = typing.get_type_hints(Recipe)
    for name in RECIPE_FIELDS:
        default = task.recipe.get(name, getattr(Recipe(), name))
        help = _with_default(RECIPE_HELP[name], default)
        _add(group, "--" + name.replace("_", "-"), hints[name], help, field_choices(task, name), lists=lists)


def add_option_flags(
    p: argparse.ArgumentParser,
    task: type[Task],
    *,
    lists: bool = False,
    title: str | None = None,
    defaults: bool = True,
) -> None:
    """``task``'s own options, one flag each, with its help, choices and (``defaults``) its defaults."""
    group = p.add_argument_group(title or f"{task.name} options")
    hints = typing.get_type_hints(task.Options)
    for f in dataclasses.fields(task.Options):
        help = f.metadata.get("help", "")
        help = _with_default(help, f.default) if defaults else help
        _add(group, flag_of(f), hints[f.name], help, f.metadata.get("choices"), lists=lists)


def peek(argv: Sequence[str]) -> argparse.Namespace:
    """What picks the task, read before the task's flags exist: ``--task``, ``--config``, ``--checkpoint``."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--task", "--config", "--checkpoint"):
        pre.add_argument(flag, default=None)
    return pre.parse_known_args(list(argv))[0]


def chosen_task(argv: Sequence[str]) -> str:
    """The task a train or compare command line trains: ``--task``, else its ``--config`` file's, else the default."""
    seen = peek(argv)
    if seen.task is not None:
        return seen.task
    if seen.config is not None:
        try:
            return str(read_config_file(seen.config).get("task", DEFAULT_TASK))
        except (ValueError, FileNotFoundError):
            return DEFAULT_TASK  # the file's error is raised again, with its name, when the command runs
    return DEFAULT_TASK


def add_config_arguments(p: argparse.ArgumentParser, argv: Sequence[str], *, lists: bool = False) -> None:
    """What decides a run's result: the task, a config file, the recipe, the task's own options (train, compare)."""
    name = chosen_task(argv)
    task = TASKS.get(name) if name in TASKS.names() else get_task(DEFAULT_TASK)
    tasks = ", ".join(f"{n} ({get_task(n).description})" for n in list_tasks())
    p.add_argument(
        "--task",
        default=None,
        help=f"what to learn (default {DEFAULT_TASK}): {tasks}; `--task NAME --help` shows its flags",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="recipe fields and options from a YAML or JSON file (a run's config.json reproduces the run); "
        "flags given here win over the file",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration as YAML and exit")
    add_recipe_arguments(p, task, lists=lists)
    add_option_flags(p, task, lists=lists)


def task_flags(task: type[Task], kind: str) -> set[str]:
    """The flags a task adds: its options' (``kind`` "options") or its predict arguments' ("predict")."""
    parser = argparse.ArgumentParser(add_help=False)
    if kind == "options":
        add_option_flags(parser, task)
    else:
        task.CLI.add_predict_arguments(parser)
    return {s for a in parser._actions for s in a.option_strings}


def foreign_flags(unknown: Sequence[str], kind: str, task: str) -> str | None:
    """The first of ``unknown`` arguments that only other tasks take, as a message naming those tasks."""
    what = "an option" if kind == "options" else "a predict flag"
    for arg in unknown:
        flag = arg.split("=", 1)[0]
        takers = [name for name, cls in TASKS.items() if name != task and flag in task_flags(cls, kind)]
        if takers:
            return f"{flag}: not {what} of task {task!r} (it is of: {', '.join(takers)})"
    return None


def given_values(args: argparse.Namespace, task: type[Task]) -> dict[str, Any]:
    """The recipe fields and the task's options given on the command line."""
    names = [*RECIPE_FIELDS, *(f.name for f in dataclasses.fields(task.Options))]
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def config_values(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(task, values): a ``--config`` file's values under the flags given (flags win), checked by name and type."""
    raw = read_config_file(args.config) if getattr(args, "config", None) else {}
    file_task = raw.pop("task", None)
    task_name = args.task or (str(file_task) if file_task is not None else DEFAULT_TASK)
    values = check_values(raw, get_task(task_name), args.config) if raw else {}
    return task_name, {**values, **given_values(args, get_task(task_name))}


def config_from_args(args: argparse.Namespace, **override) -> TrainConfig:
    task, values = config_values(args)
    return TrainConfig.create(task, **{**values, **override})


def run_task(argv: Sequence[str]) -> type[Task] | None:
    """The task of the ``--checkpoint`` run named in ``argv`` (None when there is none to read yet)."""
    seen = peek(argv)
    if seen.checkpoint is None:
        return None
    try:
        name = RUNS.config(seen.checkpoint).get("task", DEFAULT_TASK)
    except (OSError, ValueError):  # no run there: load_run says so, with the path, when the command runs
        return None
    return TASKS.get(name) if name in TASKS.names() else None


def add_override_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """eval and visualize: the run's task's options as flags and ``--config``, to evaluate on other data."""
    task = run_task(argv)
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="options that replace the run's (e.g. data, data_dir) from a YAML or JSON file; flags win",
    )
    if task is None:
        p.epilog = "With --checkpoint RUN, --help also lists the options of RUN's task (--data, --data-dir, …)."
        return
    p.set_defaults(_task_name=task.name)
    title = f"{task.name} options that replace the run's (the model must take its weights)"
    add_option_flags(p, task, title=title, defaults=False)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given to eval or visualize (a ``--config`` file's under the flags); recipe keys are ignored."""
    name = getattr(args, "_task_name", None)  # the run's task, read when the parser was built
    if name is None:
        return {}  # no run to read: load_run says so, naming the path
    task = get_task(name)
    raw = read_config_file(args.config) if args.config else {}
    file_task = raw.pop("task", task.name)
    if file_task != task.name:
        raise ValueError(f"--config: {args.config} is for task {file_task!r}; the run is of task {task.name!r}")
    from_file = check_values({k: v for k, v in raw.items() if k not in RECIPE_FIELDS}, task, args.config) if raw else {}
    return {**from_file, **given_values(args, task)}  # (eval and visualize have no recipe flags)
