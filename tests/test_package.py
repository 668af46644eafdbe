"""The package's entry points: `python -m attnlab`, the console script, the public names."""

import subprocess
import sys

import attnlab


def test_public_api():
    for name in ("scaled_dot_product_attention", "MultiHeadAttention", "SelfAttention2d"):
        assert name in attnlab.__all__ and hasattr(attnlab, name)


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "attnlab", "--help"], capture_output=True, text=True, check=True)
    assert "formula" in result.stdout
