"""ResNets with attention: torchvision parity, the papers' placements and parameter counts, weight loading."""

import math

import pytest
import torch
import torchvision

import attnlab
from attnlab.models import load_torchvision_weights
from attnlab.models.conv import Conv3x3

# one module of each category and of each placement
SAMPLE = ["se", "gc", "cbam", "bam", "sk", "splat", "non_local", "mhsa", "simam", "eca"]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_torchvision_parity(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    ours = attnlab.create_model(name).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)  # layer4 at 3×3: the same kernels, bit for bit (smaller maps: the test below)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3), (2, 5)])
def test_conv3x3_equals_the_padded_convolution_with_its_gradients(size, stride):
    # maps of at most 2×2 take the matrix-product path; (3, 3) and (2, 5) the ordinary convolution
    torch.manual_seed(0)
    conv = Conv3x3(4, 5, stride).double()
    x = torch.randn(2, 4, *size, dtype=torch.float64, requires_grad=True)
    ours = conv(x)
    ref = torch.nn.functional.conv2d(x, conv.weight, stride=stride, padding=1)
    assert ours.shape == ref.shape
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(ours, (x, conv.weight), g), torch.autograd.grad(ref, (x, conv.weight), g)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_torchvision_parity_on_digits_where_layer3_is_2x2_and_layer4_1x1():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18().double().eval()
    ours = attnlab.create_model("resnet18").double().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("name", "attention", "expected"),
    [
        ("resnet18", None, 11_689_512),
        ("resnet18", "se", 11_778_592),
        ("resnet18", "simam", 11_689_512),
        ("resnet50", None, 25_557_032),
        ("resnet50", "se", 28_088_024),
        ("resnet34", None, 21_797_672),
        ("resnet101", None, 44_549_160),
    ],
)
def test_parameter_counts_match_the_papers(name, attention, expected):
    assert sum(p.numel() for p in attnlab.create_model(name, attention=attention).parameters()) == expected


def test_bam_resnet50_is_about_25_92m_and_cbam_resnet18_11_78m():
    bam = sum(p.numel() for p in attnlab.create_model("resnet50", attention="bam").parameters())
    assert round(bam / 1e6, 2) == 25.92
    cbam = sum(p.numel() for p in attnlab.create_model("resnet18", attention="cbam").parameters())
    assert round(cbam / 1e6, 2) == 11.78


def directional_derivative(loss_fn, tensors, directions, eps=1e-7):
    """(L(t + εd) − L(t − εd)) / 2ε, the central finite difference along ``directions``."""
    with torch.no_grad():
        for t, d in zip(tensors, directions, strict=True):
            t.add_(eps * d)
        plus = loss_fn()
        for t, d in zip(tensors, directions, strict=True):
            t.sub_(2 * eps * d)
        minus = loss_fn()
        for t, d in zip(tensors, directions, strict=True):
            t.add_(eps * d)
    return ((plus - minus) / (2 * eps)).item()


# resnet18 with each module; resnet50 where its Bottleneck builds a module otherwise, in place of its strided 3×3 conv
# (resnet34 and resnet101 repeat the same blocks; test_attention_adds_only_attn_keys_at_the_papers_places checks them)
@pytest.mark.parametrize(
    ("model", "attention"), [("resnet18", a) for a in SAMPLE] + [("resnet50", a) for a in ("sk", "splat", "mhsa")]
)
def test_every_model_with_attention_has_the_gradients_of_finite_differences(model, attention):
    """Training mode, float64, a tiny input: autograd's gradients of the attention's parameters (of the input for
    SimAM, which has none) are those of the loss: along a random direction d, g·d equals the central difference to
    1e-6 of |g||d|. The parameters' gradients flow back through every later attention module to its input.

    The ReLUs become SiLUs: among thousands of ReLUs some unit crosses zero within ±ε and the finite difference of
    the kinked loss is off by percents. Batch 4, not 2: BN over two values of a pooled vector (SK's, split
    attention's) is near-singular, and ε² times its curvature exceeds the tolerance."""
    torch.manual_seed(0)
    m = attnlab.create_model(model, num_classes=5, attention=attention, stem="cifar", in_chans=1).double().train()
    for parent in list(m.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, child_name, torch.nn.SiLU())
    attn = [p for n, p in m.named_parameters() if ".attn." in f".{n}"]
    assert bool(attn) == (attention != "simam")
    with torch.no_grad():  # off the zero-initialized scales (non-local's BN, GC's last conv), so every weight acts
        for p in attn:
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(4, 1, 12, 10, dtype=torch.float64, requires_grad=True)  # stages at 12×10, 6×5, 3×3, 2×2

    def loss_fn():
        return m(x).logsumexp(dim=1).mean()

    loss_fn().backward()
    tensors = attn or [x]
    directions = [torch.randn_like(t) for t in tensors]
    analytic = sum((t.grad * d).sum() for t, d in zip(tensors, directions, strict=True)).item()
    scale = math.sqrt(sum(t.grad.square().sum().item() for t in tensors)) * math.sqrt(
        sum(d.square().sum().item() for d in directions)
    )
    assert scale > 1e-3  # the loss depends on them
    assert abs(analytic - directional_derivative(loss_fn, tensors, directions)) <= 1e-6 * scale


def torchvision_with_attention_by_hand(ours):
    """torchvision's resnet18 with ``ours``' backbone weights and its attention modules put where the documentation
    of models/resnet.py says, with hooks: "block" on bn2's output, "nonlocal" on the block's output, "conv" in place
    of conv2 and bn2, "stage" on the stage's output."""
    tv = torchvision.models.resnet18(num_classes=ours.num_classes).double().eval()
    backbone = {k: v for k, v in ours.state_dict().items() if "attn" not in k.split(".")}
    missing, unexpected = tv.load_state_dict(backbone, strict=False)
    assert not unexpected and all(k.split(".")[2] in ("conv2", "bn2") for k in missing)
    for s in range(1, 5):
        for blk, tv_blk in zip(getattr(ours, f"layer{s}"), getattr(tv, f"layer{s}"), strict=True):
            where, attn = getattr(blk, "attn_at", None), getattr(blk, "attn", None)
            if where == "block":
                tv_blk.bn2.register_forward_hook(lambda mod, args, out, a=attn: a(out))
            elif where == "nonlocal":
                tv_blk.register_forward_hook(lambda mod, args, out, a=attn: a(out))
            elif where == "conv":
                tv_blk.conv2, tv_blk.bn2 = attn, torch.nn.Identity()
        if "attn" in ours._modules and f"layer{s}" in ours.attn:
            getattr(tv, f"layer{s}").register_forward_hook(lambda mod, args, out, a=ours.attn[f"layer{s}"]: a(out))
    return tv


@pytest.mark.parametrize(
    ("attention", "places"),
    [
        ("cbam", {f"layer{s}.{b}": "block" for s in range(1, 5) for b in range(2)}),
        ("bam", {"attn.layer1": "stage", "attn.layer2": "stage", "attn.layer3": "stage"}),
        ("sk", {f"layer{s}.{b}": "conv" for s in range(1, 5) for b in range(2)}),
        ("non_local", {"layer2.1": "nonlocal", "layer3.1": "nonlocal"}),
    ],
)
def test_imagenet_stem_model_is_torchvision_with_the_attention_at_its_place(attention, places):
    """ImageNet stem at 64×48 (layer4 at 2×2): the logits are torchvision's resnet18, same weights, with the
    attention inserted by hand at the documented place."""
    torch.manual_seed(0)
    ours = attnlab.create_model("resnet18", num_classes=3, attention=attention).double().eval()
    with torch.no_grad():
        for n, p in ours.named_parameters():
            if "attn" in n.split("."):
                p.add_(0.1 * torch.randn_like(p))
    found = {f"layer{s}.{b}": blk.attn_at for s in range(1, 5) for b, blk in enumerate(getattr(ours, f"layer{s}"))}
    found = {k: v for k, v in found.items() if v is not None}
    if "attn" in ours._modules:
        found |= {f"attn.{k}": "stage" for k in ours.attn}
    assert found == places
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    with torch.no_grad():
        y = ours(x)
        torch.testing.assert_close(y, torchvision_with_attention_by_hand(ours)(x), rtol=0, atol=1e-10)
        plain = torchvision.models.resnet18(num_classes=3).double().eval()
        plain.load_state_dict({k: v for k, v in ours.state_dict().items() if k in plain.state_dict()}, strict=False)
        assert (y - plain(x)).abs().max() > 1e-3  # the attention changes the logits: the comparison sees it


def attn_keys(model):
    return [k for k in model.state_dict() if "attn" in k.split(".")]


@pytest.mark.parametrize(
    ("attention", "placement", "where"),
    [
        ("se", None, "layer{s}.{b}.attn."),  # every block
        ("bam", None, "attn.layer{s}."),  # between stages
        ("non_local", None, "layer{s}.{b}.attn."),
        ("sk", None, "layer{s}.{b}.attn."),
    ],
)
def test_attention_adds_only_attn_keys_at_the_papers_places(attention, placement, where):
    plain = set(attnlab.create_model("resnet50").state_dict())
    m = attnlab.create_model("resnet50", attention=attention, placement=placement)
    keys = set(m.state_dict())
    added = keys - plain
    assert added and all("attn" in k.split(".") for k in added)
    places = {".".join(k.split(".")[:3]) if k.startswith("layer") else ".".join(k.split(".")[:2]) for k in added}
    if attention in ("se", "sk"):
        assert len(places) == 16  # all 3 + 4 + 6 + 3 blocks
    if attention == "bam":
        assert places == {"attn.layer1", "attn.layer2", "attn.layer3"}
    if attention == "non_local":  # 5 blocks: every other block of res3 and res4, as the paper
        assert places == {"layer2.1.attn", "layer2.3.attn", "layer3.1.attn", "layer3.3.attn", "layer3.5.attn"}
    if attention == "sk":  # the 3×3 conv and its BN are gone, replaced by the branch module
        assert not any(k.startswith("layer1.0.conv2") or k.startswith("layer1.0.bn2") for k in keys)
    else:
        assert plain <= keys


def test_explicit_placement_and_stages_override_the_paper():
    m = attnlab.create_model("resnet18", attention="cbam", placement="stage", stages=(2, 3))
    assert {k.split(".")[1] for k in attn_keys(m)} == {"layer2", "layer3"}
    m = attnlab.create_model("resnet18", attention="se", stages=(4,))
    assert {k.split(".")[0] for k in attn_keys(m)} == {"layer4"}
    mhsa = attnlab.create_model("resnet50", attention="mhsa")  # BoTNet: the last stage only
    assert {k.split(".")[0] for k in attn_keys(mhsa)} == {"layer4"}
    custom = attnlab.create_model(
        "resnet18", attention=attnlab.get_attention("eca"), attention_kwargs={"kernel_size": 3}
    )
    assert custom.layer1[0].attn.kernel_size == 3


@pytest.mark.parametrize("attention", SAMPLE + ["danet", "a2"])
def test_load_torchvision_weights_leaves_only_attention_at_init(attention, tmp_path):
    tv = torchvision.models.resnet50()
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    m = attnlab.create_model("resnet50", attention=attention)
    left = load_torchvision_weights(m, path)
    assert bool(left) == (attention != "simam")  # SimAM has no parameters to leave
    assert all("attn" in k.split(".") for k in left)
    for k, v in m.state_dict().items():
        if k not in left:
            torch.testing.assert_close(v, tv.state_dict()[k])


def test_load_skips_fc_and_stem_when_they_differ(tmp_path):
    from safetensors.torch import save_file

    tv = torchvision.models.resnet18()
    path = tmp_path / "resnet18.safetensors"
    save_file(tv.state_dict(), path)
    m = attnlab.create_model("resnet18", num_classes=10, attention="cbam", stem="cifar", in_chans=1)
    left = load_torchvision_weights(m, path)
    assert {"fc.weight", "fc.bias", "conv1.weight"} <= set(left)
    assert all(k in ("fc.weight", "fc.bias", "conv1.weight") or "attn" in k.split(".") for k in left)
    torch.testing.assert_close(m.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)


@pytest.mark.parametrize("prefix", ["module.", "model."])
def test_load_unwraps_ddp_and_checkpoint_prefixes(prefix, tmp_path):
    """DDP's ``module.`` and a checkpoint's ``model.`` (an attnlab run's best.safetensors) are unwrapped."""
    from safetensors.torch import save_file

    tv = torchvision.models.resnet18()
    path = tmp_path / "wrapped.safetensors"
    save_file({prefix + k: v for k, v in tv.state_dict().items()}, path)
    m = attnlab.create_model("resnet18", attention="se")
    assert all("attn" in k.split(".") for k in load_torchvision_weights(m, path))
    torch.testing.assert_close(m.layer2[1].conv1.weight, tv.layer2[1].conv1.weight)


def test_load_adapts_a_stem_that_differs_in_its_input_channels_only():
    tv = torchvision.models.resnet18()
    gray = attnlab.create_model("resnet18", num_classes=10, in_chans=1)
    assert "conv1.weight" not in load_torchvision_weights(gray, tv.state_dict())
    torch.testing.assert_close(gray.conv1.weight, tv.conv1.weight.sum(1, keepdim=True))  # RGB summed
    rgb = attnlab.create_model("resnet18", num_classes=10)
    load_torchvision_weights(rgb, gray.state_dict())
    x = torch.rand(1, 1, 32, 32)  # a gray image copied into RGB: the same stem response
    torch.testing.assert_close(rgb.conv1(x.expand(1, 3, 32, 32)), gray.conv1(x))


def test_load_refuses_another_depth_with_a_clear_error():
    m = attnlab.create_model("resnet18")
    with pytest.raises(ValueError, match="shapes differ.*layer1.0.conv1.weight"):
        load_torchvision_weights(m, torchvision.models.resnet50().state_dict())
    with pytest.raises(ValueError, match="no place in the model"):
        load_torchvision_weights(m, torchvision.models.resnet34().state_dict())
    with pytest.raises(FileNotFoundError, match="state_dict_or_path"):
        load_torchvision_weights(m, "/nonexistent/weights.pth")


def test_fine_tuning_a_pretrained_backbone_with_cbam_added():
    """The user's path: torchvision weights + CBAM; at init CBAM only rescales, so features stay related."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    m = attnlab.create_model("resnet18", num_classes=1000, attention="cbam")
    load_torchvision_weights(m, tv.state_dict())
    optimizer = torch.optim.SGD(m.parameters(), lr=0.01)
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([1, 2, 3, 4])
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stem": "tiny"}, "stem"),
        ({"num_classes": 0}, "num_classes"),
        ({"attention": "cbma"}, "did you mean 'cbam'"),
        ({"attention": "se", "placement": "everywhere"}, "placement"),
        ({"attention": "se", "stages": (0, 5)}, "stages"),
        ({"placement": "block"}, "without an attention"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        attnlab.create_model("resnet18", **kwargs)


def test_model_registry():
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "unet", "res_attention_unet"} <= set(attnlab.list_models())
    with pytest.raises(ValueError, match="did you mean 'resnet18'"):
        attnlab.create_model("resnet81")
    with pytest.raises(TypeError):
        attnlab.create_model("resnet18", not_an_argument=1)
