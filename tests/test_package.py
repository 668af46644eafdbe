"""The package's entry points: `python -m attnlab`, the console script, the public names."""

import subprocess
import sys

import pytest

import attnlab
from attnlab._names import Registry


def test_public_api():
    for name in ("scaled_dot_product_attention", "MultiHeadAttention", "SelfAttention2d"):
        assert name in attnlab.__all__ and hasattr(attnlab, name)


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
