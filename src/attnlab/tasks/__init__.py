"""Tasks: what to learn (data, model, loss, metrics), one folder each, registered by name; the engine trains any.

A new task is a folder here holding what only it uses (its data sets, metrics, predict, pictures) and one line
below. Modules at this level (``base``, ``metrics``, ``top_classes``) are what several tasks share.
"""

from . import classify, segment, text, video  # noqa: F401  (each task folder registers its task)
from .base import (
    TASKS,
    DataSets,
    Metric,
    Prerequisite,
    RunSource,
    Task,
    TaskCLI,
    TaskData,
    check_at_least,
    get_task,
    list_tasks,
    none_if_blank,
    option,
    options_from_dict,
    register_task,
)

DEFAULT_TASK = "classify"  # what `attnlab train` trains when no --task is given

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "DataSets",
    "Metric",
    "Prerequisite",
    "RunSource",
    "Task",
    "TaskCLI",
    "TaskData",
    "check_at_least",
    "get_task",
    "list_tasks",
    "none_if_blank",
    "option",
    "options_from_dict",
    "register_task",
]
