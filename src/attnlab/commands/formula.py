"""``attnlab formula``: the formula worked on three tokens, then why it divides by √d_k, measured."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from torch import Tensor

from ..formula import DEFAULT_DIMS, scaling_study, worked_example
from .base import Command, register_command

TOKENS = ("t1", "t2", "t3")


def _matrix(title: str, m: Tensor, rows: tuple[str, ...], cols: tuple[str, ...], *, sums: bool = False) -> Group:
    table = Table(show_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("")
    for c in cols:
        table.add_column(c, justify="right")
    if sums:
        table.add_column("row sum", justify="right", style="dim")
    for label, row in zip(rows, m.tolist(), strict=True):
        cells = [f"{x + 0.0:.4f}" for x in row] + ([f"{sum(row):.4f}"] if sums else [])  # + 0.0: no "-0.0000"
        table.add_row(label, *cells)
    return Group(Text(title, style="bold"), table)


def _print_worked_example(console: Console, d_k: int, seed: int) -> None:
    ex = worked_example(d_k=d_k, seed=seed)
    dims = tuple(f"d{i}" for i in range(d_k))
    keys = tuple(f"k·{t}" for t in TOKENS)
    console.rule(f"1. The formula on three tokens, d_k = {d_k}")
    console.print("Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V     (Vaswani et al., 2017, Eq. 1)\n")
    console.print(_matrix("Q  queries: what each token looks for", ex.q, TOKENS, dims))
    console.print(_matrix("K  keys: what each token offers to be found by", ex.k, TOKENS, dims))
    console.print(_matrix("V  values: what each token passes on when attended", ex.v, TOKENS, dims))
    console.print(_matrix("Q Kᵀ  scores: similarity of each query to each key", ex.scores, TOKENS, keys))
    console.print(_matrix(f"Q Kᵀ / √d_k  scaled scores (√{d_k} = {d_k**0.5:g})", ex.scaled, TOKENS, keys))
    console.print(
        _matrix(
            "softmax(row)  attention weights: non-negative, each row sums to 1", ex.weights, TOKENS, keys, sums=True
        )
    )
    console.print(
        _matrix("weights @ V  output: each row a weighted average of the value rows", ex.output, TOKENS, dims)
    )
    diff = (ex.output - ex.library_output).abs().max().item()
    console.print(f"attnlab.scaled_dot_product_attention gives the same output (max |difference| = {diff:.1e}).\n")


def _print_scaling(console: Console, dims: tuple[int, ...], num_keys: int, seed: int) -> list:
    rows = scaling_study(dims, num_keys=num_keys, seed=seed)
    console.rule("2. Why divide by √d_k: measured on random unit-variance q, k")
    console.print(
        f"q·k sums d_k products of unit variance, so its std grows like √d_k. Softmax over {num_keys} keys "
        "of such scores puts nearly all weight on one key, and its Jacobian diag(p) − p pᵀ, through which "
        "every gradient passes, vanishes. Dividing by √d_k keeps the std at 1 for every d_k.\n"
    )
    table = Table(show_edge=False, box=box.SIMPLE_HEAD)
    for col in ("d_k", "√d_k", "std raw", "std scaled", "max weight raw", "max weight scaled", "‖J‖ raw", "‖J‖ scaled"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.d_k),
            f"{r.d_k**0.5:.1f}",
            f"{r.std_raw:.2f}",
            f"{r.std_scaled:.3f}",
            f"{r.max_weight_raw:.3f}",
            f"{r.max_weight_scaled:.3f}",
            f"{r.jacobian_raw:.4f}",
            f"{r.jacobian_scaled:.4f}",
        )
    console.print(table)
    return rows


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--d-k", type=int, default=4, help="feature size of the worked example (default 4)")
    p.add_argument(
        "--dims",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=DEFAULT_DIMS,
        help="comma-separated d_k values of the scaling study (default 4,16,64,256,1024)",
    )
    p.add_argument("--keys", type=int, default=16, help="keys each query attends over in the study (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the scaling study to this image")


def run(args: argparse.Namespace) -> int:
    if args.d_k <= 0:
        raise ValueError(f"--d-k: expected a positive integer, got {args.d_k}")
    if args.keys < 2 or any(d <= 0 for d in args.dims):
        raise ValueError(f"--keys, --dims: expected keys >= 2 and positive dims, got {args.keys}, {args.dims}")
    console = Console()
    _print_worked_example(console, args.d_k, args.seed)
    rows = _print_scaling(console, args.dims, args.keys, args.seed)
    if args.plot:
        from ..report.plots import plot_scaling  # matplotlib only when a plot is asked for

        console.print(f"plot written to {plot_scaling(rows, args.plot)}")
    return 0


COMMAND = register_command(
    Command("formula", "worked example of the formula and of why it divides by √d_k", add_arguments, run)
)
