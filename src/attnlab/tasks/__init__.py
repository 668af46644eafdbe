"""Tasks: what to learn (data, model, loss, metrics), one file each, registered by name; the engine trains any."""

from . import classify, segment, text, video  # noqa: F401  (each module registers its task)
from .base import TASKS, Metric, Task, TaskData, get_task, list_tasks, option, options_from_dict, register_task

DEFAULT_TASK = "classify"  # what `attnlab train` trains when no --task is given

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "Metric",
    "Task",
    "TaskData",
    "get_task",
    "list_tasks",
    "option",
    "options_from_dict",
    "register_task",
]
