"""A²-Nets: double attention (Chen, Kalantidis, Li, Yan, Feng; NeurIPS 2018)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "a2",
    category="spatial",
    paper="A²-Nets: Double Attention Networks",
    venue="NeurIPS",
    year=2018,
    url="https://arxiv.org/abs/1810.11579",
)
class DoubleAttention(nn.Module):
    """Double attention: gather global descriptors with second-order pooling, then distribute them.

        A = φ(x) (c_m × N),  B = softmax_N(θ(x)) (c_n × N),  V = softmax_{c_n}(ρ(x)) (c_n × N)
        G = A Bᵀ                          gather: c_n global descriptors of c_m features, Eq. 3-4
        Z = G V                           distribute: each position mixes the descriptors it selects, Eq. 5
        out = x + W_z Z                   1×1 conv c_m -> C, added to the input as the paper's block

    φ, θ, ρ: 1×1 convs; c_m = c_n = C/4 by default (the paper leaves them as hyper-parameters). B is
    normalized over positions (each attention map sums to 1) and V over the c_n descriptors at each
    position, as Eq. 4-5 define them. The block is inserted like a non-local block and carries the identity
    shortcut (``residual=False`` returns W_z Z alone). Gates: ``gates.gather`` (B) and ``gates.distribute``
    (V). Parameters: C(c_m + 2c_n) + c_m + 2c_n + c_m·C + C.
    """

    def __init__(
        self,
        channels: int,
        *,
        c_m: int | None = None,
        c_n: int | None = None,
        residual: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.c_m = max(1, channels // 4) if c_m is None else check_channels(c_m, name="c_m")
        self.c_n = max(1, channels // 4) if c_n is None else check_channels(c_n, name="c_n")
        self.residual = residual
        self.convs = nn.Conv2d(channels, self.c_m + 2 * self.c_n, 1, **f)  # φ, θ, ρ in one conv
        self.gates = nn.ModuleDict({"gather": nn.Softmax(dim=-1), "distribute": nn.Softmax(dim=1)})
        self.proj = nn.Conv2d(self.c_m, channels, 1, **f)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        a, b, v = self.convs(x).flatten(2).split([self.c_m, self.c_n, self.c_n], dim=1)  # (B, c, N)
        descriptors = a @ self.gates["gather"](b).transpose(1, 2)  # (B, c_m, c_n)
        z = descriptors @ self.gates["distribute"](v)  # (B, c_m, N)
        out = self.proj(z.view(B, self.c_m, H, W))
        return x + out if self.residual else out
