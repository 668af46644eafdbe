"""External attention, EncNet's encoding, SOCA, DIA, strip pooling: their equations on hand-sized inputs."""

import math

import pytest
import torch
from test_zoo_papers import BN_EVAL, F64
from test_zoo_papers import make_eval as make

import attnlab
from attnlab.models.placement import paper_place


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


# ---- external attention -------------------------------------------------------------------------------
def test_external_normalizes_over_positions_then_over_memory_units():
    m = make("external", 2, memory_units=2)
    mk = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=F64)  # M_k (S, C)
    mv = torch.tensor([[2.0, -1.0], [0.0, 3.0]], dtype=F64)  # M_v (C, S)
    with torch.no_grad():
        m.conv1.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        m.conv1.bias.zero_()
        m.memory_key.copy_(mk)
        m.memory_value.copy_(mv)
        m.conv2.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    x = torch.tensor([[[[0.0, 1.0, 2.0]], [[1.0, -1.0, 0.0]]]], dtype=F64)  # (1, 2, 1, 3)
    feats = [(0.0, 1.0), (1.0, -1.0), (2.0, 0.0)]  # the three positions' features
    logits = [[mk[s, 0].item() * a + mk[s, 1].item() * b for a, b in feats] for s in range(2)]
    soft = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits]  # over positions
    attn = [[soft[s][n] / (1e-9 + soft[0][n] + soft[1][n]) for n in range(3)] for s in range(2)]  # over units
    out = torch.tensor(
        [[[sum(mv[c, s].item() * attn[s][n] for s in range(2)) for n in range(3)]] for c in range(2)], dtype=F64
    )
    expected = torch.relu(x + BN_EVAL * out[None])
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)


def test_external_starts_with_value_memory_the_transposed_key_memory():
    m = make("external", 8)
    assert m.memory_key.shape == (64, 8) and torch.equal(m.memory_value, m.memory_key.t())
    assert m.memory_value.data_ptr() != m.memory_key.data_ptr()  # two parameters, as the paper's M_k, M_v
    assert paper_place("external").placement == "nonlocal"


# ---- EncNet's context encoding ------------------------------------------------------------------------
def test_encnet_encodes_residuals_to_soft_assigned_codewords():
    m = make("encnet", 2, num_codes=2)
    d = [(1.0, 0.0), (0.0, 2.0)]
    s = [-0.5, -1.0]
    w, b = [[1.0, -1.0], [0.5, 2.0]], [0.0, -1.0]
    with torch.no_grad():
        m.project.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        m.codewords.copy_(torch.tensor(d))
        m.scale.copy_(torch.tensor(s))
        m.fc.weight.copy_(torch.tensor(w))
        m.fc.bias.copy_(torch.tensor(b))
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]], dtype=F64)  # (1, 2, 1, 2)
    feats = [(BN_EVAL * 1.0, BN_EVAL * 3.0), (BN_EVAL * 2.0, 0.0)]  # ReLU(BN(x)) at the two positions
    enc = []
    for k in range(2):
        e_k = [0.0, 0.0]
        for xi in feats:
            dists = [sum((xi[c] - d[j][c]) ** 2 for c in range(2)) for j in range(2)]
            a_ik = math.exp(s[k] * dists[k]) / sum(math.exp(s[j] * dists[j]) for j in range(2))
            e_k = [e_k[c] + a_ik * (xi[c] - d[k][c]) for c in range(2)]
        enc.append([max(BN_EVAL * v, 0.0) for v in e_k])  # BN over the K codewords, ReLU
    e = [(enc[0][c] + enc[1][c]) / 2 for c in range(2)]  # the mean over K
    gamma = torch.tensor([sigmoid(w[c][0] * e[0] + w[c][1] * e[1] + b[c]) for c in range(2)], dtype=F64)
    torch.testing.assert_close(m(x), torch.relu(x + x * gamma.view(1, 2, 1, 1)), rtol=0, atol=1e-12)
    assert paper_place("encnet").placement == "nonlocal"


# ---- SOCA ---------------------------------------------------------------------------------------------
def newton_schulz(a, steps):
    """The official Sqrtm's recurrence on one eigenvalue a of A = Σ / tr Σ (a diagonal Σ decouples)."""
    y, z = a, 1.0
    for _ in range(steps - 1):
        t = 0.5 * (3 - z * y)
        y, z = y * t, t * z
    return 0.5 * y * (3 - z * y)


def soca_gate_weights(m, hidden_w, hidden_b, out_w, out_b):
    with torch.no_grad():
        m.fc.fc1.weight.copy_(torch.tensor(hidden_w).view(1, 2, 1, 1))
        m.fc.fc1.bias.fill_(hidden_b)
        m.fc.fc2.weight.copy_(torch.tensor(out_w).view(2, 1, 1, 1))
        m.fc.fc2.bias.copy_(torch.tensor(out_b))


def test_soca_pools_the_newton_schulz_square_root_of_the_covariance():
    m = make("soca", 2, reduction=2)  # one hidden unit
    soca_gate_weights(m, [1.0, 2.0], 0.0, [1.0, -1.0], [0.0, 0.5])
    # two uncorrelated channels of variance 1 and 4: Σ = diag(1, 4), tr Σ = 5, A = diag(0.2, 0.8)
    x = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]], [[2.0, 2.0], [-2.0, -2.0]]]], dtype=F64) + 3.0  # (1, 2, 2, 2)
    roots = [math.sqrt(5) * newton_schulz(a, 5) for a in (0.2, 0.8)]  # ≈ (1, 2) = √diag(Σ)
    assert roots == pytest.approx([1.0, 2.0], abs=2e-3)
    z = [r / 2 for r in roots]  # the mean of each column of the diagonal Σ^½
    h = max(z[0] + 2 * z[1], 0.0)
    gate = torch.tensor([sigmoid(h), sigmoid(-h + 0.5)], dtype=F64)
    torch.testing.assert_close(m(x), x * gate.view(1, 2, 1, 1), rtol=0, atol=1e-12)


def test_soca_equals_the_official_covpool_and_sqrtm_on_a_random_map():
    torch.manual_seed(1)
    m = make("soca", 4, reduction=2)
    x = torch.randn(2, 4, 3, 5, dtype=F64)
    B, C, M = 2, 4, 15
    flat = x.reshape(B, C, M)
    i_hat = -1 / M / M * torch.ones(M, M, dtype=F64) + 1 / M * torch.eye(M, dtype=F64)
    cov = flat @ i_hat @ flat.transpose(1, 2)  # Covpool
    i3 = 3 * torch.eye(C, dtype=F64)
    norm = (cov * i3).sum(dim=(1, 2)) / 3  # Sqrtm: the trace, pre-normalization
    a = cov / norm.view(B, 1, 1)
    zy = 0.5 * (i3 - a)
    y, z = a @ zy, zy
    for _ in range(1, 4):
        zy = 0.5 * (i3 - z @ y)
        y, z = y @ zy, zy @ z
    root = 0.5 * y @ (i3 - z @ y) * norm.sqrt().view(B, 1, 1)  # last step, post-compensation
    pooled = root.mean(dim=1)  # (B, C)
    w1, b1 = m.fc.fc1.weight.view(2, 4), m.fc.fc1.bias
    w2, b2 = m.fc.fc2.weight.view(4, 2), m.fc.fc2.bias
    gate = torch.sigmoid(torch.relu(pooled @ w1.t() + b1) @ w2.t() + b2)
    torch.testing.assert_close(m(x), x * gate.view(B, C, 1, 1), rtol=0, atol=1e-12)


def test_soca_on_a_map_without_spread_gates_from_zero():
    m = make("soca", 2, reduction=2)
    soca_gate_weights(m, [1.0, 1.0], 0.25, [2.0, -3.0], [0.0, 1.0])
    x = torch.tensor([5.0, -2.0], dtype=F64).view(1, 2, 1, 1)  # 1×1: Σ = 0 (the official code: 0/0)
    gate = torch.tensor([sigmoid(2 * 0.25), sigmoid(-3 * 0.25 + 1)], dtype=F64)
    torch.testing.assert_close(m(x), x * gate.view(1, 2, 1, 1), rtol=0, atol=1e-12)


# ---- DIA ----------------------------------------------------------------------------------------------
def set_dia(m):
    """C = 4, r = 4: one hidden unit in each transform; W_ih lifts z_0 + z_1, W_hh reads h_0[0] - h_0[3]."""
    with torch.no_grad():
        m.w_ih[0].weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
        m.w_ih[0].bias.fill_(0.0)
        m.w_ih[2].weight.copy_(torch.arange(16.0).sub(8).div(8).view(16, 1))  # (4C, 1)
        m.w_ih[2].bias.zero_()
        m.w_hh[0].weight.copy_(torch.tensor([[0.5, 0.0, 0.0, -0.5]]))
        m.w_hh[0].bias.fill_(1.0)
        m.w_hh[2].weight.fill_(0.25)
        m.w_hh[2].bias.copy_(torch.linspace(-1, 1, 16, dtype=F64))
    up_ih = [(k - 8) / 8 for k in range(16)]
    bias_hh = torch.linspace(-1, 1, 16, dtype=F64).tolist()
    return up_ih, bias_hh


def dia_cell(z, h0, c0, up_ih, bias_hh):
    hid_ih = max(z[0] + z[1], 0.0)
    hid_hh = max(1.0 + 0.5 * h0[0] - 0.5 * h0[3], 0.0)
    gates = [up_ih[k] * hid_ih + 0.25 * hid_hh + bias_hh[k] for k in range(16)]
    i, f, g, o = gates[0:4], gates[4:8], gates[8:12], gates[12:16]
    c = [sigmoid(f[j]) * c0[j] + sigmoid(i[j]) * math.tanh(g[j]) for j in range(4)]
    h = [sigmoid(o[j]) * sigmoid(c[j]) for j in range(4)]  # σ(c), DIA's change to the LSTM's tanh(c)
    return h, c


def test_dia_weights_channels_by_its_lstm_cells_hidden_state_from_zero():
    m = make("dia", 4)
    up_ih, bias_hh = set_dia(m)
    x = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=F64).view(1, 4, 1, 1) * torch.tensor(
        [[1.0, 3.0]], dtype=F64
    )  # (1, 4, 1, 2): channel means (2, 4, -2, 1)
    h, _ = dia_cell([2.0, 4.0, -2.0, 1.0], [0.0] * 4, [0.0] * 4, up_ih, bias_hh)
    torch.testing.assert_close(m(x), x * torch.tensor(h, dtype=F64).view(1, 4, 1, 1), rtol=0, atol=1e-12)


def test_dia_step_carries_the_state_from_block_to_block_as_the_paper():
    m = make("dia", 4)
    up_ih, bias_hh = set_dia(m)
    x1 = torch.tensor([1.0, 0.0, 2.0, -1.0], dtype=F64).view(1, 4, 1, 1)
    x2 = torch.tensor([-1.0, 3.0, 0.5, 2.0], dtype=F64).view(1, 4, 1, 1)
    out1, state = m.step(x1)
    out2, (h2_got, c2_got) = m.step(x2, state)
    h1, c1 = dia_cell(x1.flatten().tolist(), [0.0] * 4, [0.0] * 4, up_ih, bias_hh)
    h2, c2 = dia_cell(x2.flatten().tolist(), h1, c1, up_ih, bias_hh)
    torch.testing.assert_close(out1, x1 * torch.tensor(h1, dtype=F64).view(1, 4, 1, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(out2, x2 * torch.tensor(h2, dtype=F64).view(1, 4, 1, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(c2_got, torch.tensor([c2], dtype=F64), rtol=0, atol=1e-12)
    assert not torch.allclose(out2, m(x2))  # the plug-in's forward starts from zero every time


# ---- strip pooling ------------------------------------------------------------------------------------
def test_strip_pool_gates_each_position_from_its_row_and_column_strips():
    m = make("strip_pool", 1)
    with torch.no_grad():
        m.conv_h.weight.copy_(torch.tensor([1.0, 2.0, -1.0]).view(1, 1, 3, 1))  # taps above, at, below
        m.conv_w.weight.copy_(torch.tensor([0.5, -1.0, 1.0]).view(1, 1, 1, 3))  # taps left, at, right
        m.fuse.weight.fill_(2.0)
        m.fuse.bias.fill_(-1.0)
    x = torch.tensor([[1.0, 2.0, 6.0], [-3.0, 0.0, 3.0]], dtype=F64).view(1, 1, 2, 3)
    rows = [3.0, 0.0]  # means over W
    cols = [-1.0, 1.0, 4.5]  # means over H
    yh = [BN_EVAL * (2 * rows[0] - rows[1]), BN_EVAL * (1 * rows[0] + 2 * rows[1])]  # zero padding at the ends
    yw = [
        BN_EVAL * (-1.0 * cols[0] + 1.0 * cols[1]),
        BN_EVAL * (0.5 * cols[0] - 1.0 * cols[1] + 1.0 * cols[2]),
        BN_EVAL * (0.5 * cols[1] - 1.0 * cols[2]),
    ]
    gate = torch.tensor([[sigmoid(2 * max(yh[i] + yw[j], 0.0) - 1) for j in range(3)] for i in range(2)], dtype=F64)
    torch.testing.assert_close(m(x), x * gate.view(1, 1, 2, 3), rtol=0, atol=1e-12)
    assert paper_place("strip_pool").placement == "after_conv1"  # at the block's inner width, as SPNet's code


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("external", {"memory_units": 0}, "memory_units"),
        ("encnet", {"num_codes": 0}, "num_codes"),
        ("soca", {"iterations": 0}, "iterations"),
        ("soca", {"reduction": 0}, "reduction"),
        ("dia", {"reduction": -4}, "reduction"),
        ("strip_pool", {"kernel_size": 2}, "kernel_size"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        attnlab.create_attention(name, 8, **kwargs)
