"""ResNets with attention: torchvision parity, the papers' placements and parameter counts, weight loading."""

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


@pytest.mark.parametrize("model", [m for m in attnlab.list_models() if m.startswith("resnet")])
@pytest.mark.parametrize("attention", SAMPLE)
def test_every_model_with_attention_trains_on_tiny_input(model, attention):
    torch.manual_seed(0)
    m = attnlab.create_model(model, num_classes=5, attention=attention, stem="cifar", in_chans=1)
    x = torch.randn(2, 1, 16, 16)
    loss = m(x).logsumexp(dim=1).mean()
    loss.backward()
    assert torch.isfinite(loss)
    attn_grads = [p.grad for n, p in m.named_parameters() if ".attn." in f".{n}"]
    assert all(g is not None and torch.isfinite(g).all() for g in attn_grads)


@pytest.mark.parametrize("attention", ["cbam", "bam", "sk", "non_local"])
def test_imagenet_stem_forward(attention):
    m = attnlab.create_model("resnet18", num_classes=3, attention=attention).eval()
    assert m(torch.randn(1, 3, 64, 48)).shape == (1, 3)


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
