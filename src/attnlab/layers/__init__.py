"""Attention layers: multi-head attention, self-attention over feature maps, the visual-attention zoo.

Importing this package imports every file in it, so each zoo module (one paper per file) registers itself with
``registry``.
"""

import importlib
import pkgutil

from .multihead import MultiHeadAttention, SelfAttention2d
from .registry import (
    AttentionInfo,
    attention_info,
    create_attention,
    get_attention,
    list_attentions,
    register_attention,
)

# one file per paper, each registering itself on import: a new module is a new file, no list to edit
for _file in pkgutil.iter_modules(__path__):
    if not _file.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_file.name}")

__all__ = [
    "MultiHeadAttention",
    "SelfAttention2d",
    "AttentionInfo",
    "attention_info",
    "create_attention",
    "get_attention",
    "list_attentions",
    "register_attention",
]
