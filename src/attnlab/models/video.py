"""Video classification: a 2-D frame backbone (any attnlab ResNet, any zoo module) and a temporal head.

    clip (B, T, C, H, W) -> frames (B·T, C, H, W) -> ResNet features, pooled over space (B·T, D)
                         -> (B, T, D) [+ motion (B, T, 2·g²)] -> Linear + GELU to ``dim``
                         (+ a learned temporal position embedding)
                         -> head over time -> logits (B, K)

Heads (``TEMPORAL_HEADS``):

- ``mean``: the mean over frames, then a linear layer: the baseline. Order-blind: a clip played backwards
  scores the same.
- ``attention``: soft attention pooling, a score per frame w₂ᵀ tanh(W₁ h_t), softmax over time, weighted sum
  (as attention-based video models; Bahdanau-style additive scoring).
- ``transformer``: pre-norm encoder layers on ``attnlab.MultiHeadAttention`` over the T frames, then attention
  pooling.
- ``lstm_attention``: a bidirectional LSTM over the frames, then attention pooling over its outputs.
- ``clusters``: Attention Clusters (Long, Gan, de Melo, Wu, Liu, Wen; CVPR 2018): N independent attention
  units a_k = softmax(w_kᵀ X + b_k) (Eq. 2, one linear score per unit), v_k = X a_k, the shifting operation
  v_k ← (α_k v_k + β_k) / (√N ‖α_k v_k + β_k‖₂) (Eq. 4, α, β learned scalars), the N outputs concatenated.

Soft attention pooling and Attention Clusters are order-free in their papers: they pool a set of frame
features. With ``positions=True`` (the default) the learned temporal position embedding the transformer uses is
added before every head but ``mean`` and ``lstm_attention``, so that pooling can tell early frames from late
ones (a direction needs it); ``positions=False`` gives the papers' order-free heads. The frame weights of
every head (B, T), (B, N, T) for clusters, pass through a submodule named ``gate``.

``motion="flow"`` adds each frame's motion to its appearance: its optical flow to the next frame (pyramidal
Lucas–Kanade, ``flow.ClipFlow``), averaged over a g×g grid, concatenated to the pooled backbone features. A 2-D
backbone pooled over space sees what is in a frame, not which way it moves; from scratch on a few dozen clips it
memorizes the pictures instead (docs/video.md, "Your videos").

The backbone's ``fc`` is dropped (``nn.Identity``): its keys are the image task's classes. With
``freeze_backbone`` its parameters do not train, its batch norms keep their statistics (eval mode) and its
forward pass runs without autograd. ``frozen_stages=n`` does that to the stem and the first n stages only
(mmdetection's ``ResNet(frozen_stages=n)``: -1 none, 0 the stem, 1 the stem and layer1, …; a stage's
``stage``-placed module with it): their backward pass, the costliest part of a step on small frames, is not run.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.encoder import EncoderLayer
from ..layers.registry import attention_info
from .flow import ClipFlow
from .registry import create_model, register_model

__all__ = [
    "MOTIONS",
    "VideoClassifier",
    "AttentionPool",
    "TemporalMeanHead",
    "TEMPORAL_HEADS",
    "head_parameters",
    "video_resnet",
]

MOTIONS = ("none", "flow")  # what a frame's features carry besides its appearance


class AttentionPool(nn.Module):
    """h (B, T, D) -> (B, D): softmax over time of w₂ᵀ tanh(W₁ h_t); the weights (B, T) pass through ``gate``."""

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(1, dim // 2)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.gate = nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        weights = self.gate(self.score(h).squeeze(-1).softmax(dim=-1))  # (B, T)
        return (weights.unsqueeze(-1) * h).sum(1)


class TemporalMeanHead(nn.Module):
    """The mean over frames; the uniform weights 1/T pass through ``gate`` too (for the pictures)."""

    positional = False

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Identity()
        self.out_dim = dim

    def forward(self, h: Tensor) -> Tensor:
        weights = self.gate(h.new_full(h.shape[:2], 1 / h.shape[1]))
        return (weights.unsqueeze(-1) * h).sum(1)


class AttentionHead(nn.Module):
    positional = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pool = AttentionPool(dim)
        self.out_dim = dim

    def forward(self, h: Tensor) -> Tensor:
        return self.pool(h)


class TransformerHead(nn.Module):
    positional = True

    def __init__(self, dim: int, *, heads: int = 4, depth: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, 2 * dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.pool = AttentionPool(dim)
        self.out_dim = dim

    def forward(self, h: Tensor) -> Tensor:
        for layer in self.layers:
            h, _ = layer(h, None)
        return self.pool(self.norm(h))


class LSTMAttentionHead(nn.Module):
    positional = False  # the LSTM reads the frames in order

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * (dim // 2))
        self.out_dim = 2 * (dim // 2)

    def forward(self, h: Tensor) -> Tensor:
        return self.pool(self.lstm(h)[0])


class ClustersHead(nn.Module):
    positional = True

    def __init__(self, dim: int, *, clusters: int = 8) -> None:
        super().__init__()
        self.n = clusters
        self.score = nn.Linear(dim, clusters)  # one linear attention unit per cluster (Eq. 2)
        # α, β drawn as the official code (longxiang92/Flash-MNIST, ``ShiftingAttention``: Glorot normal of an
        # N-vector, std N^(-1/4)); the paper gives no initialization
        self.alpha = nn.Parameter(torch.randn(clusters) * clusters**-0.25)
        self.beta = nn.Parameter(torch.randn(clusters) * clusters**-0.25)
        self.gate = nn.Identity()
        self.out_dim = clusters * dim

    def forward(self, h: Tensor) -> Tensor:
        weights = self.gate(self.score(h).transpose(1, 2).softmax(dim=-1))  # (B, N, T)
        v = weights @ h  # (B, N, D)
        v = self.alpha[:, None] * v + self.beta[:, None]  # the shifting operation (Eq. 4)
        v = F.normalize(v, dim=-1) / math.sqrt(self.n)
        return v.flatten(1)


TEMPORAL_HEADS: dict[str, type[nn.Module]] = {
    "mean": TemporalMeanHead,
    "attention": AttentionHead,
    "transformer": TransformerHead,
    "lstm_attention": LSTMAttentionHead,
    "clusters": ClustersHead,
}


def head_parameters(head: str) -> tuple[str, ...]:
    """The keywords head ``head`` takes besides its width (what ``head_kwargs`` may hold)."""
    return tuple(p for p in inspect.signature(TEMPORAL_HEADS[head]).parameters if p != "dim")


class VideoClassifier(nn.Module):
    """A frame backbone (an attnlab ResNet) and a temporal head; see the module docstring.

    Args:
        backbone: an attnlab ``ResNet`` (its ``fc`` is replaced by an identity).
        num_classes: K.
        num_frames: T, the clip length the position embedding (and temporal modules in the backbone) expect.
        head: a name in ``TEMPORAL_HEADS``.
        dim: width of the head.
        positions: add a learned temporal position embedding before the order-free heads.
        freeze_backbone: keep the backbone fixed (transfer learning with a frozen feature extractor).
        frozen_stages: keep the backbone's stem and first n stages fixed (-1: none; 4: all of it).
        motion: ``"flow"``: each frame's pooled optical flow to the next beside its features; ``"none"``.
        flow_grid: g, the cells a side the flow is averaged over.
        head_kwargs: the head's own keywords (``head_parameters(head)``): ``heads``, ``depth``, ``dropout`` of the
            transformer, ``clusters`` of the clusters head; another keyword raises ``TypeError``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        num_frames: int,
        *,
        head: str = "attention",
        dim: int = 256,
        dropout: float = 0.1,
        positions: bool = True,
        freeze_backbone: bool = False,
        frozen_stages: int = -1,
        motion: str = "none",
        flow_grid: int = 4,
        head_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        if head not in TEMPORAL_HEADS:
            raise ValueError(f"head: expected one of {sorted(TEMPORAL_HEADS)}, got {head!r}")
        if motion not in MOTIONS:
            raise ValueError(f"motion: expected one of {list(MOTIONS)}, got {motion!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames: expected a positive int, got {num_frames}")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages: expected -1 (none) to 4 (the whole ResNet), got {frozen_stages}")
        self.num_frames = num_frames
        self.backbone = backbone
        self.motion = ClipFlow(flow_grid) if motion == "flow" else None
        features = backbone.fc.in_features + (self.motion.out_dim if self.motion is not None else 0)
        backbone.fc = nn.Identity()
        self.proj = nn.Sequential(nn.Linear(features, dim), nn.GELU())
        self.head = TEMPORAL_HEADS[head](dim, **(head_kwargs or {}))
        self.position = None
        if positions and self.head.positional:
            self.position = nn.Parameter(torch.zeros(num_frames, dim))
            nn.init.trunc_normal_(self.position, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.head.out_dim, num_classes)
        self.freeze_backbone = freeze_backbone
        self.frozen = [backbone] if freeze_backbone else stem_and_stages(backbone, frozen_stages)
        for part in self.frozen:
            part.requires_grad_(False)

    def train(self, mode: bool = True) -> VideoClassifier:
        super().train(mode)
        for part in self.frozen:
            part.eval()  # frozen: batch-norm statistics stay those of the source
        return self

    def frame_features(self, clips: Tensor) -> Tensor:
        """(B, T, C, H, W) -> (B, T, dim): each frame's pooled backbone features, projected."""
        B, T = clips.shape[:2]
        if self.num_frames != T:
            raise ValueError(
                f"clips: expected {self.num_frames} frames (B, T, C, H, W), got shape {tuple(clips.shape)}"
            )
        frames = clips.flatten(0, 1).contiguous(memory_format=torch.channels_last)  # faster convolutions
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            f = self.backbone.forward_features(frames).mean((-2, -1)).view(B, T, -1)  # (B, T, D)
        if self.motion is not None:
            f = torch.cat([f, self.motion(clips).to(f.dtype)], dim=-1)  # (B, T, D + 2·g²)
        h = self.proj(f)
        return h if self.position is None else h + self.position

    def describe(self) -> tuple[str, str]:
        """(temporal head, frame backbone) for ``attnlab list models``."""
        return type(self.head).__name__, f"frames: {type(self.backbone).__name__}"

    def forward(self, clips: Tensor) -> Tensor:
        """(B, T, C, H, W) -> logits (B, num_classes)."""
        return self.fc(self.drop(self.head(self.frame_features(clips))))

    @property
    def frame_gate(self) -> nn.Module:
        """The ``gate`` the head's frame weights pass through."""
        return self.head.gate if hasattr(self.head, "gate") else self.head.pool.gate

    def forward_with_frame_weights(self, clips: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, K), frame weights (B, T)); the clusters head's N units are averaged."""
        captured: list[Tensor] = []
        handle = self.frame_gate.register_forward_hook(lambda m, args, out: captured.append(out.detach()))
        try:
            logits = self(clips)
        finally:
            handle.remove()
        weights = captured[0]
        return logits, weights.mean(1) if weights.dim() == 3 else weights


def stem_and_stages(backbone: nn.Module, n: int) -> list[nn.Module]:
    """The modules of a ResNet's stem and first ``n`` stages (a ``stage``-placed module after a stage with it); none
    for n = -1."""
    if n < 0:
        return []
    parts = [backbone.conv1, backbone.bn1]
    after = backbone.attn if "attn" in backbone._modules else {}  # stage placement: ModuleDict layerN -> module
    for s in range(1, n + 1):
        parts.append(getattr(backbone, f"layer{s}"))
        if f"layer{s}" in after:
            parts.append(after[f"layer{s}"])
    return parts


@register_model("video_resnet")
def video_resnet(
    *,
    num_classes: int = 20,
    num_frames: int = 8,
    backbone: str = "resnet18",
    attention: str | None = None,
    stem: str = "imagenet",
    in_chans: int = 3,
    **kwargs,
) -> VideoClassifier:
    """A ``VideoClassifier`` on an attnlab ResNet (``backbone``) with ``attention`` at its paper's place; temporal
    zoo modules get ``num_frames``. Other keyword arguments go to ``VideoClassifier``."""
    per_frame = attention is not None and attention_info(attention).per_frame
    net = create_model(
        backbone,
        num_classes=1,
        attention=attention,
        attention_kwargs={"num_frames": num_frames} if per_frame else None,
        stem=stem,
        in_chans=in_chans,
    )
    return VideoClassifier(net, num_classes, num_frames, **kwargs)
