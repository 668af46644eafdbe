"""OCR: object-contextual representations (Yuan, Chen, Wang; ECCV 2020), as a plug-in with its own region head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention

__all__ = ["ObjectContext"]


def conv_bn_relu(cin: int, cout: int, f: dict) -> list[nn.Module]:
    """1×1 conv without bias, BN, ReLU: every transform of the official object attention block."""
    return [nn.Conv2d(cin, cout, 1, bias=False, **f), nn.BatchNorm2d(cout, **f), nn.ReLU()]


@register_attention(
    "ocr",
    category="spatial",
    paper="Object-Contextual Representations for Semantic Segmentation",
    venue="ECCV",
    year=2020,
    url="https://arxiv.org/abs/1909.11065",
)
class ObjectContext(nn.Module):
    """OCR: soft object regions, their representations, and each pixel's relation to them.

        M = region_head(x)                                K soft object regions (logits)       (B, K, H, W)
        f_k = Σ_i softmax_i(m_ki) x_i                     Eq. 2, spatial gather (over H·W)      (B, C, K)
        w_ik = softmax_k(φ(x_i)ᵀ ψ(f_k) / √C_k)           Eq. 4, pixel-region relation          (B, K, H, W)
        y_i = ρ(Σ_k w_ik δ(f_k))                          Eq. 3, object contextual repr.        (B, C, H, W)
        out = g([y; x])                                   Eq. 5, concat and fuse                (B, C, H, W)

    As the official HRNet-OCR (seg_hrnet_ocr.py): region_head is its ``aux_head`` (1×1 conv C -> C with bias, BN,
    ReLU, 1×1 conv C -> K with bias); φ (``f_pixel``), ψ (``f_object``): two (1×1 conv, BN, ReLU), C -> C_k -> C_k;
    δ (``f_down``): one, C -> C_k; ρ (``f_up``): one, C_k -> C; g (``fuse``): 1×1 conv 2C -> C, BN, ReLU,
    Dropout2d(0.05). K = 19 (its Cityscapes configuration: K = the dataset's classes); C_k = C/2 (its 256 key
    channels on 512 mid channels). The official's conv3x3_ocr (backbone -> 512) is the head's, not the module's:
    here the module takes its input width. The 1/√C_k of the relation is the official code's. No residual (the
    official has none: g sees x).

    What differs from the paper: the paper supervises the regions M with the segmentation ground truth (an
    auxiliary cross-entropy, weight 0.4 in the official configurations). That is a training loss outside the
    module: as a plug-in the regions are learned only through the output, unless a user adds that loss on
    ``region_head``'s output (a forward hook gets it). The gates: ``gates.regions`` (an identity on the spatial
    softmax, (B, K, H, W), each region sums to 1 over the map) and ``gates.objects`` (the softmax over the K
    regions of each pixel, (B, K, H, W)). Parameters: (C² + C + 2C + CK + K) + 2(C·C_k + C_k² + 4C_k)
    + (C·C_k + 2C_k) + (C_k·C + 2C) + (2C² + 2C).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_regions: int = 19,
        key_channels: int | None = None,
        dropout: float = 0.05,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        C = check_channels(channels)
        K = check_channels(num_regions, name="num_regions")
        Ck = max(1, C // 2) if key_channels is None else check_channels(key_channels, name="key_channels")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {dropout!r}")
        f = factory_kwargs(device, dtype)
        self.key_channels = Ck
        self.region_head = nn.Sequential(
            nn.Conv2d(C, C, 1, **f), nn.BatchNorm2d(C, **f), nn.ReLU(), nn.Conv2d(C, K, 1, **f)
        )
        self.f_pixel = nn.Sequential(*conv_bn_relu(C, Ck, f), *conv_bn_relu(Ck, Ck, f))
        self.f_object = nn.Sequential(*conv_bn_relu(C, Ck, f), *conv_bn_relu(Ck, Ck, f))
        self.f_down = nn.Sequential(*conv_bn_relu(C, Ck, f))
        self.f_up = nn.Sequential(*conv_bn_relu(Ck, C, f))
        self.fuse = nn.Sequential(*conv_bn_relu(2 * C, C, f), nn.Dropout2d(dropout))
        self.gates = nn.ModuleDict({"regions": nn.Identity(), "objects": nn.Softmax(dim=1)})

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        logits = self.region_head(x)  # (B, K, H, W)
        regions = self.gates["regions"](torch.softmax(logits.flatten(2), dim=-1).view_as(logits))
        objects = regions.flatten(2) @ x.flatten(2).transpose(1, 2)  # (B, K, C): f_k = Σ_i p_ki x_i
        objects = objects.transpose(1, 2).unsqueeze(-1)  # (B, C, K, 1), the official proxy layout
        query = self.f_pixel(x).flatten(2)  # (B, C_k, N)
        key = self.f_object(objects).flatten(2)  # (B, C_k, K)
        value = self.f_down(objects).flatten(2)  # (B, C_k, K)
        logits = (key.transpose(1, 2) @ query) * self.key_channels**-0.5  # (B, K, N)
        relation = self.gates["objects"](logits.unflatten(-1, (H, W)))  # (B, K, H, W), softmax over K
        context = (value @ relation.flatten(2)).unflatten(-1, (H, W))  # (B, C_k, H, W)
        return self.fuse(torch.cat([self.f_up(context), x], dim=1))
