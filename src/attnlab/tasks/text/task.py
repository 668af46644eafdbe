"""Text classification: multi-head attention and a capsule network, on real Chinese reviews by default.

Tokens are characters (any script, nothing to install) or jieba's words; the vocabulary is built on the
training split only and saved with the run. Heads: capsule (margin loss), mean and cls (cross-entropy): the
one loss, in training and in evaluation. Metrics: accuracy and macro-F1 (from a confusion matrix of sums). The
classical baseline, TF-IDF of character 1-3-grams + logistic regression (scikit-learn), is fitted on the same
training split and scored on the same test split, in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.registry import create_model, get_model_builder
from ...models.text import TEXT_HEADS, margin_loss
from ..base import Metric, Task, TaskCLI, TaskData, check_at_least, option, register_task
from .baseline import tfidf_logreg
from .data import TEXT_DATA
from .metrics import TextMetrics
from .predict import format_prediction, predict_texts, read_inputs, score_name
from .tokens import AUTO, TOKENIZERS

__all__ = ["Text", "TextCLI", "TextOptions"]


@dataclass
class TextOptions:
    model: str = option("text_transformer", "a registered text model (attnlab list models)")
    head: str = option(
        "capsule",
        "capsule (dynamic routing, margin loss), mean (masked mean pooling) or cls (a class token)",
        choices=TEXT_HEADS,
    )
    data: str = option("reviews_zh", "a text data set: " + ", ".join(TEXT_DATA.names()))
    data_dir: str | None = option(None, "textfile: folder with train.csv and val.csv (or .tsv, .jsonl)")
    text_col: str = option("text", "textfile: the text column")
    label_col: str = option("label", "textfile: the label column")
    tokenizer: str = option(
        "auto",
        "how texts become tokens: auto (char for Chinese, Japanese; else words), " + ", ".join(TOKENIZERS.names()),
    )
    max_len: int = option(128, "texts are cut to this many tokens")
    min_count: int = option(2, "tokens seen fewer times in the training split are unknown")
    dim: int = option(96, "width of the encoder (a multiple of --heads)")
    depth: int = option(1, "transformer encoder layers")
    heads: int = option(4, "attention heads per encoder layer")
    ngram_buckets: int = option(16384, "buckets of the hashed character n-gram embeddings, all orders (0: none)")
    ngram_order: int = option(2, "the longest hashed n-gram: 2 (bigrams), 3 (and trigrams), …")
    dropout: float = option(0.3, "dropout on the embeddings and the encoder's branches")
    token_dropout: float = option(0.15, "training texts: each token becomes unknown with this probability")
    orphan: bool = option(False, "capsule head: an orphan class that routing can send background words to")
    capsules: int = option(4, "capsule head: primary capsules per token")

    def __post_init__(self) -> None:
        lows = {"max_len": 1, "min_count": 1, "dim": 4, "depth": 1, "heads": 1, "capsules": 1, "ngram_buckets": 0}
        check_at_least(self, {**lows, "ngram_order": 2})
        if self.ngram_buckets == 1:
            raise ValueError("--ngram-buckets: expected 0 (none) or at least 2 buckets, got 1")
        for name, value in (("--dropout", self.dropout), ("--token-dropout", self.token_dropout)):
            if not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value}")


class TextCLI(TaskCLI):
    """predict: the class of each ``--text`` (and of each line of each file) with its score; visualize: the
    attention page and the test confusion; eval: the confusion matrix."""

    task: Text

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        parser.add_argument("--text", action="append", default=[], help="a text to classify (repeatable)")

    def reads_no_files(self, args: Any) -> bool:
        return bool(args.text)

    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        o = self.task.options
        items = read_inputs(args.text, inputs)
        tokenizer = self.task.tokenizer
        return predict_texts(model, items, self.task.meta, tokenizer=tokenizer, max_len=o.max_len, head=o.head)

    def format_prediction(self, row: dict) -> str:
        return format_prediction(row)

    def prediction_fields(self, row: dict) -> dict:
        return {k: row[k] for k in ("input", "label", score_name(self.task.options.head), "text")}

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        """The first ``count`` test texts shaded, and the confusion over the whole test split of ``data`` (the
        run's evaluation details)."""
        from .pictures import write_text_attention

        texts = [(data.source.test_texts[i], *data.test[i]) for i in range(min(count, len(data.test)))]
        tokenize, classes = TOKENIZERS.get(self.task.tokenizer), self.task.meta["classes"]
        confusion = np.array(details()["confusion"])
        return write_text_attention(model, texts, tokenize, classes, confusion, out, self.task.options.head)

    def eval_details(self, details: dict) -> list[tuple[str, dict[str, str]]]:
        classes = self.task.meta["classes"]
        rows = {f"true {c}": " ".join(str(v) for v in r) for c, r in zip(classes, details["confusion"], strict=True)}
        return [("confusion (rows: true, columns: predicted " + ", ".join(classes) + ")", rows)]


@register_task
class Text(Task):
    """Text classification; the default: 1-layer char transformer + capsule head on reviews_zh."""

    name = "text"
    Options = TextOptions
    CLI = TextCLI
    # the default run: 4 epochs of reviews_zh's 14,064 training texts at batch 64 (engine.plan: any other size)
    recipe = {"samples_seen": 56_000, "base_batch": 64, "base_lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_acc", "max")
    unit = "texts"
    description = "text classification: multi-head attention + capsules (default on reviews_zh)"
    default_vary = {"head": ["capsule", "mean", "cls"]}
    renamed = {"bigrams": "ngram_buckets", "ngrams": "ngram_order"}  # runs made before the model's names were taken
    options: TextOptions

    def check_names(self) -> None:
        o = self.options
        get_model_builder(o.model)
        TEXT_DATA.get(o.data)
        if o.tokenizer != AUTO:
            TOKENIZERS.get(o.tokenizer)
        if o.tokenizer == "jieba":
            TOKENIZERS.get("jieba")("检查")  # a missing jieba is refused now, not after reading the data

    def build_data(self, *, download: bool = False) -> TaskData:
        return TEXT_DATA.build(self.options.data, self.options, download=download)

    @property
    def tokenizer(self) -> str:
        """The tokenizer the run's texts were read with (``--tokenizer auto`` resolved; runs from before it: the
        option's)."""
        return self.meta.get("tokenizer", self.options.tokenizer)

    def build_model(self) -> nn.Module:
        o, meta = self.options, self.meta
        return create_model(
            o.model,
            vocab_size=len(meta["vocab"]),
            num_classes=len(meta["classes"]),
            dim=o.dim,
            depth=o.depth,
            heads=o.heads,
            max_len=o.max_len,
            head=o.head,
            ngram_buckets=o.ngram_buckets,
            ngram_order=o.ngram_order,
            dropout=o.dropout,
            orphan=o.orphan,
            capsules=o.capsules,
        )

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.full((batch, min(64, self.options.max_len)), 2, dtype=torch.int64),)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The capsule head's margin loss (its scores are capsule lengths), else cross-entropy on logits."""
        return margin_loss(output, target) if self.options.head == "capsule" else F.cross_entropy(output, target)

    def metric(self, *, training: bool) -> Metric:
        return TextMetrics(len(self.meta["classes"]), training=training)

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """TF-IDF + logistic regression, fitted on the texts the network trains on (not its validation texts)."""
        texts = data.source
        if texts is None:
            return {}
        if data.split is not None:
            keep = data.split["train"]
            texts = replace(
                texts,
                train_texts=[texts.train_texts[i] for i in keep],
                train_labels=[texts.train_labels[i] for i in keep],
            )
        return {"tfidf_logreg": tfidf_logreg(texts)}

    def title(self) -> str:
        o = self.options
        return f"{o.model} ({o.depth} layer, {o.head} head) on {o.data}"

    def default_out(self) -> Path:
        return Path("runs") / f"text-{self.options.head}-{self.options.data}"

    def export_dynamic(self) -> dict[int, dict[int, str]]:
        return {0: {0: "batch", 1: "length"}}
