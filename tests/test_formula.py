"""`attnlab formula`: its numbers are the formula's, and the √d_k study measures what it claims."""

import math

import torch

from attnlab.cli import main
from attnlab.formula import scaling_study, worked_example


def test_worked_example_steps_are_the_formula():
    ex = worked_example()
    assert ex.q.shape == ex.k.shape == ex.v.shape == (3, 4)
    torch.testing.assert_close(ex.scores, ex.q @ ex.k.T)
    torch.testing.assert_close(ex.scaled, ex.scores / 2.0)
    torch.testing.assert_close(ex.weights.sum(-1), torch.ones(3, dtype=torch.float64))
    e = torch.exp(ex.scaled[0])
    torch.testing.assert_close(ex.weights[0], e / e.sum())  # softmax by hand
    torch.testing.assert_close(ex.output, ex.weights @ ex.v)
    torch.testing.assert_close(ex.library_output, ex.output)


def test_scaling_study_measures_the_sqrt_dk_effect():
    rows = scaling_study((4, 64, 1024), samples=500)
    for r in rows:
        assert abs(r.std_raw / math.sqrt(r.d_k) - 1) < 0.1
        assert abs(r.std_scaled - 1) < 0.1
    # without scaling the softmax saturates and its Jacobian vanishes; with it, both stay put
    assert rows[-1].max_weight_raw > 0.9 > rows[0].max_weight_raw
    assert rows[-1].jacobian_raw < 0.25 * rows[0].jacobian_raw
    assert max(r.jacobian_scaled for r in rows) < 1.2 * min(r.jacobian_scaled for r in rows)


def test_softmax_jacobian_norm_matches_autograd():
    from attnlab.formula import _softmax_stats

    s = torch.randn(1, 5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, -1), s[0])
    assert math.isclose(_softmax_stats(s)[1], torch.linalg.matrix_norm(jac).item(), rel_tol=1e-12)


def test_cli_formula_prints_and_plots(tmp_path, capsys):
    png = tmp_path / "scaling.png"
    assert main(["formula", "--dims", "4,16", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    for label in ("Q Kᵀ", "softmax", "weights @ V", "std raw", "1.0000"):
        assert label in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refuses_bad_input_without_traceback(capsys):
    assert main(["formula", "--d-k", "0"]) == 2
    assert "--d-k" in capsys.readouterr().err


def test_docs_formula_md_shows_the_numbers_the_command_computes():
    from pathlib import Path

    text = Path(__file__).parents[1].joinpath("docs", "formula.md").read_text().replace("−", "-")
    ex = worked_example()
    for row in ex.output.tolist() + ex.weights.tolist():
        assert " | ".join(f"{x + 0.0:.4f}" for x in row) in text
    for r in scaling_study():
        assert f"| {r.d_k} | {r.d_k**0.5:.1f} | {r.std_raw:.2f} | {r.std_scaled:.3f} | {r.max_weight_raw:.3f} |" in text
