"""Attention layers: multi-head attention, self-attention over feature maps, the visual-attention zoo.

Importing this package registers every zoo module (one paper per file) with ``registry``.
"""

from . import (  # noqa: F401  (each module registers itself)
    a2,
    bam,
    cbam,
    cc,
    coord,
    danet,
    eca,
    eca_variants,
    ese,
    fca,
    gc,
    gct,
    ge,
    gltr,
    lcbam,
    mhsa,
    non_local,
    non_local_st,
    scse,
    se,
    simam,
    sk,
    splat,
    srm,
    tam,
    triplet,
)
from .multihead import MultiHeadAttention, SelfAttention2d
from .registry import (
    AttentionInfo,
    attention_info,
    create_attention,
    get_attention,
    list_attentions,
    register_attention,
)

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
