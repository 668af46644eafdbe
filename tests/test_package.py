"""The package's entry points: `python -m attnlab`, the console script, the public names."""

import dataclasses
import inspect
import subprocess
import sys

import pytest

import attnlab
from attnlab._names import Registry


def params(fn):
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(fn).parameters.values()]


def test_public_api_has_the_signatures_of_the_design():
    """DESIGN.md's public API is a contract: names, argument order, keyword-only-ness and defaults."""
    kw, pos, empty = "KEYWORD_ONLY", "POSITIONAL_OR_KEYWORD", inspect.Parameter.empty
    assert params(attnlab.scaled_dot_product_attention) == [
        ("q", pos, empty),
        ("k", pos, empty),
        ("v", pos, empty),
        ("attn_mask", pos, None),
        ("key_padding_mask", kw, None),
        ("dropout_p", kw, 0.0),
        ("is_causal", kw, False),
        ("scale", kw, None),
        ("enable_gqa", kw, False),
        ("return_weights", kw, False),
        ("backend", kw, "auto"),
    ]
    mha = params(attnlab.MultiHeadAttention.__init__)[1:]
    assert mha[:2] == [("embed_dim", pos, empty), ("num_heads", pos, empty)]
    expected = {"dropout": 0.0, "bias": True, "kdim": None, "vdim": None, "batch_first": True, "num_kv_heads": None}
    assert {n: d for n, k, d in mha[2:] if n in expected and k == kw} == expected
    forward = {n: (k, d) for n, k, d in params(attnlab.MultiHeadAttention.forward)}
    assert forward["need_weights"] == (kw, False) and forward["average_attn_weights"] == (kw, True)
    assert forward["key"] == (pos, None) and forward["is_causal"] == (kw, False)
    resnet = {n: (k, d) for n, k, d in params(attnlab.models.ResNet.__init__)}  # what create_model passes on
    defaults = {"num_classes": 1000, "attention": None, "attention_kwargs": None, "placement": None}
    for name, default in {**defaults, "stem": "imagenet", "in_chans": 3}.items():
        assert resnet[name] == (kw, default), name
    assert params(attnlab.list_attentions) == [("category", pos, None)]
    assert [p[0] for p in params(attnlab.models.load_torchvision_weights)] == ["model", "state_dict_or_path"]


def test_a_type_error_from_inside_is_a_bug_with_its_traceback(monkeypatch):
    from attnlab.cli import main
    from attnlab.commands import COMMANDS

    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setitem(COMMANDS._items, "formula", dataclasses.replace(COMMANDS.get("formula"), run=broken))
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["formula"])


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "attnlab", "--help"], capture_output=True, text=True, check=True)
    assert "formula" in result.stdout


def test_registry_names_what_holds_a_name_registered_twice():
    def build():
        pass

    models = Registry("model", "attnlab list models")
    models.add("resnet", build)
    with pytest.raises(ValueError, match=r"model 'resnet' is already registered \(by .*build\)"):
        models.add("resnet", print)
    with pytest.raises(ValueError, match=r"model: unknown name 'resnt'; did you mean 'resnet'\? see all"):
        models.get("resnt")
