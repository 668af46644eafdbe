"""timm's factory's self-attention layers: lambda (LambdaNetworks), halo (HaloNets), bat (BAT), on hand-sized inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_zoo_papers import F64
from test_zoo_papers import make_eval as make

import attnlab
from attnlab.models.placement import Place, paper_place

BN = 1 / math.sqrt(1 + 1e-5)  # a BatchNorm at its initialization, in eval mode


def test_lambda_applies_the_content_and_the_position_lambdas_to_each_query():
    m = make("lambda", 2, num_heads=1, dim_head=1, r=3)  # k = 1, v = 2
    a, b, c, beta = 0.5, -1.0, 2.0, 0.25
    with torch.no_grad():  # q = x₀, keys = x₁, values = x (output rows of qkv: q, k, v)
        m.qkv.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]]).view(4, 2, 1, 1))
        m.conv_lambda.weight.zero_()
        m.conv_lambda.weight[0, 0, 1, :, 0] = torch.tensor([a, b, c])  # the kernel's middle row: H = 1
        m.conv_lambda.bias.fill_(beta)
    x = torch.tensor([[1.0, 2, 3], [0, 1, -1]], dtype=F64).view(1, 2, 1, 3)
    keys = {}
    m.gate.register_forward_hook(lambda mod, args, out: keys.setdefault("σ", out))
    y = m(x)
    q = x[0, 0, 0] * BN  # (3,)
    sigma = torch.softmax(x[0, 1, 0], dim=0)  # over the 3 positions
    v = x[0, :, 0].T * BN  # (3 positions, 2)
    content = (sigma[:, None] * v).sum(0)  # λ^c (2,)
    padded = torch.cat([torch.zeros(1, 2, dtype=F64), v, torch.zeros(1, 2, dtype=F64)])
    position = a * padded[:-2] + b * padded[1:-1] + c * padded[2:] + beta  # λ^p_n = Σ e_{m−n} v_m + bias
    expected = (q[:, None] * (content + position)).T.reshape(1, 2, 1, 3)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(keys["σ"], sigma.view(1, 1, 1, 3), rtol=0, atol=1e-15)


def halo_by_loops(m, x):
    """Each query pixel's softmax over its block's window, relative positions in map coordinates, zeros outside."""
    B, C, H, W = x.shape
    b, h, heads, (d, dv) = m.block_size, m.halo_size, m.num_heads, m.dims
    win = b + 2 * h
    q = torch.einsum("oc,bchw->bohw", m.q.weight[:, :, 0, 0], x)
    kv = torch.einsum("oc,bchw->bohw", m.kv.weight[:, :, 0, 0], x)
    rel_h, rel_w = m.pos_embed["height_rel"], m.pos_embed["width_rel"]
    out = torch.zeros(B, heads * dv, H, W, dtype=x.dtype)
    for y in range(H):
        for x0 in range(W):
            by, bx = y - y % b, x0 - x0 % b
            for n in range(heads):
                qn = q[:, n * d : (n + 1) * d, y, x0]  # (B, d)
                logits, values = [], []
                for ky in range(by - h, by + b + h):
                    for kx in range(bx - h, bx + b + h):
                        inside = 0 <= ky < H and 0 <= kx < W
                        kvn = kv[:, n * (d + dv) : (n + 1) * (d + dv), ky, kx] if inside else torch.zeros(B, d + dv)
                        pos = qn @ rel_h[ky - y + h + win - 1] + qn @ rel_w[kx - x0 + h + win - 1]
                        logits.append((qn * kvn[:, :d]).sum(1) / math.sqrt(d) + pos)
                        values.append(kvn[:, d:])
                weights = torch.softmax(torch.stack(logits, 1), dim=1)  # (B, win²)
                out[:, n * dv : (n + 1) * dv, y, x0] = (weights[:, :, None] * torch.stack(values, 1)).sum(1)
    return out


@pytest.mark.parametrize("hw", [(4, 6), (3, 5)])  # blocks that fill the map; blocks over its edge (padded)
def test_halo_attends_from_each_block_to_its_window_with_relative_positions(hw):
    m = make("halo", 4, num_heads=2, block_size=2, halo_size=1)  # d = d_v = 2, windows 4×4
    with torch.no_grad():
        for table in m.pos_embed.values():
            table.normal_()
    x = torch.randn(2, 4, *hw, dtype=F64)
    torch.testing.assert_close(m(x), halo_by_loops(m, x), rtol=0, atol=1e-12)


def test_bat_mixes_row_bins_and_column_bins_of_each_group():
    m = make("bat", 2, reduction=1, block_size=2, groups=1, drop_rate=0.0)  # C' = 2, s = 2, one group
    A = torch.tensor([[1.0, 0], [0, 1], [-1, 2], [0.5, 0.5]], dtype=F64)  # conv_p / conv_q taps: 4 = s² outputs
    bias = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=F64)
    with torch.no_grad():
        for seq in (m.conv1, m.transform, m.conv2):
            seq[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            seq[0].bias.zero_()
        m.reduce[0].weight.fill_(1.0)
        m.reduce[0].bias.zero_()
        m.conv_p.weight.copy_(A.view(4, 1, 2, 1))
        m.conv_q.weight.copy_(A.flip(1).view(4, 1, 1, 2))
        m.conv_p.bias.copy_(bias)
        m.conv_q.bias.copy_(-bias)
    x = torch.tensor(
        [[[1.0, -2, 3, 0.5], [0, 1, 2, -1], [4, -3, 1, 2]], [[0.5, 1, -1, 2], [3, 0, -2, 1], [-1, 2, 0.5, 1]]],
        dtype=F64,
    ).view(1, 2, 3, 4)  # H = 3: padded to 4 rows, two bins of 2
    x1 = (x[0] * BN).clamp(min=0)  # X' (2, 3, 4)
    z = F.pad(((x1[0] + x1[1]) * BN).clamp(min=0), (0, 0, 0, 1))  # (4, 4), the padded row 0
    rows = torch.stack([z[:2].max(), z[2:].max()])
    cols = torch.stack([z[:, :2].max(), z[:, 2:].max()])
    p = torch.sigmoid(A @ rows + bias).view(2, 2)
    q = torch.sigmoid(A.flip(1) @ cols - bias).view(2, 2)
    p, q = p / p.sum(1, keepdim=True), q / q.sum(0, keepdim=True)  # rows of P, columns of Q sum to 1
    eye = torch.eye(2, dtype=F64)
    y = torch.kron(p, eye) @ F.pad(x1, (0, 0, 0, 1)) @ torch.kron(q, eye)  # (2, 4, 4)
    expected = x[0] + ((y[:, :3] * BN).clamp(min=0) * BN).clamp(min=0)
    torch.testing.assert_close(m(x), expected[None], rtol=0, atol=1e-12)


def test_parameter_counts_are_timms_at_timms_settings():
    pytest.importorskip("timm")
    from timm.layers.halo_attn import HaloAttn
    from timm.layers.lambda_layer import LambdaLayer
    from timm.layers.non_local_attn import BatNonLocalAttn

    def count(m):
        return sum(p.numel() for p in m.parameters())

    for c in (64, 256, 2048):
        assert count(attnlab.create_attention("lambda", c)) == count(LambdaLayer(c))
        assert count(attnlab.create_attention("halo", c)) == count(HaloAttn(c))
        bat_timm = attnlab.create_attention("bat", c, reduction=4, groups=2, bias=False)  # timm's defaults
        assert count(bat_timm) == count(BatNonLocalAttn(c))


def test_placements_are_the_papers():
    assert paper_place("lambda") == Place("conv", stages=(3, 4))
    assert paper_place("halo") == Place("conv")
    assert paper_place("bat") == Place("nonlocal")


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("lambda", {"r": 4}, "r"),
        ("lambda", {"num_heads": 3}, "channels"),
        ("lambda", {"stride": 3}, "stride"),
        ("halo", {"halo_size": -1}, "halo_size"),
        ("halo", {"block_size": 0}, "block_size"),
        ("bat", {"groups": 0}, "groups"),
        ("bat", {"drop_rate": 1.0}, "drop_rate"),
    ],
)
def test_bad_arguments_name_themselves(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        attnlab.create_attention(name, 32, **kwargs)


def test_bat_groups_fall_back_to_a_divisor_of_the_reduced_width():
    assert attnlab.create_attention("bat", 12).groups == 3  # C' = 6: 4 does not divide it
    assert attnlab.create_attention("bat", 256).groups == 4
