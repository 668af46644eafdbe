"""attnlab's outlook attention against timm's VOLO (``timm.models.volo``) with the same weights, copied both ways.

attnlab's plug-in is the first half of VOLO's Outlooker block on (B, C, H, W): x + OutlookAttention(LayerNorm(x)).
Its twin is timm's Outlooker's ``norm1`` and ``attn`` on the permuted (B, H, W, C) map (the MLP half left out).
"""

import pytest
import torch

import attnlab

volo = pytest.importorskip("timm.models.volo")

F64 = torch.float64
# attnlab key -> the key of the same tensor in timm's Outlooker (same shapes: both use nn.Linear / nn.LayerNorm)
KEYS = {"norm": "norm1", "v": "attn.v", "attn": "attn.attn", "proj": "attn.proj"}


def timm_key(key):
    head, _, tail = key.partition(".")
    return f"{KEYS[head]}.{tail}"


def twin(ours):
    """timm's Outlooker at attnlab's configuration: heads, kernel k, padding k // 2, stride."""
    C = ours.norm.normalized_shape[0]
    k = ours.kernel_size
    return volo.Outlooker(C, k, k // 2, stride=ours.stride, num_heads=ours.num_heads, qkv_bias=ours.v.bias is not None)


def timm_first_half(outlooker, x):
    t = x.permute(0, 2, 3, 1)
    return (t + outlooker.attn(outlooker.norm1(t))).permute(0, 3, 1, 2)


def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in module.state_dict().items():
            r = torch.randn(t.shape, generator=g, dtype=F64)
            t.copy_(
                r / t.shape[-1] ** 0.5 if t.dim() > 1 else (1 + 0.2 * r if key.endswith("norm.weight") else 0.2 * r)
            )
    return module


CASES = [(64, {}), (256, {}), (32, {}), (96, {"stride": 2}), (64, {"kernel_size": 5, "num_heads": 4, "stride": 3})]


@pytest.mark.parametrize(("channels", "kwargs"), CASES)
@pytest.mark.parametrize("direction", ["to_timm", "to_attnlab"])
def test_outlook_equals_timms_outlooker_first_half_with_copied_weights(channels, kwargs, direction):
    torch.manual_seed(0)
    ours = attnlab.create_attention("outlook", channels, dtype=F64, **kwargs)
    theirs = twin(ours).double()
    if direction == "to_timm":
        sd = randomize(ours).state_dict()
        theirs.load_state_dict(
            {timm_key(k): v for k, v in sd.items()}
            | {k: v for k, v in theirs.state_dict().items() if k.startswith(("norm2", "mlp"))}
        )
    else:
        sd = randomize(theirs, seed=1).state_dict()
        ours.load_state_dict({k: sd[timm_key(k)] for k in ours.state_dict()}, strict=True)
    x = torch.randn(2, channels, 7, 5, dtype=F64)
    for train in (False, True):
        ours.train(train), theirs.train(train)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, y2 = ours(x1), timm_first_half(theirs, x2)
        torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
        g = torch.randn_like(y1)
        ours.zero_grad(), theirs.zero_grad()
        y1.backward(g), y2.backward(g)
        torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-12)
        theirs_grads = dict(theirs.named_parameters())
        for k, p in ours.named_parameters():
            torch.testing.assert_close(p.grad, theirs_grads[timm_key(k)].grad, rtol=0, atol=1e-12)


def test_outlook_in_float32_is_timms_to_1e_6():
    ours = attnlab.create_attention("outlook", 64)
    theirs = twin(ours)
    theirs.load_state_dict({timm_key(k): v for k, v in ours.state_dict().items()}, strict=False)
    x = torch.randn(2, 64, 9, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), timm_first_half(theirs, x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("dim", "heads"), [(192, 6), (256, 8), (384, 12)])  # VOLO-D1, D2/D3, D4/D5 stage 1
def test_outlook_has_timms_parameters_at_volos_settings(dim, heads):
    ours = attnlab.create_attention("outlook", dim)
    assert ours.num_heads == heads  # heads of 32 channels: VOLO's
    outlooker = volo.Outlooker(dim, 3, 1, num_heads=heads)
    expected = sum(p.numel() for m in (outlooker.norm1, outlooker.attn) for p in m.parameters())
    assert sum(p.numel() for p in ours.parameters()) == expected
    bare = volo.OutlookAttention(dim, heads)  # timm's OutlookAttention alone: ours without the LayerNorm's 2C
    assert sum(p.numel() for n, p in ours.named_parameters() if not n.startswith("norm")) == sum(
        p.numel() for p in bare.parameters()
    )
