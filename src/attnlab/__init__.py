"""attnlab: attention mechanisms in PyTorch, from the formula to ResNets with attention.

Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V
"""

from . import models
from .functional import scaled_dot_product_attention
from .layers import (
    AttentionInfo,
    MultiHeadAttention,
    SelfAttention2d,
    attention_info,
    create_attention,
    get_attention,
    list_attentions,
    register_attention,
)
from .models import create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "SelfAttention2d",
    "AttentionInfo",
    "attention_info",
    "create_attention",
    "get_attention",
    "list_attentions",
    "register_attention",
    "create_model",
    "list_models",
    "models",
    "__version__",
]
