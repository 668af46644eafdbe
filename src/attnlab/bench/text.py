"""Benchmark of the text encoder and heads: attnlab's encoder (on ``attnlab.MultiHeadAttention``) against the same
encoder built from ``torch.nn.TransformerEncoderLayer``, and the capsule head against the mean head.

One training step = forward + backward + AdamW on a batch of padded token ids (default 64 texts of lengths
drawn 8-128, the longest 128), CPU, float32, dropout 0.1 on the residual branches in both encoders (torch's
dropout on the attention weights is turned off, as attnlab's layer has none). Interleaved, paired by round.
A fourth model is attnlab's with ``torch.nn.Dropout`` in place of ``attnlab.layers.dropout.Dropout`` (the same
masks' distribution from a cheaper draw): what that lever is worth in a step.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.dropout import Dropout
from ..measure.machine import machine
from ..measure.timing import bracket_meaning, format_ratio, interleaved_samples, paired_ratio
from ..models.text import PAD, TextTransformer


class TorchEncoder(nn.Module):
    """The same model with torch's ``nn.TransformerEncoderLayer`` (pre-norm, GELU) as the encoder layers: the
    embeddings and the head are ``ours``'s."""

    def __init__(self, ours: TextTransformer, dim: int, heads: int, depth: int, dropout: float) -> None:
        super().__init__()
        self.ours = ours
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        layer.self_attn.dropout = 0.0  # as attnlab's layer: dropout on the branches, not on the weights
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, ids: Tensor) -> Tensor:
        m = self.ours
        x, pad = m.embeddings(ids)
        return m.head(m.norm(self.encoder(x, src_key_padding_mask=pad)), pad)


def with_torch_dropout(model: nn.Module) -> nn.Module:
    """``model`` with each ``layers.dropout.Dropout`` replaced by ``nn.Dropout`` of the same p (in place)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))
    return model


def batch_of_texts(batch: int, max_len: int, vocab: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    ids = torch.randint(2, vocab, (batch, max_len), generator=g)
    ids[torch.arange(max_len)[None] >= lengths[:, None]] = PAD
    return ids, torch.randint(0, 2, (batch,), generator=g)


def train_step(model: nn.Module, ids: Tensor, y: Tensor) -> Callable[[], None]:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(ids), y).backward()
        opt.step()

    return step


def run(*, dim: int, depth: int, heads: int, batch: int, max_len: int, rounds: int) -> dict:
    ids, y = batch_of_texts(batch, max_len, 4000)
    common = {"vocab_size": 4000, "num_classes": 2, "dim": dim, "depth": depth, "heads": heads, "max_len": max_len}
    torch.manual_seed(0)
    mean = TextTransformer(head="mean", ngram_buckets=16384, **common)
    torch.manual_seed(0)
    caps = TextTransformer(head="capsule", ngram_buckets=16384, capsules=4, **common)  # the task's head
    torch.manual_seed(0)
    torch_mean = TorchEncoder(TextTransformer(head="mean", ngram_buckets=16384, **common), dim, heads, depth, 0.1)
    torch.manual_seed(0)
    nn_dropout = with_torch_dropout(TextTransformer(head="mean", ngram_buckets=16384, **common))
    fns = {
        "mean": train_step(mean, ids, y),
        "capsule": train_step(caps, ids, y),
        "torch": train_step(torch_mean, ids, y),
        "nn_dropout": train_step(nn_dropout, ids, y),
    }
    t = interleaved_samples(fns, torch.device("cpu"), rounds=rounds, warmup=1)
    return {
        "texts_s": {k: batch / statistics.median(v) for k, v in t.items()},
        "encoder_vs_torch": paired_ratio(t["torch"], t["mean"]),
        "capsule_cost": paired_ratio(t["capsule"], t["mean"]),
        "nn_dropout_cost": paired_ratio(t["nn_dropout"], t["mean"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=96)
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    r = run(
        dim=args.dim, depth=args.depth, heads=args.heads, batch=args.batch, max_len=args.max_len, rounds=args.rounds
    )
    print(
        f"Training step (forward + backward + AdamW), {args.batch} texts padded to {args.max_len}, dim {args.dim}, "
        f"{args.depth} layer(s), {args.heads} heads, {machine()}; median of {args.rounds} interleaved rounds, "
        f"{bracket_meaning(args.rounds)} in "
        "brackets. `python benchmarks/text.py`.\n"
    )
    print("| model | texts/s | ratio |\n|---|---:|---:|")
    s = r["texts_s"]
    print(f"| encoder on torch.nn.TransformerEncoderLayer, mean head | {s['torch']:.0f} | |")
    print(f"| attnlab encoder, mean head | {s['mean']:.0f} | speed / torch's {format_ratio(r['encoder_vs_torch'])} |")
    print(
        f"| attnlab encoder, capsule head | {s['capsule']:.0f} | time / mean head {format_ratio(r['capsule_cost'])} |"
    )
    print(
        f"| attnlab encoder, mean head, torch.nn.Dropout | {s['nn_dropout']:.0f} | "
        f"time / attnlab's Dropout {format_ratio(r['nn_dropout_cost'])} |"
    )
    return 0
