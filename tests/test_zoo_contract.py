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


@pytest.mark.parametrize("name", ["se", "cbam", "simam", "eca", "coord"])
def test_works_as_timm_attn_layer(name):
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "resnet18", pretrained=False, num_classes=3, block_args=dict(attn_layer=attnlab.get_attention(name))
    )
    assert any(isinstance(m, attnlab.get_attention(name)) for m in model.modules())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_input_gives_the_same_output(name):
    """CUDA training runs channels_last: no module may assume a contiguous (B, C, H, W) layout."""
    m = build(name).eval()
    x = torch.randn(2, C, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(m(x.contiguous(memory_format=torch.channels_last)), m(x))
