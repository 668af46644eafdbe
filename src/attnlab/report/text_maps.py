"""A text run drawn: test texts with each character shaded by the attention it receives and by the routing
coefficients of the predicted class, as one HTML page (CJK renders in any browser), and the confusion
matrix as a PNG beside it."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .maps import capture_gates
from .plots import save_figure

__all__ = ["token_weights", "write_text_attention", "plot_confusion"]


@torch.no_grad()
def token_weights(model: nn.Module, ids: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None, torch.Tensor]:
    """For one text (1, L): attention each token receives (heads, queries and layers averaged; sums to 1),
    the predicted class's routing coefficients per token (capsule head; else None), and the scores."""
    h, pad, weights = model.features(ids, need_weights=True)
    received = torch.stack([w.mean(dim=(1, 2)) for w in weights]).mean(0)[0]  # (L',)
    with capture_gates(model) as maps:
        scores = model.head(h, pad)
    k = int(scores[0].argmax())
    offset = 1 if getattr(model, "cls", None) is not None else 0
    received = received[offset:]
    routing = None
    if "head.gate" in maps:
        routing = maps["head.gate"][0, :, :, k].sum(-1).numpy()  # (L, P, K): over each token's primary capsules
    return received.numpy(), routing, scores[0]


def _shade(tokens: list[str], weights: np.ndarray, colour: str) -> str:
    peak = max(float(weights.max()), 1e-12)
    spans = []
    for t, w in zip(tokens, weights, strict=True):
        alpha = 0.85 * float(w) / peak
        spans.append(f'<span style="background: rgba({colour}, {alpha:.2f})" title="{w:.4f}">{html.escape(t)}</span>')
    return "".join(spans)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> Path:
    fig = Figure(figsize=(1.2 * len(classes) + 3, 1.2 * len(classes) + 2.5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_figure(fig, path)


def write_text_attention(model: nn.Module, data: Any, meta: dict, options: Any, out: Path, count: int) -> Path:
    """``out`` (.html): the first ``count`` test texts shaded; ``out`` with .png: the confusion matrix."""
    from ..data.text import TOKENIZERS

    model.eval()
    tokenize, classes = TOKENIZERS.get(options.tokenizer), meta["classes"]
    source = data.source
    rows, confusion = [], np.zeros((len(classes), len(classes)), np.int64)
    for i in range(len(data.test)):
        ids, label = data.test[i]
        ids = ids[None]
        if i < count:
            received, routing, scores = token_weights(model, ids)
            pred = int(scores.argmax())
            tokens = tokenize(source.test_texts[i])[: ids.shape[1]]
            tokens += ["<unk>"] * (ids.shape[1] - len(tokens))
            ok = "✓" if pred == label else "✗"
            cells = [
                f"<td>{classes[label]}</td><td>{classes[pred]} {ok}</td>",
                f"<td>{_shade(tokens, received, '255, 120, 0')}</td>",
            ]
            cells.append(f"<td>{_shade(tokens, routing, '0, 110, 255')}</td>" if routing is not None else "<td>—</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        else:
            with torch.no_grad():
                pred = int(model(ids)[0].argmax())
        confusion[label, pred] += 1
    png = html.escape(out.with_suffix(".png").name)
    page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(options.head)} head: attention</title>
<style>body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; }}
td {{ border-bottom: 1px solid #ddd; padding: 0.4em; vertical-align: top; font-size: 15px; line-height: 1.8; }}</style>
</head><body>
<h1>What the model attends to</h1>
<p>Orange: the attention each character receives (heads, queries and layers averaged). Blue: the routing
coefficients of the predicted class's capsule, summed over each character's primary capsules. Hover a character
for its value. Confusion matrix over the whole test split: <a href="{png}">{png}</a>.</p>
<table><tr><th>true</th><th>predicted</th><th>attention received</th><th>routing to the predicted class</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    plot_confusion(confusion, classes, out.with_suffix(".png"), f"{options.head} head: test confusion")
    return out
