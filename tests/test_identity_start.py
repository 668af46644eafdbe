"""``attention_init="identity"``: every module added to a pretrained ResNet starts as the identity, then learns."""

import pytest
import torch
import torchvision
from torch import nn

import attnlab
from attnlab.cli import main
from attnlab.engine.run_folder import load_run
from attnlab.models import load_torchvision_weights
from attnlab.models.identity_start import IdentityStart
from attnlab.models.placement import paper_place

NAMES = attnlab.list_attentions()


def clips(name):
    return {"attention_kwargs": {"num_frames": 1}} if attnlab.attention_info(name).per_frame else {}


def pretrained(depth=18, num_classes=10):
    """A torchvision ResNet in its own layout, with weights and BN statistics away from their initial values."""
    torch.manual_seed(0)
    tv = getattr(torchvision.models, f"resnet{depth}")(num_classes=num_classes)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 2)
                m.weight.normal_(1, 0.2), m.bias.normal_(0, 0.1)
    return tv.eval()


@pytest.fixture(scope="module")
def resnet18_and_logits():
    tv = pretrained()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        return tv, x, tv(x)


@pytest.mark.parametrize("name", NAMES)
def test_every_module_starts_with_the_pretrained_logits(name, resnet18_and_logits):
    tv, x, logits = resnet18_and_logits
    m = attnlab.create_model("resnet18", num_classes=10, attention=name, attention_init="identity", **clips(name))
    left = load_torchvision_weights(m, tv.state_dict())
    assert left and all("attn" in k.split(".") for k in left)  # every torchvision key loaded, conv2 too
    wrappers = [w for w in m.modules() if isinstance(w, IdentityStart)]
    assert wrappers and all(w.alpha.item() == 0 for w in wrappers)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), logits, rtol=0, atol=1e-5)


def test_a_module_in_place_of_the_3x3_conv_is_blended_in_from_that_conv():
    """SK in a ResNet-50 bottleneck (its paper's "conv" place, with the stride): conv2 + bn2 stay and load."""
    tv = pretrained(50)
    m = attnlab.create_model("resnet50", num_classes=10, attention="sk", attention_init="identity")
    assert paper_place("sk").placement == "conv" and hasattr(m.layer2[0], "conv2")
    assert load_torchvision_weights(m, tv.state_dict())  # the SK weights only
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), tv(x), rtol=0, atol=1e-5)
    paper = attnlab.create_model("resnet50", num_classes=10, attention="sk")
    assert not hasattr(paper.layer2[0], "conv2")  # the paper's init: SK replaces the conv


def test_the_blend_learns_alpha_first_then_the_module():
    torch.manual_seed(0)
    m = attnlab.create_model("resnet18", num_classes=4, attention="cbam", attention_init="identity", stem="cifar")
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.SGD(m.parameters(), lr=0.1)
    wrapper = m.layer1[0].attn
    nn.functional.cross_entropy(m(x), y).backward()
    assert wrapper.alpha.grad.abs() > 0  # α moves at the first step
    assert all(p.grad.abs().max() == 0 for p in wrapper.attention.parameters())  # the module's weights: not yet
    optimizer.step()
    optimizer.zero_grad()
    nn.functional.cross_entropy(m(x), y).backward()
    assert wrapper.alpha.item() != 0
    assert any(p.grad.abs().max() > 0 for p in wrapper.attention.parameters())  # and from the second step they do


def test_identity_start_equations():
    inner = nn.Conv2d(2, 2, 1).double()
    blend = IdentityStart(inner)
    assert blend.alpha.dtype == torch.float64 and blend.alpha.item() == 0
    x, start = torch.randn(1, 2, 3, 3, dtype=torch.float64), torch.randn(1, 2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        blend.alpha.fill_(0.25)
        torch.testing.assert_close(blend(x), 0.75 * x + 0.25 * inner(x))
        torch.testing.assert_close(blend(x, start), 0.75 * start + 0.25 * inner(x))


def test_bad_attention_init_names_the_argument():
    with pytest.raises(ValueError, match="attention_init: expected one of"):
        attnlab.create_model("resnet18", attention="se", attention_init="zeros")


def test_fine_tuning_from_a_torchvision_checkpoint_on_the_command_line(tmp_path, capsys):
    """The docs' path: `attnlab train --backbone-weights r18.pth --attention cbam --attention-init identity`."""
    weights = tmp_path / "r18.pth"
    torch.save(pretrained(num_classes=1000).state_dict(), weights)  # an RGB stem, 1000 classes: both adapted
    out = tmp_path / "run"
    args = ["train", "--backbone-weights", str(weights), "--attention", "cbam", "--attention-init", "identity"]
    assert main([*args, "--epochs", "1", "--batch-size", "64", "--train-limit", "128", "--out", str(out)]) == 0
    said = "".join(capsys.readouterr())
    assert (
        f"backbone: {weights} loaded (learning rate × 0.1); at init: 88 attention tensors, fc.bias, fc.weight" in said
    )
    assert "each cbam starts as the identity" in said
    alphas = [w.alpha.item() for w in load_run(out).model.modules() if isinstance(w, IdentityStart)]
    assert len(alphas) == 8 and all(a != 0 for a in alphas)  # each block's blend has learned a weight
    assert main(["train", "--backbone-weights", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "r2")]) != 0
    assert "--backbone-weights: no file at" in capsys.readouterr().err
