"""Every registered attention module through the common contract (DESIGN.md), driven by the registry."""

import pytest
import torch

import attnlab
from attnlab.layers.registry import CATEGORIES
from attnlab.models.placement import PLACEMENTS, paper_place
from attnlab.report.maps import gate_modules  # the convention: weights pass through `gate` / `gates`

NAMES = attnlab.list_attentions()
C = 32  # a multiple of every module's grouping (SK's 32 groups, FcaNet's 16 frequencies, BoTNet's 4 heads)


def one_frame_clips(name):
    """Temporal modules take per-frame batches (B·T, C, H, W): here every frame is a clip (T = 1), so any batch
    is whole clips; tests/test_video.py checks them on clips of several frames."""
    return {"num_frames": 1} if attnlab.attention_info(name).per_frame else {}


def build(name, **kwargs):
    torch.manual_seed(0)
    kwargs.update(one_frame_clips(name))
    m = attnlab.create_attention(name, C, dtype=torch.float64, **kwargs)
    with torch.no_grad():  # move zero-initialized scales (non-local's BN, γ of CCNet, DANet, …) off zero
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def test_at_least_the_twenty_modules_of_the_issue():
    expected = {
        "se",
        "eca",
        "gct",
        "srm",
        "fca",
        "ge",
        "non_local",
        "gc",
        "cc",
        "mhsa",
        "a2",
        "cbam",
        "bam",
        "scse",
        "coord",
        "triplet",
        "simam",
        "danet",
        "sk",
        "splat",
    }
    assert expected <= set(NAMES)


# timm's attention factory (timm/layers/create_attn.py, timm 1.0.31) -> attnlab's name for the same module
TIMM_FACTORY = {"nl": "non_local", "bottleneck": "mhsa"} | {
    n: n
    for n in (
        "se", "ese", "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam", "coord", "scoord", "ela", "strip",
        "sk", "splat", "lambda", "halo", "bat",
    )
}  # fmt: skip


def test_at_least_fifty_modules_in_the_six_categories_with_all_of_timms_factory():
    assert len(NAMES) >= 50
    assert {attnlab.attention_info(n).category for n in NAMES} == set(CATEGORIES)
    assert set(TIMM_FACTORY.values()) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hw", [(1, 1), (5, 3), (8, 8), (2, 9)])
def test_shape_and_finite_at_any_size(name, hw):
    m = build(name).eval()
    x = torch.randn(2, C, *hw, dtype=torch.float64)
    y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_input_and_parameters(name):
    m = build(name).train()
    x = torch.randn(2, C, 6, 5, dtype=torch.float64, requires_grad=True)
    m(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", NAMES)
def test_batch_independence_in_eval(name):
    m = build(name).eval()
    x = torch.randn(3, C, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x)[1:2], m(x[1:2]))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_keyword_raises_type_error(name):
    with pytest.raises(TypeError):
        attnlab.create_attention(name, C, not_an_argument=1)


@pytest.mark.parametrize("name", NAMES)
def test_timm_style_construction_with_device_and_dtype(name):
    cls = attnlab.get_attention(name)
    m = cls(C, device="cpu", dtype=torch.float64, **one_frame_clips(name))
    assert all(
        t.dtype == torch.float64 for t in list(m.parameters()) + [b for b in m.buffers() if b.is_floating_point()]
    )
    assert m(torch.randn(2, C, 4, 4, dtype=torch.float64)).shape == (2, C, 4, 4)


@pytest.mark.parametrize("name", NAMES)
def test_gates_are_named_and_hookable(name):
    m = build(name).eval()
    gates = gate_modules(m)
    assert gates, f"{name} routes no weights through a `gate` / `gates` submodule"
    captured = {}
    for gname, g in gates.items():
        g.register_forward_hook(lambda mod, args, out, gname=gname: captured.__setitem__(gname, out))
    m(torch.randn(2, C, 5, 4, dtype=torch.float64))
    assert captured, f"{name}: no gate ran"
    for out in captured.values():
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_attention_info_is_complete(name):
    info = attnlab.attention_info(name)
    assert info.name == name and info.cls is attnlab.get_attention(name)
    assert info.category in CATEGORIES and paper_place(name).placement in PLACEMENTS
    assert info.paper and info.venue and 2015 <= info.year <= 2026
    assert info.url.startswith("https://")
    assert info.cls.__doc__ and len(info.cls.__doc__) > 200  # paper equation, shapes, defaults
    assert info.has_params == (name != "simam")


class OfficialSimAM(torch.nn.Module):
    """The official code's SimAM (ZjjConan/SimAM, ``simam_module``): timm has none."""

    def __init__(self, channels=None, e_lambda=1e-4, **_):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1
        x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = x_minus_mu_square / (4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)


@pytest.mark.parametrize("name", ["se", "cbam", "simam", "eca", "coord"])
def test_works_as_timm_attn_layer(name):
    """attnlab's class as timm's ``attn_layer`` computes what timm's own module computes there, weights copied: SE
    against timm's own seresnet50 (whose SE widths C/16 are attnlab's: multiples of 8 from 256 channels), the others
    in timm's resnet18 against timm's module configured as attnlab's (tests/test_reference_timm.py), SimAM against
    its official code."""
    timm = pytest.importorskip("timm")
    from test_reference_timm import TWINS, randomize, to_timm_layout

    cls = attnlab.get_attention(name)
    if name == "se":
        ours = timm.create_model("resnet50", num_classes=3, block_args=dict(attn_layer=cls))
        theirs = timm.create_model("seresnet50", num_classes=3)
    else:
        twin = OfficialSimAM if name == "simam" else (lambda channels, **_: TWINS[name](channels))
        ours = timm.create_model("resnet18", num_classes=3, block_args=dict(attn_layer=cls))
        theirs = timm.create_model("resnet18", num_classes=3, block_args=dict(attn_layer=twin))
    ours, theirs = randomize(ours.double()), theirs.double()
    places = [path for path, m in ours.named_modules() if isinstance(m, cls)]
    assert places and all(path.endswith(".se") for path in places)  # timm's name for the block's attention
    state = {k: v for k, v in ours.state_dict().items() if not any(k.startswith(p + ".") for p in places)}
    for path in places:
        m, twin_m = ours.get_submodule(path), theirs.get_submodule(path)
        if m.state_dict():
            layout = to_timm_layout(name, m, m.state_dict(), twin_m.state_dict())
            state.update({f"{path}.{k}": v for k, v in layout.items()})
    theirs.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 40, 36, dtype=torch.float64)
    for train in (False, True):
        ours.train(train), theirs.train(train)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, y2 = ours(x1), theirs(x2)
        torch.testing.assert_close(y1, y2, rtol=0, atol=1e-10)
        y1.square().sum().backward()
        y2.square().sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_input_gives_the_same_output(name):
    """CUDA training runs channels_last: no module may assume a contiguous (B, C, H, W) layout."""
    m = build(name).eval()
    x = torch.randn(2, C, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x.contiguous(memory_format=torch.channels_last)), m(x))
