"""Where each attention module goes in a ResNet, as its paper puts it: the ResNet's knowledge, not the zoo's.

    "block"     inside every residual block, after the last BN of the residual branch, before the addition
    "stage"     after stages 1-3, between stages (BAM)
    "nonlocal"  after every other block of stages 2 and 3 (the non-local paper; also the home of CCNet's and
                DANet's all-position attention, which their papers put after a segmentation backbone)
    "conv"      in place of the block's 3×3 convolution (the branch modules; BoTNet's MHSA in stage 4)
    "after_conv1"  inside every residual block, after its first convolution (+ BN + ReLU): TANet's TA-block

A module not in ``PAPER_PLACES`` (a user's own, registered or passed as a class) goes to "block".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PLACEMENTS", "DEFAULT_STAGES", "Place", "PAPER_PLACES", "paper_place"]

PLACEMENTS = ("block", "stage", "nonlocal", "conv", "after_conv1")
# The ResNet stages (1-4 = layer1-layer4) each placement uses unless a module or the caller says otherwise.
DEFAULT_STAGES = {
    "block": (1, 2, 3, 4),
    "stage": (1, 2, 3),
    "nonlocal": (2, 3),
    "conv": (1, 2, 3, 4),
    "after_conv1": (1, 2, 3, 4),
}


@dataclass(frozen=True)
class Place:
    """A module's place in a ResNet, and keyword arguments the ResNet passes it there (the user's win)."""

    placement: str = "block"
    stages: tuple[int, ...] | None = None  # None: DEFAULT_STAGES[placement]
    kwargs: dict = field(default_factory=dict)

    @property
    def resolved_stages(self) -> tuple[int, ...]:
        return DEFAULT_STAGES[self.placement] if self.stages is None else self.stages


PAPER_PLACES: dict[str, Place] = {
    "bam": Place("stage"),
    "non_local": Place("nonlocal"),
    "a2": Place("nonlocal"),
    "cc": Place("nonlocal"),
    "danet": Place("nonlocal"),
    "external": Place("nonlocal"),  # EANet and EncNet: on the segmentation backbone's output, own residual + ReLU
    "encnet": Place("nonlocal"),
    # SPNet's SPM: inside the bottleneck at its inner width, on a conv's BN + ReLU output (its code: the 3×3's)
    "strip_pool": Place("after_conv1"),
    "sk": Place("conv", kwargs={"groups": 1}),  # as the 3×3 conv it replaces in a ResNet
    "splat": Place("conv"),
    "lambda": Place("conv", stages=(3, 4)),  # LambdaResNets' hybrids: lambda layers in the last two stages
    "halo": Place("conv"),  # HaloNets: every 3×3 conv of the network
    "bat": Place("nonlocal"),  # the official code: after every other block of res3 and res4 (--nl_mod 2 2 1000)
    "mhsa": Place("conv", stages=(4,)),  # BoTNet: the last stage only
    "scconv": Place("conv"),  # SCNet: the bottleneck's split 3×3 conv, K1 and K4 with the stride
    "dynconv": Place("conv"),  # DY-ResNet: the 3×3 conv (+ BN) with K aggregated kernels
    "aa": Place("conv", stages=(2, 3, 4)),  # AA-ResNet: the last three stages (28², 14², 7² at 224)
    "stn": Place("stage"),  # warps the whole map between stages, as ST-CNN between layers
    "axial": Place("conv"),  # Axial-ResNet: every bottleneck's 3×3 conv (and its BN), stride by an average pool
    "epsa": Place("conv", kwargs={"bn": True}),  # EPSABlock keeps bn2 after the PSA module
    "cot": Place("conv"),  # CoTNet: stride by a 3×3 average pool first, as its Bottleneck's avd
    "psa": Place("after_conv1"),  # the official HRNet BasicBlock: after conv1 + BN + ReLU
    # the temporal modules (per-frame maps with num_frames): TANet's every block; non-local's res3-4 blocks;
    # GLTR on the last stage's frame features, before their pooling
    "tam": Place("after_conv1"),
    "non_local_st": Place("nonlocal"),
    "gltr": Place("stage", stages=(4,)),
    # segmentation heads after the backbone, each with its own residual or fuse: as CCNet's and DANet's
    "ham": Place("nonlocal"),
    "ocr": Place("nonlocal"),
}


def paper_place(name: str) -> Place:
    """Where the paper of the registered module ``name`` puts it in a ResNet."""
    return PAPER_PLACES.get(name, Place())
