"""Text classification: multi-head attention and a capsule network, on real Chinese reviews by default.

Tokens are characters (any script, nothing to install) or jieba's words; the vocabulary is built on the
training split only and saved with the run. Heads: capsule (margin loss), mean and cls (cross-entropy).
Metrics: accuracy and macro-F1 (from a confusion matrix of sums). The classical baseline, TF-IDF of character
1-3-grams + logistic regression (scikit-learn), is fitted on the same training split and scored on the same
test split, in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.text import (
    TEXT_DATA,
    TOKENIZERS,
    UNK,
    TokenizedTexts,
    Vocabulary,
    build_text_data,
    collate_padded,
)
from ..models.registry import create_model, get_model_builder
from ..models.text import HEADS, margin_loss
from .base import Metric, Task, TaskData, option, register_task

__all__ = ["Text", "TextOptions"]


@dataclass
class TextOptions:
    model: str = option("text_transformer", "a registered text model")
    head: str = option("capsule", "capsule (dynamic routing), mean (masked mean pooling) or cls", choices=tuple(HEADS))
    data: str = option("reviews_zh", "reviews_zh, textfile")
    data_dir: str | None = option(None, "textfile: folder with train.csv and val.csv (or .tsv, .jsonl)")
    text_col: str = option("text", "textfile: the text column")
    label_col: str = option("label", "textfile: the label column")
    tokenizer: str = option("char", "char (characters) or jieba (Chinese words)")
    max_len: int = option(128, "texts are cut to this many tokens")
    min_count: int = option(2, "tokens seen fewer times in the training split are unknown")
    dim: int = option(96, "width of the encoder")
    depth: int = option(1, "encoder layers")
    heads: int = option(4, "attention heads")
    bigrams: int = option(16384, "buckets of the hashed n-gram embeddings (0: none)")
    ngrams: int = option(2, "the longest hashed n-gram: 2 (bigrams) or 3 (and trigrams)")
    dropout: float = option(0.3, "dropout on the embeddings and the encoder's branches")
    token_dropout: float = option(0.15, "training texts: each token becomes unknown with this probability")
    orphan: bool = option(False, "capsule head: an orphan class that routing can send background words to")
    capsules: int = option(4, "capsule head: primary capsules per token")

    def __post_init__(self) -> None:
        for name, value, low in (
            ("--max-len", self.max_len, 1),
            ("--min-count", self.min_count, 1),
            ("--dim", self.dim, 4),
            ("--depth", self.depth, 1),
            ("--heads", self.heads, 1),
            ("--capsules", self.capsules, 1),
            ("--bigrams", self.bigrams, 0),
        ):
            if value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if self.bigrams == 1:
            raise ValueError("--bigrams: expected 0 (none) or at least 2 buckets, got 1")
        for name, value in (("--dropout", self.dropout), ("--token-dropout", self.token_dropout)):
            if not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value}")


def encode(texts: list[str], vocab: Vocabulary, tokenizer: str, max_len: int) -> list[list[int]]:
    tokenize = TOKENIZERS.get(tokenizer)
    return [vocab.encode(tokenize(t), max_len) for t in texts]


class _Confusion(Metric):
    """Sums (loss·n, n, confusion K×K): loss, accuracy, macro-F1."""

    def __init__(self, num_classes: int, head: str, training: bool) -> None:
        super().__init__(2 + num_classes**2)
        self.k, self.head, self.training = num_classes, head, training

    def update(self, output: Tensor, target: Tensor, loss: Tensor | None) -> None:
        scores = output.float()
        if loss is None:
            loss = margin_loss(scores, target) if self.head == "capsule" else F.cross_entropy(scores, target)
        n = target.shape[0]
        self.sums[:2] += torch.tensor([loss.item() * n, n], dtype=torch.float64)
        pairs = (target * self.k + scores.argmax(1)).cpu()
        self.sums[2:] += torch.bincount(pairs, minlength=self.k * self.k).double()

    def compute(self) -> tuple[dict[str, float], dict]:
        loss, n = self.sums[:2].tolist()
        confusion = self.sums[2:].view(self.k, self.k)
        tp = confusion.diag()
        f1 = 2 * tp / (confusion.sum(0) + confusion.sum(1)).clamp(min=1)
        scalars = {"acc": tp.sum().item() / n, "macro_f1": f1.mean().item()}
        if not self.training:
            scalars = {"loss": loss / n, **scalars}
        return scalars, {"confusion": confusion.long().tolist()}


def _texts(texts: list[str], files: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, text, error) for each ``--text`` and each non-empty line of each file (one text per line)."""
    items: list[tuple[str, str, str | None]] = [(t, t, None) for t in texts]
    for path in files:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            items.append((path, "", "no such file"))
            continue
        except UnicodeDecodeError:
            items.append((path, "", "not UTF-8"))
            continue
        items += [(f"{path}:{n}", line, None) for n, line in enumerate(lines, start=1) if line.strip()]
    return items


@register_task
class Text(Task):
    """Text classification; the default: 1-layer char transformer + capsule head on reviews_zh."""

    name = "text"
    Options = TextOptions
    recipe = {"epochs": 4, "batch_size": 64, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_acc", "max")
    unit = "texts"
    description = "text classification: multi-head attention + capsules (default on reviews_zh)"
    default_vary = {"head": ["capsule", "mean", "cls"]}

    def check_names(self, options: TextOptions) -> None:
        get_model_builder(options.model)
        TEXT_DATA.get(options.data)
        TOKENIZERS.get(options.tokenizer)
        if options.tokenizer == "jieba":
            TOKENIZERS.get("jieba")("检查")  # a missing jieba is refused now, not after reading the data

    def build_data(self, options: TextOptions, *, download: bool = False) -> TaskData:
        d = build_text_data(options.data, root=options.data_dir, text_col=options.text_col, label_col=options.label_col)
        tokenize = TOKENIZERS.get(options.tokenizer)
        vocab = Vocabulary.build([tokenize(t) for t in d.train_texts], options.min_count)
        train_ids = encode(d.train_texts, vocab, options.tokenizer, options.max_len)
        train = TokenizedTexts(train_ids, d.train_labels, options.token_dropout)
        test = TokenizedTexts(encode(d.test_texts, vocab, options.tokenizer, options.max_len), d.test_labels)
        notes = [*d.notes, f"vocabulary: {len(vocab)} {options.tokenizer} tokens (min count {options.min_count})"]
        meta = {"classes": d.classes, "vocab": vocab.tokens, "notes": notes}
        lengths = [len(x) for x in train.ids]
        return TaskData(train, test, meta, collate_fn=collate_padded, source=d, lengths=lengths)

    def build_model(self, options: TextOptions, meta: dict) -> nn.Module:
        return create_model(
            options.model,
            vocab_size=len(meta["vocab"]),
            num_classes=len(meta["classes"]),
            dim=options.dim,
            depth=options.depth,
            heads=options.heads,
            max_len=options.max_len,
            head=options.head,
            bigram_buckets=options.bigrams,
            ngram_order=options.ngrams,
            dropout=options.dropout,
            orphan=options.orphan,
            primary=options.capsules,
        )

    def example_input(self, options: TextOptions, meta: dict, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.full((batch, min(64, options.max_len)), 2, dtype=torch.int64),)

    def loss(self, output: Tensor, target: Tensor, options: TextOptions) -> Tensor:
        return margin_loss(output, target) if options.head == "capsule" else F.cross_entropy(output, target)

    def metric(self, options: TextOptions, meta: dict, *, training: bool) -> Metric:
        return _Confusion(len(meta["classes"]), options.head, training)

    def title(self, options: TextOptions) -> str:
        return f"{options.model} ({options.depth} layer, {options.head} head) on {options.data}"

    def default_out(self, options: TextOptions) -> Path:
        return Path("runs") / f"text-{options.head}-{options.data}"

    def export_dynamic(self) -> dict[int, dict[int, str]]:
        return {0: {0: "batch", 1: "length"}}

    # -- the classical baseline ---------------------------------------------------------------------------------
    def baselines(self, options: TextOptions, data: TaskData) -> dict[str, dict[str, float]]:
        """TF-IDF of character 1-3-grams (sublinear tf) + logistic regression, on the same split."""
        if data.source is None:
            return {}
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score

        d = data.source
        train_x, train_y, test_x, test_y = d.train_texts, d.train_labels, d.test_texts, d.test_labels
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        clf = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(train_x), train_y)
        pred = clf.predict(vectorizer.transform(test_x))
        scores = {"val_acc": accuracy_score(test_y, pred), "val_macro_f1": f1_score(test_y, pred, average="macro")}
        return {"tfidf_logreg": {k: float(v) for k, v in scores.items()}}

    # -- predict and see it -------------------------------------------------------------------------------------
    def add_predict_arguments(self, parser: Any) -> None:
        parser.add_argument("--text", action="append", default=[], help="text classification: a text (repeatable)")

    def predict_reads_no_files(self, args: Any) -> bool:
        return bool(getattr(args, "text", []))

    @torch.no_grad()
    def predict(self, model: nn.Module, options: TextOptions, meta: dict, inputs: list[str], args: Any) -> list[dict]:
        vocab, classes = Vocabulary(meta["vocab"]), meta["classes"]
        rows = []
        for name, text, error in _texts(getattr(args, "text", []), inputs):
            if error or not text.strip():
                rows.append({"input": name, "error": f"{name}: {error or 'an empty text'}"})
                continue
            ids = torch.tensor([encode([text], vocab, options.tokenizer, options.max_len)[0] or [UNK]])
            scores = model(ids)[0].float()
            probs = scores if options.head == "capsule" else scores.softmax(0)
            k = int(probs.argmax())
            rows.append({"input": name, "label": classes[k], "probability": float(probs[k]), "text": text})
        return rows

    def format_prediction(self, row: dict) -> str:
        text = row["text"] if len(row["text"]) <= 40 else row["text"][:39] + "…"
        return f"{row['label']} {row['probability']:.3f}  {text}"

    def prediction_fields(self, row: dict) -> dict:
        return {k: row[k] for k in ("input", "label", "probability", "text")}

    def visualize(self, model: nn.Module, options: TextOptions, meta: dict, data: TaskData, out: Path, count: int):
        from ..report.text_maps import write_text_attention

        return write_text_attention(model, data, meta, options, out, count)

    def eval_details(self, details: dict, meta: dict) -> list[tuple[str, dict[str, str]]]:
        rows = {
            f"true {c}": " ".join(str(v) for v in r) for c, r in zip(meta["classes"], details["confusion"], strict=True)
        }
        return [("confusion (rows: true, columns: predicted " + ", ".join(meta["classes"]) + ")", rows)]
