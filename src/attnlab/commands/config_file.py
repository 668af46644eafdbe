"""Config files: recipe fields and task options from YAML or JSON (PyYAML reads both), checked by name and type.

A run folder's ``config.json`` is such a file: fed back with ``--config`` it reproduces the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from pathlib import Path
from typing import Any

from ..engine.config import OPTIMIZERS, RECIPE_FIELDS, SCHEDULES, Recipe
from ..engine.precision import PRECISIONS
from ..tasks import Task

__all__ = ["RECIPE_CHOICES", "base_type", "check_values", "field_choices", "field_hints", "read_config_file", "to_yaml"]

# the recipe fields with a fixed set of values
RECIPE_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML or JSON file; a clear error for a missing file, a parse error or another shape."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: no file at {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"--config: {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"--config: {path} holds a {type(data).__name__}; expected a mapping of field: value")
    return data


def base_type(hint: Any) -> tuple[type, bool]:
    """(int | None) -> (int, True): the value type of a field and whether None is allowed."""
    args = typing.get_args(hint)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def field_hints(task: type[Task]) -> dict[str, Any]:
    """Recipe field and task option name -> type hint."""
    return {**typing.get_type_hints(Recipe), **typing.get_type_hints(task.Options)}


def field_choices(task: type[Task], name: str) -> tuple[str, ...] | None:
    """The choices of a recipe field or task option (None: any value of its type)."""
    if name in RECIPE_CHOICES:
        return RECIPE_CHOICES[name]
    return next((f.metadata.get("choices") for f in dataclasses.fields(task.Options) if f.name == name), None)


def _checked(key: str, value: Any, hint: Any, choices, where: str) -> Any:
    """``value`` as the field's type: ints for floats are fine, nothing else is converted."""
    kind, optional = base_type(hint)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{where}: {key}: expected {kind.__name__}, got null")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        shown = f"{value!r} ({type(value).__name__})"
        raise ValueError(f"{where}: {key}: expected {kind.__name__}{' or null' if optional else ''}, got {shown}")
    if choices and value not in choices:
        raise ValueError(f"{where}: {key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def check_values(raw: dict[str, Any], task: type[Task], where: str | Path) -> dict[str, Any]:
    """The file's values for ``task``: unknown keys refused with the closest valid name, types checked."""
    hints = field_hints(task)
    values = {}
    for key, value in raw.items():
        key = str(key).replace("-", "_")
        if key not in hints:
            close = difflib.get_close_matches(key, [*hints, "task"], n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the {task.name} task's fields are {sorted(hints)}"
            raise ValueError(f"{where}: unknown key {key!r}{hint}")
        values[key] = _checked(key, value, hints[key], field_choices(task, key), str(where))
    return values


def to_yaml(config: dict[str, Any]) -> str:
    """A resolved configuration as YAML, in the order given: task, recipe fields, options."""
    import yaml

    order = ["task", *RECIPE_FIELDS]
    ordered = {k: config[k] for k in order if k in config} | {k: v for k, v in config.items() if k not in order}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)
