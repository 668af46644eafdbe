"""attnlab's zoo modules against timm's (``timm.layers``, 1.0.x) with the same weights, copied both ways.

Per module: ``TWINS`` builds timm's module configured as attnlab's (its arguments set to attnlab's defaults, the
papers'), ``MODULE_MAPS`` names, for each attnlab submodule, timm's submodule holding the same weights. Outputs,
input and parameter gradients, and the BatchNorm statistics after a training-mode forward must be equal, in float64
to 1e-12 and in float32 to 1e-6. Where attnlab and timm differ by design, the twin's comment says how, and what is
tested instead. ``tests/test_zoo_contract.py`` and ``tests/test_bench.py`` reuse the twins and maps.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

import attnlab
from attnlab.layers.eca import eca_kernel_size

tl = pytest.importorskip("timm.layers")
from timm.layers.cbam import CbamModule, LightCbamModule  # noqa: E402  (after the skip: timm is a dev extra)
from timm.layers.halo_attn import HaloAttn  # noqa: E402
from timm.layers.lambda_layer import LambdaLayer  # noqa: E402
from timm.layers.non_local_attn import BatNonLocalAttn  # noqa: E402

try:  # timm >= 1.0.20
    from timm.layers.coord_attn import CoordAttn, EfficientLocalAttn, SimpleCoordAttn, StripAttn
except ImportError:  # pragma: no cover
    CoordAttn = EfficientLocalAttn = SimpleCoordAttn = StripAttn = None


# ---------------------------------------------------------------------------------------------------------------------
# timm's module configured as attnlab's; keyword arguments and defaults are attnlab's
# ---------------------------------------------------------------------------------------------------------------------


def twin_se(channels, *, reduction=16):
    # timm rounds the hidden width C·rd_ratio to a multiple of 8 (rd_divisor=8): at 64 channels 8, the paper's (and
    # attnlab's) C/16 is 4. rd_channels gives timm the paper's width; everything else is the same computation.
    return tl.SEModule(channels, rd_channels=int(channels // reduction))


def twin_eca(channels, *, kernel_size=None):
    # timm's adaptive k is the same formula (Eq. 12) but floored at 3: below 8 channels attnlab's k is the paper's
    # nearest odd number, 1, timm's 3 (test_eca_adaptive_kernel_is_timms_from_8_channels). There timm gets k itself.
    if kernel_size is None and channels >= 8:
        return tl.EcaModule(channels=channels)
    return tl.EcaModule(kernel_size=eca_kernel_size(channels) if kernel_size is None else kernel_size)


def twin_ceca(channels, *, kernel_size=None):
    # the same module (attnlab's ceca is timm's CecaModule, named as timm's factory names it)
    return tl.CecaModule(channels=channels) if kernel_size is None else tl.CecaModule(kernel_size=kernel_size)


def twin_ecam(channels):
    # the same module (timm's factory's "ecam": EcaModule with use_mlp=True)
    return tl.EcaModule(channels=channels, use_mlp=True)


def twin_lcbam(channels, *, reduction=16, kernel_size=7):
    # the same module at timm's defaults (attnlab's lcbam is timm's LightCbamModule)
    return LightCbamModule(channels, rd_ratio=1 / reduction, spatial_kernel_size=kernel_size)


def twin_ese(channels):
    # the same module: timm's EffectiveSEModule with its defaults (a C -> C 1×1 conv, hard sigmoid, no max pool)
    return tl.EffectiveSEModule(channels)


def twin_cbam(channels, *, reduction=16, kernel_size=7):
    # The official code (attnlab's) has MLP biases (timm's default mlp_bias=False) and spatial BN momentum 0.01 (timm's
    # 0.1, set below so the running statistics agree too); it stacks [max; mean] where timm stacks [mean; max], so the
    # 7×7 conv's two input channels swap (FLIPPED). timm's default width rounds C/16 (int(x + 0.5)): rd_channels.
    m = CbamModule(channels, rd_channels=int(channels // reduction), spatial_kernel_size=kernel_size, mlp_bias=True)
    m.spatial.conv.bn.momentum = 0.01
    return m


def twin_gc(channels, *, reduction=16):
    # attnlab's GC is the paper's GC-ResNet block: addition fusion only. timm's defaults are its scale fusion
    # (fuse_scale=True, fuse_add=False: x · σ(MLP(c))), another module; and timm's LayerNorm2d has eps 1e-6, the
    # official code's nn.LayerNorm 1e-5 (set below). Width: timm's default rd_ratio is 1/8, the paper's r16 is 1/16.
    m = tl.GlobalContext(channels, fuse_add=True, fuse_scale=False, rd_channels=int(channels // reduction))
    m.mlp_add.norm.eps = 1e-5
    return m


def twin_gca(channels, *, reduction=8):
    # the same module: timm's factory's gca (attnlab's gca is gc at timm's defaults: r = 8 rounded, eps 1e-6)
    return tl.GlobalContext(channels, fuse_add=True, fuse_scale=False, rd_ratio=1 / reduction)


def twin_scoord(channels, *, reduction=4):  # the same module: timm's SimpleCoordAttn, rd_ratio = 1/r
    return SimpleCoordAttn(channels, rd_ratio=1 / reduction)


def twin_ela(channels, *, kernel_size=7):  # the same module: timm's EfficientLocalAttn
    return EfficientLocalAttn(channels, kernel_size=kernel_size)


def twin_strip(channels, *, kernel_size=3):  # the same module: timm's StripAttn
    return StripAttn(channels, kernel_size=kernel_size)


def twin_lambda(channels, *, stride=1, num_heads=4, dim_head=16, r=9):
    # the same module: timm's LambdaLayer with its lambda convolution (attnlab's keys are timm's)
    return LambdaLayer(channels, stride=stride, num_heads=num_heads, dim_head=dim_head, r=r)


def twin_halo(channels, *, stride=1, num_heads=8, dim_head=None, block_size=8, halo_size=3, avg_down=False):
    # the same module (attnlab's keys are timm's); timm takes only H, W multiples of block_size: see timm_size
    return HaloAttn(channels, None, None, stride, num_heads, dim_head, block_size, halo_size, avg_down=avg_down)


def twin_bat(channels, *, reduction=2, block_size=7, groups=4, drop_rate=0.2, bias=True):
    # timm's BatNonLocalAttn given the official code's widths (C' = C/r, k groups). Its 1×1 convs before the BNs
    # have no bias, the official code's (attnlab's default) have one: given one here; the forward is timm's.
    inter = max(1, int(channels // reduction))
    m = BatNonLocalAttn(channels, block_size=block_size, groups=groups, rd_channels=inter, drop_rate=drop_rate)
    for conv in (m.conv1.conv, m.ba.conv1.conv, m.ba.conv2.conv, m.conv2.conv) if bias else ():
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
    return m


BAT_BLOCKS = (("conv1", "conv1"), ("reduce", "ba.conv1"), ("transform", "ba.conv2"), ("conv2", "conv2"))


def twin_non_local(channels, *, inter_channels=None):
    # The embedded-Gaussian block without the 1/√d scale (use_scale=False), as the paper. timm has no sub-sampling
    # (attnlab's sub_sample=True, the paper's 2×2 max-pooling of φ and g): only sub_sample=False is compared.
    # Width: the paper's C/2 is given; timm's default is C/8 rounded to a multiple of 8.
    return tl.NonLocalAttn(
        channels, use_scale=False, rd_channels=max(1, channels // 2) if inter_channels is None else inter_channels
    )


def twin_sk(channels, *, out_channels=None, stride=1, num_branches=2, groups=32, reduction=16, min_channels=32):
    # The paper's branches are 3×3 convs with dilation 1…M (the 5×5 as a dilated 3×3): timm's kernel sizes 3, 5, 7
    # with keep_3x3. The paper gives every branch the whole input; timm splits it between the branches by default
    # (split_input=True). timm rounds d = max(C/r, L) to a multiple of 8 and has no floor L = 32: rd_channels.
    out = channels if out_channels is None else out_channels
    return tl.SelectiveKernel(
        channels,
        out,
        kernel_size=[3 + 2 * m for m in range(num_branches)],
        stride=stride,
        groups=math.gcd(math.gcd(groups, channels), out),
        rd_channels=max(min_channels, int(out // reduction)),
        split_input=False,
    )


def twin_splat(channels, *, out_channels=None, stride=1, radix=2, cardinality=1, reduction=4, min_channels=32):
    # timm's rd_channels counts one radix split (its attention width is rd_channels · radix) and its default rounds
    # to a multiple of 8; the official code's inter_channels = max(C·R/r, 32) is given here. Without norm_layer timm
    # has no BN (the official code has them).
    inter = max(min_channels, int(channels * radix // reduction))
    assert inter % radix == 0, "timm's SplitAttn needs an attention width divisible by radix"
    return tl.SplitAttn(
        channels,
        channels if out_channels is None else out_channels,
        stride=stride,
        groups=cardinality,
        radix=radix,
        rd_channels=inter // radix,
        norm_layer=nn.BatchNorm2d,
    )


def twin_coord(channels, *, reduction=32, min_channels=8):
    # timm's CoordAttn defaults are its own (mip from rd_ratio 1/16 · se_factor 2/3 rounded to 8, bias-free convs); the
    # official code's mip = max(8, C/32) with biased convs is given here.
    return CoordAttn(channels, rd_channels=max(min_channels, int(channels // reduction)), bias=True)


def twin_ge(channels, *, extent=8, extra_params=True, use_mlp=True, reduction=16):
    rd = int(channels // reduction)
    try:
        return tl.GatherExcite(channels, extent=extent, extra_params=extra_params, use_mlp=use_mlp, rd_channels=rd)
    except TypeError:
        # timm 1.0.31 cannot build GatherExcite with extra_params=True or use_mlp=True: its constructor passes
        # ``*dd`` for ``**dd`` (create_conv2d(..., *dd), ConvMlp(..., *dd): "got multiple values for argument").
        # Build it without them and add the submodules that constructor means to add, with its names; the forward
        # is timm's.
        pass
    m = tl.GatherExcite(channels, extent=extent, extra_params=False, use_mlp=False)
    if extra_params:
        layers = OrderedDict()
        n = int(math.log2(extent))
        for i in range(1, n + 1):
            layers[f"conv{i}"] = tl.create_conv2d(channels, channels, kernel_size=3, stride=2, depthwise=True)
            layers[f"norm{i}"] = nn.BatchNorm2d(channels)
            if i != n:
                layers[f"act{i}"] = nn.ReLU(inplace=True)
        m.gather = nn.Sequential(layers)
    if use_mlp:
        m.mlp = tl.ConvMlp(channels, rd, act_layer=nn.ReLU)
    return m


def twin_sra(channels, *, num_heads=2, sr_ratio=4, qkv_bias=True):
    # timm's pvt_v2.Attention is the official SegFormer/PVTv2 Attention (q, kv, sr, norm, proj) on tokens: run on maps
    from timm.models.pvt_v2 import Attention as PvtAttention

    from attnlab.layers.sra import TokensOnMap

    return TokensOnMap(PvtAttention(channels, num_heads=num_heads, sr_ratio=sr_ratio, qkv_bias=qkv_bias))


TWINS = {
    "se": twin_se,
    "eca": twin_eca,
    "ese": twin_ese,
    "ceca": twin_ceca,
    "ecam": twin_ecam,
    "lcbam": twin_lcbam,
    "cbam": twin_cbam,
    "gc": twin_gc,
    "gca": twin_gca,
    "scoord": twin_scoord,
    "ela": twin_ela,
    "strip": twin_strip,
    "lambda": twin_lambda,
    "halo": twin_halo,
    "bat": twin_bat,
    "non_local": twin_non_local,
    "sk": twin_sk,
    "splat": twin_splat,
    "coord": twin_coord,
    "ge": twin_ge,
    "sra": twin_sra,
}
if CoordAttn is None:  # pragma: no cover
    for _name in ("coord", "scoord", "ela", "strip"):
        del TWINS[_name]


# ---------------------------------------------------------------------------------------------------------------------
# attnlab submodule path -> timm's (a tuple: attnlab's weight is timm's concatenated along dim 0)
# ---------------------------------------------------------------------------------------------------------------------

MODULE_MAPS = {
    "se": lambda m: {"fc.fc1": "fc1", "fc.fc2": "fc2"},
    "eca": lambda m: {"conv": "conv"},
    "ese": lambda m: {"fc": "fc"},
    "ceca": lambda m: {"conv": "conv"},
    "ecam": lambda m: {"conv": "conv", "conv2": "conv2"},
    "lcbam": lambda m: {
        "mlp.fc1": "channel.fc1",
        "mlp.fc2": "channel.fc2",
        "conv": "spatial.conv.conv",
        "bn": "spatial.conv.bn",
    },
    "cbam": lambda m: {
        "channel_gate.mlp.fc1": "channel.fc1",
        "channel_gate.mlp.fc2": "channel.fc2",
        "spatial_gate.conv": "spatial.conv.conv",
        "spatial_gate.bn": "spatial.conv.bn",
    },
    "gc": lambda m: {
        "conv_mask": "conv_attn",
        "transform.0": "mlp_add.fc1",
        "transform.1": "mlp_add.norm",  # LayerNorm over (C/r, 1, 1) = timm's LayerNorm2d over C/r: (C/r,1,1) = (C/r,)
        "transform.3": "mlp_add.fc2",
    },
    "gca": lambda m: MODULE_MAPS["gc"](m),  # gc's layers
    "scoord": lambda m: {k: k for k in ("fc1", "fc_h", "fc_w")},
    "ela": lambda m: {k: k for k in ("conv_h", "conv_w", "norm_h", "norm_w")},
    "strip": lambda m: {k: k for k in ("conv_h", "conv_w")},
    "lambda": lambda m: {k: k for k in ("qkv", "norm_q", "norm_v", "conv_lambda")},
    "halo": lambda m: {k: k for k in ("q", "kv", "pos_embed")},
    # attnlab's conv-BN-ReLU sequences (conv at 0, BN at 1) are timm's ConvNormAct (conv, bn): see BAT_BLOCKS
    "bat": lambda m: {
        **{f"{ours}.{i}": f"{theirs}.{part}" for ours, theirs in BAT_BLOCKS for i, part in enumerate(("conv", "bn"))},
        "conv_p": "ba.conv_p",
        "conv_q": "ba.conv_q",
    },
    # attnlab packs θ, φ, g in one 1×1 conv (qkv): timm's t, p, g stacked
    "non_local": lambda m: {"attn.qkv": ("t", "p", "g"), "attn.proj": "z", "bn": "norm"},
    "sk": lambda m: {
        **{f"branches.{i}.0": f"paths.{i}.conv" for i in range(m.num_branches)},
        **{f"branches.{i}.1": f"paths.{i}.bn" for i in range(m.num_branches)},
        "fc.0": "attn.fc_reduce",
        "fc.1": "attn.bn",
        "fcs": "attn.fc_select",
    },
    "splat": lambda m: {k: k for k in ("conv", "bn0", "fc1", "bn1", "fc2")},
    "coord": lambda m: {k: k for k in ("conv1", "bn1", "conv_h", "conv_w")},
    "sra": lambda m: {k: f"attn.{k}" for k in ("q", "kv", "proj", *(("sr", "norm") if m.sr_ratio > 1 else ()))},
    # attnlab's gather is conv, BN, (ReLU, conv, BN)…: conv i at index 3i, its BN at 3i + 1
    "ge": lambda m: {
        **{
            f"gather.{3 * i + j}": f"gather.{kind}{i + 1}"
            for i in range(0 if m.gather is None else (len(m.gather) + 1) // 3)
            for j, kind in enumerate(("conv", "norm"))
        },
        **({} if isinstance(m.mlp, nn.Identity) else {"mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}),
    },
}
# tensors whose dim 1 is in the opposite order: CBAM's spatial conv sees [max; mean] in attnlab, [mean; max] in timm
FLIPPED = {("cbam", "spatial_gate.conv.weight")}


def key_pairs(name, ours, keys):
    """(attnlab key, timm keys) for each of ``keys`` (attnlab state-dict keys of ``ours``)."""
    paths = MODULE_MAPS[name](ours)
    pairs = []
    for key in keys:
        prefix = [p for p in paths if key.startswith(p + ".")]
        assert len(prefix) == 1, f"{name}: {key} is mapped {len(prefix)} times"
        targets = paths[prefix[0]]
        targets = targets if isinstance(targets, tuple) else (targets,)
        pairs.append((key, tuple(f"{t}.{key[len(prefix[0]) + 1 :]}" for t in targets)))
    return pairs


def to_timm_layout(name, ours, tensors, theirs_state):
    """attnlab tensors (keyed as ``ours``' state dict) in timm's keys and shapes (those of ``theirs_state``)."""
    out = {}
    for key, tkeys in key_pairs(name, ours, tensors):
        t = tensors[key].flip(1) if (name, key) in FLIPPED else tensors[key]
        for tkey, part in zip(tkeys, t.chunk(len(tkeys)) if len(tkeys) > 1 else (t,), strict=True):
            out[tkey] = part.reshape(theirs_state[tkey].shape)
    return out


def copy_to_timm(name, ours, theirs):
    theirs.load_state_dict(to_timm_layout(name, ours, ours.state_dict(), theirs.state_dict()), strict=True)


def copy_to_attnlab(name, theirs, ours):
    sd, mine = theirs.state_dict(), ours.state_dict()
    new = {}
    for key, tkeys in key_pairs(name, ours, mine):
        t = torch.cat([sd[k] for k in tkeys]) if len(tkeys) > 1 else sd[tkeys[0]]
        t = t.reshape(mine[key].shape)
        new[key] = t.flip(1) if (name, key) in FLIPPED else t
    ours.load_state_dict(new, strict=True)


def randomize(module, seed=0):
    """Every weight and BN statistic random, none at its (often zero or identity) initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=g, dtype=torch.float64)
            if key.endswith("running_var"):
                r = 0.5 + torch.rand(t.shape, generator=g, dtype=torch.float64)
            elif t.dim() > 1:  # conv weights (and GC's (C/r, 1, 1) LayerNorm): unit variance out for unit in
                r = r / math.sqrt(t[0].numel())
            elif key.endswith("weight"):  # norm scales
                r = 1 + 0.2 * r
            else:
                r = 0.2 * r
            t.copy_(r.to(t.dtype))
    return module


def grads(module):
    return {k: p.grad for k, p in module.named_parameters()}


def assert_same(name, ours, theirs, x, *, atol, rtol=0.0):
    """Outputs, input gradients and parameter gradients equal; in training mode, the BN statistics too."""
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2, rtol=rtol, atol=atol)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=rtol, atol=atol)
    theirs_state = theirs.state_dict()
    torch.testing.assert_close(
        to_timm_layout(name, ours, grads(ours), theirs_state), grads(theirs), rtol=rtol, atol=atol
    )
    torch.testing.assert_close(
        to_timm_layout(name, ours, ours.state_dict(), theirs_state), theirs_state, rtol=rtol, atol=atol
    )


# (name, channels, attnlab keyword arguments): attnlab's defaults at several widths, then other settings
CASES = [
    ("se", 64, {}),
    ("se", 256, {}),
    ("se", 96, {"reduction": 4}),
    ("eca", 64, {}),
    ("eca", 2048, {}),  # k = 7
    ("eca", 4, {}),  # k = 1: timm told k (see twin_eca)
    ("eca", 96, {"kernel_size": 5}),
    ("ese", 64, {}),
    ("ese", 256, {}),
    ("ceca", 64, {}),
    ("ceca", 2048, {}),  # k = 7
    ("ceca", 96, {"kernel_size": 5}),
    ("ecam", 64, {}),
    ("ecam", 256, {}),
    ("lcbam", 64, {}),
    ("lcbam", 256, {}),
    ("lcbam", 96, {"reduction": 8, "kernel_size": 3}),
    ("cbam", 64, {}),
    ("cbam", 256, {}),
    ("cbam", 96, {"reduction": 8, "kernel_size": 3}),
    ("gc", 64, {}),
    ("gc", 256, {}),
    ("gc", 96, {"reduction": 4}),
    ("gca", 64, {}),
    ("gca", 256, {}),
    ("gca", 20, {}),  # d = round(2.5) = 3
    ("gca", 96, {"reduction": 16}),
    ("scoord", 64, {}),
    ("scoord", 256, {}),
    ("scoord", 20, {}),  # d = 8, the least
    ("scoord", 96, {"reduction": 2}),
    ("ela", 64, {}),
    ("ela", 256, {}),
    ("ela", 96, {"kernel_size": 5}),
    ("strip", 64, {}),
    ("strip", 256, {}),
    ("strip", 96, {"kernel_size": 5}),
    ("lambda", 64, {}),
    ("lambda", 256, {}),
    ("lambda", 64, {"stride": 2, "num_heads": 2, "dim_head": 8, "r": 5}),
    ("halo", 64, {}),
    ("halo", 256, {}),
    ("halo", 64, {"stride": 2}),  # strided queries: blocks of 4 queries, windows of 14 keys
    ("halo", 64, {"stride": 2, "avg_down": True, "num_heads": 4, "dim_head": 8, "block_size": 4, "halo_size": 1}),
    ("bat", 64, {}),
    ("bat", 256, {}),
    ("bat", 256, {"reduction": 4, "groups": 2, "bias": False}),  # timm's defaults
    ("bat", 96, {"block_size": 4, "groups": 2, "drop_rate": 0.5}),
    ("non_local", 64, {}),
    ("non_local", 256, {}),
    ("non_local", 96, {"inter_channels": 24}),
    ("sk", 64, {}),
    ("sk", 256, {}),
    ("sk", 64, {"out_channels": 96, "stride": 2, "num_branches": 3, "groups": 1}),
    ("splat", 64, {}),
    ("splat", 256, {}),
    ("splat", 64, {"out_channels": 128, "stride": 2, "radix": 4, "cardinality": 2}),
    ("coord", 64, {}),
    ("coord", 256, {}),
    ("coord", 96, {"reduction": 8}),
    ("ge", 64, {}),  # GE-θ+, e = 8: 3 strided depth-wise convs, then the MLP
    ("ge", 256, {}),
    ("ge", 64, {"extent": 2}),
    ("ge", 64, {"extent": 4, "extra_params": False}),  # GE-θ⁻: average pooling 7×7, stride 4
    ("ge", 64, {"extent": 0, "extra_params": False}),  # global: SE
    ("ge", 64, {"extent": 8, "extra_params": False, "use_mlp": False}),  # parameter-free
    ("sra", 64, {}),  # MiT stage 2: 2 heads, R = 4 (7×5: ⌊7/4⌋×⌊5/4⌋ = 1 key, as the official's floor)
    ("sra", 256, {}),
    ("sra", 80, {"num_heads": 5, "sr_ratio": 2}),  # stage 3's (7×5: 3×2 keys, the last row left out as the official)
    ("sra", 96, {"num_heads": 8, "sr_ratio": 1, "qkv_bias": False}),  # stage 4: no reduction
]
CASES = [c for c in CASES if c[0] in TWINS]


def case_id(case):
    name, c, kwargs = case
    return "-".join([name, str(c), *(f"{k}={v}" for k, v in kwargs.items())])


def build_pair(name, channels, kwargs, direction, dtype):
    torch.manual_seed(0)
    ours = attnlab.create_attention(name, channels, **kwargs).to(dtype)
    theirs = TWINS[name](channels, **kwargs).to(dtype)
    if direction == "attnlab->timm":
        copy_to_timm(name, randomize(ours), theirs)
    else:
        copy_to_attnlab(name, randomize(theirs), ours)
    same_dropout_masks(ours, theirs)
    return ours, theirs


def same_dropout_masks(*modules, seed=0):
    """Every dropout of ``modules`` draws its mask from ``seed`` (BAT's Dropout2d in training): the same masks in
    each (they depend on the shape, not the dtype). Deep copies keep the hooks."""

    def reseed(module, args):
        torch.manual_seed(seed)

    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.register_forward_pre_hook(reseed)


# timm's HaloAttn and BatNonLocalAttn take only H, W multiples of their block, and timm's stride-2 average pools
# floor odd sizes (attnlab's round up, as a stride-2 conv): those are compared at the next sizes timm takes
TIMM_MULTIPLES = {"halo": 8, "bat": 7, "lambda": 1}


def timm_size(name, kwargs, hw):
    if name not in TIMM_MULTIPLES:
        return hw
    m = math.lcm(kwargs.get("block_size", TIMM_MULTIPLES[name]), kwargs.get("stride", 1))
    return tuple(-(-s // m) * m for s in hw)


# λ's and BAT's weight gradients sum thousands of products (~10³ in size): compared relative to their size too.
# BAT's at 1e-11: on an Intel Xeon (AVX-512, AMX) its conv2 weight gradient, a sum of such products, differed from
# timm's by 2.4e-12 of its value (one element of 4,096; the float64 convolution sums in another order there)
RTOL = {"lambda": 1e-12, "bat": 1e-11}


def test_every_timm_module_of_the_zoo_is_compared():
    assert set(TWINS) <= set(attnlab.list_attentions())
    assert {c[0] for c in CASES} == set(TWINS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("direction", ["attnlab->timm", "timm->attnlab"])
@pytest.mark.parametrize("hw", [(7, 5), (13, 22)])
def test_equals_timm_with_copied_weights(case, direction, hw):
    name, channels, kwargs = case
    ours, theirs = build_pair(name, channels, kwargs, direction, torch.float64)
    x = torch.randn(2, channels, *timm_size(name, kwargs, hw), dtype=torch.float64)
    for train in (False, True):  # eval first: the training-mode pass then checks both updates of the BN statistics
        ours.train(train), theirs.train(train)
        assert_same(name, ours, theirs, x, atol=1e-12, rtol=RTOL.get(name, 0.0))
        ours.zero_grad(), theirs.zero_grad()


@pytest.mark.parametrize("name", list(TWINS))
def test_defaults_in_float32_are_as_close_to_float64_as_timms(name):
    """float32: equal to 1e-6, or (softmax over hundreds of positions, BN over a batch: threaded reductions in
    another order) no further from the float64 result than twice timm's float32 error (flash-attention's rule)."""
    ours, theirs = build_pair(name, 256, {}, "attnlab->timm", torch.float32)
    ref = copy.deepcopy(theirs).double()
    x = torch.randn(2, 256, *timm_size(name, {}, (13, 22)))
    for train in (False, True):
        for m in (ours, theirs, ref):
            m.train(train)
        with torch.no_grad():
            y, y_timm, y_ref = ours(x), theirs(x), ref(x.double())
        err, err_timm = ((t.double() - y_ref).abs().max().item() for t in (y, y_timm))
        assert (y - y_timm).abs().max() <= 1e-6 or err <= 2 * err_timm + 1e-6, (err, err_timm)


def test_eca_adaptive_kernel_is_timms_from_8_channels():
    for c in [8, 16, 31, 32, 64, 100, 256, 512, 1000, 2048, 4096]:
        assert tl.EcaModule(channels=c).conv.kernel_size == (eca_kernel_size(c),), c
    for c in range(1, 8):  # the paper's nearest odd number, 1; timm floors k at 3
        assert eca_kernel_size(c) == 1 and tl.EcaModule(channels=c).conv.kernel_size == (3,), c


def test_the_weight_maps_cover_both_state_dicts_one_to_one():
    for case in CASES:
        name, channels, kwargs = case
        ours = attnlab.create_attention(name, channels, **kwargs)
        theirs = TWINS[name](channels, **kwargs)
        mapped = [k for _, tkeys in key_pairs(name, ours, ours.state_dict()) for k in tkeys]
        assert sorted(mapped) == sorted(theirs.state_dict()), case_id(case)
