"""DIANet: dense-and-implicit attention (Huang, Liang, Liang, Yang; AAAI 2020), as a per-block plug-in."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention

State = tuple[Tensor, Tensor]


def _bottleneck_fc(channels: int, hidden: int, out: int, f: dict) -> nn.Sequential:
    """DIA's reduced transform (the official ``small_cell``): FC C -> C/r, ReLU, FC C/r -> 4C, with biases."""
    return nn.Sequential(nn.Linear(channels, hidden, **f), nn.ReLU(), nn.Linear(hidden, out, **f))


@register_attention(
    "dia",
    category="channel",
    paper="DIANet: Dense-and-Implicit Attention Network",
    venue="AAAI",
    year=2020,
    url="https://arxiv.org/abs/1905.10671",
)
class DenseImplicitAttention(nn.Module):
    """DIA unit: a modified LSTM cell reads the block's channel means and its hidden state weights the channels.

        z = GAP(x)                                           (B, C)
        [i; f; g; o] = W_ih(z) + W_hh(h_0)                    W: FC C -> C/r, ReLU, FC C/r -> 4C   (B, 4C)
        c = σ(f) · c_0 + σ(i) · tanh(g)                      cell state                            (B, C)
        h = σ(o) · σ(c)                                      σ(c), not tanh(c): weights in (0, 1)   (B, C)
        out = h · x                                          (B, C, H, W)

    r = 4 (the official code's ``input_size // 4``, the paper's DIANet(r = 4)); C/r is at least 1. The cell is
    the official one (gbup-group/DIANet, models/cifar/dia_resnet.py, ``LSTMCell`` with ``small_cell`` for
    both its input and its hidden transform, one layer; its dropout only feeds a second layer, so it has no
    effect and is left out). Its place is the official one too: on the branch output after the last BN,
    before the addition.

    Sharing: in the paper one DIA unit serves all blocks of a stage and carries (h, c) from block to block.
    A per-block plug-in does neither: each block builds its own unit and starts from the zero state
    (h_0 = c_0 = 0), so c = σ(i) · tanh(g). To share the weights, build one unit per stage and pass that
    instance to every block of the stage (timm: ``attn_layer=lambda channels: unit``), which gives the
    paper's parameter count; to carry the state as well, the stage's loop calls ``out, state = unit.step(x,
    state)`` block after block, starting from ``state=None``. The weights h pass through ``gate`` (an
    identity) as (B, C, 1, 1). Parameters: 2(C·C/r + C/r + 4C·C/r + 4C).
    """

    def __init__(self, channels: int, *, reduction: float = 4, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        hidden = reduced(channels, reduction)
        self.w_ih = _bottleneck_fc(channels, hidden, 4 * channels, f)
        self.w_hh = _bottleneck_fc(channels, hidden, 4 * channels, f)
        self.gate = nn.Identity()

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One block's attention and the cell's new (h, c), each (B, C); ``state=None`` is the zero state."""
        z = x.mean(dim=(2, 3))  # (B, C)
        h0, c0 = (torch.zeros_like(z), torch.zeros_like(z)) if state is None else state
        i, f, g, o = (self.w_ih(z) + self.w_hh(h0)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.sigmoid(c)
        return x * self.gate(h.view(*h.shape, 1, 1)), (h, c)

    def forward(self, x: Tensor) -> Tensor:
        return self.step(x)[0]
