"""The text task's picture: test texts with each token shaded by the attention it receives and by the routing
coefficients of the predicted class, as one HTML page (CJK renders in any browser), and a confusion matrix as a
PNG beside it.

The page draws what it is given: the model is read through its public ``forward`` and ``features`` (and the
``gate`` convention for the routing), the confusion matrix is passed in (the task's metric computes it).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ...models.text_ensemble import members_of
from ...report.maps import capture_gates
from ...report.plots import save_figure

__all__ = ["attention_page", "plot_confusion", "token_weights", "write_text_attention"]

ROUTING_GATE = "head.gate"  # the capsule head's coupling coefficients (B, L, P, K), as the gate convention names it


@torch.no_grad()
def token_weights(model: nn.Module, ids: Tensor) -> tuple[np.ndarray, np.ndarray | None, Tensor]:
    """For one text (1, L): the attention each token receives (heads, queries and layers averaged; sums to 1
    with a class token's share), the predicted class's routing coefficients per token (capsule head; else
    None), and the scores (K,). An ensemble: its scores, each of the two others the mean over its networks."""
    outputs, maps_of, received = [], [], []
    for member in members_of(model):  # one forward each for the scores and gates, one for the weights
        with capture_gates(member) as maps:
            outputs.append(member(ids)[0])
        maps_of.append(maps)
        _, _, weights = member.features(ids, need_weights=True)
        r = torch.stack([w.mean(dim=(1, 2)) for w in weights]).mean(0)[0]  # (L',)
        received.append(r[r.shape[0] - ids.shape[1] :].numpy())  # the tokens' (a class token comes first)
    scores = torch.stack(outputs).mean(0)  # the ensemble's eval scores (one network: its own)
    k = int(scores.argmax())
    # (L, P, K): over each token's primary capsules
    routing = [maps[ROUTING_GATE][0, :, :, k].sum(-1).numpy() for maps in maps_of if ROUTING_GATE in maps]
    return np.mean(received, axis=0), np.mean(routing, axis=0) if routing else None, scores


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


def attention_page(title: str, rows: list[str], png: str) -> str:
    """The HTML page around the table rows (each ``<tr>…</tr>``), linking the confusion matrix ``png``."""
    png = html.escape(png)
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
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


def write_text_attention(
    model: nn.Module,
    texts: list[tuple[str, Tensor, int]],
    tokenize: Callable[[str], list[str]],
    classes: list[str],
    confusion: np.ndarray,
    out: Path,
    head: str,
) -> Path:
    """``out`` (.html): each (raw text, its ids (L,), true label) shaded; ``out`` with .png: ``confusion``."""
    model.eval()
    rows = []
    for text, ids, label in texts:
        ids = ids[None]
        received, routing, scores = token_weights(model, ids)
        pred = int(scores.argmax())
        tokens = tokenize(text)[: ids.shape[1]]
        tokens += ["<unk>"] * (ids.shape[1] - len(tokens))
        ok = "✓" if pred == label else "✗"
        cells = [
            f"<td>{classes[label]}</td><td>{classes[pred]} {ok}</td>",
            f"<td>{_shade(tokens, received, '255, 120, 0')}</td>",
            f"<td>{_shade(tokens, routing, '0, 110, 255')}</td>" if routing is not None else "<td>—</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    png = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(attention_page(f"{head} head: attention", rows, png.name), encoding="utf-8")
    plot_confusion(np.asarray(confusion, dtype=np.int64), classes, png, f"{head} head: test confusion")
    return out
