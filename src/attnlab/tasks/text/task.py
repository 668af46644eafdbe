"""Text classification: multi-head attention and a capsule network, on real Chinese reviews by default.

Tokens are characters (any script, nothing to install) or jieba's words; the vocabulary is built on the
training split only and saved with the run. Heads: capsule (margin loss), mean and cls (cross-entropy): the
one loss, in training and in evaluation. Metrics: accuracy and macro-F1 (from a confusion matrix of sums). The
classical baseline, linear models on TF-IDF n-grams tuned on the same validation split (``baseline``), is fitted
on the same training texts and scored on the same test split, in the same run, with a paired test against it.

Several labels per text (``--multi-label``, textfile): the targets are multi-hot rows; the capsule head keeps its
margin loss (a per-class loss: each label's capsule long, the others short), mean and cls get one sigmoid per class
(binary cross-entropy on the logits). A label is on when its score (length or sigmoid) reaches one global threshold,
chosen after training on the validation texts for the best micro-F1 (``fit_after_training``; 0.5 before); a text
may get no label (none is forced). Metrics: micro- and macro-F1, subset accuracy, Hamming loss; the monitor is
``val_micro_f1``; the baseline is TF-IDF with one logistic regression per label (``baseline.tuned_one_vs_rest``);
the paired tests are approximate randomization of the micro-F1 difference and McNemar's of every label right
(``engine.paired``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ...models.registry import create_model, get_model_builder
from ...models.text import TEXT_HEADS, margin_loss
from ...models.text_ensemble import TextEnsemble, member_losses
from ..base import (
    Metric,
    Prerequisite,
    RunSource,
    Task,
    TaskCLI,
    TaskData,
    check_at_least,
    none_if_blank,
    option,
    register_task,
)
from ..calibration import ECE_BINS, TEMPERATURE_BOUNDS, calibrate
from .baseline import tuned_linear, tuned_one_vs_rest
from .data import TEXT_DATA, balanced_weights
from .metrics import (
    DEFAULT_THRESHOLD,
    MultiLabelMetrics,
    TextMetrics,
    choose_threshold,
    label_scores,
    multilabel_scores,
)
from .predict import calibration_of, format_prediction, predict_texts, read_inputs, score_columns, score_name
from .tokens import TOKENIZERS, check_tokenizer
from .transfer import AUTO_BACKBONE, PRETRAIN_FROM, auto_backbone, load_encoder, read_backbone

__all__ = ["ENCODER_FIELDS", "EncoderOptions", "EncoderTask", "Text", "TextCLI", "TextOptions"]


@dataclass
class EncoderOptions:
    """The options of the text data and encoder, shared by the text task and its pretraining (``text_mlm``): a
    pretrained run and the runs that start from it read their texts and build their encoder alike."""

    data: str = option("reviews_zh", "a text data set: " + ", ".join(TEXT_DATA.names()))
    data_dir: str | None = option(None, "textfile: folder with train.csv and val.csv (or .tsv, .jsonl)")
    text_col: str = option("text", "textfile: the text column")
    label_col: str = option("label", "textfile: the label column")
    multi_label: bool = option(
        False,
        "textfile: several labels per text in the label column (--label-sep): one score per class, a threshold "
        "chosen on validation, micro/macro-F1",
    )
    label_sep: str = option("|", "--multi-label: what separates a text's labels (a .jsonl cell may be a JSON list)")
    tokenizer: str = option(
        "auto",
        "how texts become tokens: auto (char for Chinese, Japanese; else words), " + ", ".join(TOKENIZERS.names()),
    )
    max_len: int | None = option(
        None,
        "texts are cut to this many tokens (default: measured, what keeps 98 percent of the training texts whole)",
    )
    min_count: int = option(2, "tokens seen fewer times in the training split are unknown")
    dim: int = option(96, "width of the encoder (a multiple of --heads)")
    depth: int = option(1, "transformer encoder layers")
    heads: int = option(4, "attention heads per encoder layer")
    ngram_buckets: int = option(65536, "buckets of the hashed character n-gram embeddings, all orders (0: none)")
    ngram_order: int = option(2, "the longest hashed n-gram: 2 (bigrams), 3 (and trigrams), …")
    subword_buckets: int = option(
        65536, "words: buckets of each word's hashed character 3-5-grams (fastText's subwords; 0: none)"
    )
    dropout: float | None = option(
        None,
        "dropout on the embeddings and the encoder's branches (default: 0.5 below 5,000 training texts, else 0.3)",
    )
    token_dropout: float | None = option(
        None,
        "training texts: each token becomes unknown with this probability (default: 0.3 below 5,000 training "
        "texts, else 0.15)",
    )

    def __post_init__(self) -> None:
        lows = {"max_len": 1} if self.max_len is not None else {}
        lows |= {
            "min_count": 1,
            "dim": 4,
            "depth": 1,
            "heads": 1,
            "ngram_buckets": 0,
            "ngram_order": 2,
            "subword_buckets": 0,
        }
        check_at_least(self, lows)
        for name in ("ngram_buckets", "subword_buckets"):
            if getattr(self, name) == 1:
                raise ValueError(f"--{name.replace('_', '-')}: expected 0 (none) or at least 2 buckets, got 1")
        for name, value in (("--dropout", self.dropout), ("--token-dropout", self.token_dropout)):
            if value is not None and not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value}")
        if self.multi_label and not self.label_sep:
            raise ValueError("--label-sep: expected a non-empty separator of a text's labels, got ''")


# what a pretrained encoder and the run that starts from it must share (the encoder's shapes, the same texts read
# the same way, so that the same vocabulary and length come out)
ENCODER_FIELDS = tuple(f.name for f in fields(EncoderOptions) if f.name not in ("dropout", "token_dropout"))


@dataclass
class TextOptions(EncoderOptions):
    model: str = option("text_transformer", "a registered text model (attnlab list models)")
    head: str = option(
        "capsule",
        "capsule (dynamic routing, margin loss), mean (masked mean pooling) or cls (a class token)",
        choices=TEXT_HEADS,
    )
    backbone: str | None = option(
        None,
        "a text_mlm run folder (attnlab train --task text_mlm) whose pretrained encoder the network starts from; "
        f"auto: the encoder pretrained on these training texts when they number at least {PRETRAIN_FROM:,} (made "
        "first when missing); none (the default, measured best on validation): from scratch",
    )
    class_weights: str = option(
        "none",
        "none, or balanced: each class's loss weighted by n / (K · n_k) of the training texts (rare labels count more)",
        choices=("none", "balanced"),
    )
    orphan: bool = option(False, "capsule head: an orphan class that routing can send background words to")
    capsules: int = option(4, "capsule head: primary capsules per token")
    members: int | None = option(
        None,
        "networks in the run's deep ensemble, each from its own random start, their scores averaged (default: 3 "
        "below 5,000 training texts, else 1)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, {"capsules": 1} | ({"members": 1} if self.members is not None else {}))
        self.backbone = none_if_blank(self.backbone)
        if self.multi_label and self.class_weights != "none":
            raise ValueError("--class-weights balanced: not with --multi-label (weights of one class per text)")


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
        o, task = self.task.options, self.task
        items = read_inputs(args.text, inputs)
        threshold = task.threshold if task.multi_label else None
        return predict_texts(
            model, items, task.meta, tokenizer=task.tokenizer, max_len=task.max_len, head=o.head, threshold=threshold
        )

    def format_prediction(self, row: dict) -> str:
        return format_prediction(row)

    def prediction_fields(self, row: dict) -> dict:
        score = score_name(self.task.options.head)
        if not self.task.multi_label:
            calibrated = calibration_of(self.task.meta) is not None
            return {k: row[k] for k in ("input", "label", *score_columns(self.task.options.head, calibrated), "text")}
        sep = self.task.options.label_sep  # the labels on, and their scores, as the data's label column holds them
        labels = sep.join(label for label, _ in row["labels"])
        return {
            "input": row["input"],
            "labels": labels,
            score: sep.join(f"{v:.4f}" for _, v in row["labels"]),
            "text": row["text"],
        }

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        """The first ``count`` test texts shaded, and the confusion over the whole test split of ``data`` (the
        run's evaluation details)."""
        from .pictures import write_text_attention

        if self.task.multi_label:
            raise ValueError("visualize: draws one label per text and its confusion; not a --multi-label run yet")

        texts = [(data.source.test_texts[i], *data.test[i]) for i in range(min(count, len(data.test)))]
        tokenize, classes = TOKENIZERS.get(self.task.tokenizer), self.task.meta["classes"]
        confusion = np.array(details()["confusion"])
        return write_text_attention(model, texts, tokenize, classes, confusion, out, self.task.options.head)

    def eval_details(self, details: dict) -> list[tuple[str, dict[str, str]]]:
        classes = self.task.meta["classes"]
        if self.task.multi_label:
            c = details["per_class"]
            rows = {}
            for name, tp, fp, fn in zip(classes, c["tp"], c["fp"], c["fn"], strict=True):
                f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
                rows[name] = f"TP {tp}  FP {fp}  FN {fn}  F1 {f1:.3f}"
            return [(f"each label at threshold {details['threshold']:g}", rows)]
        rows = {f"true {c}": " ".join(str(v) for v in r) for c, r in zip(classes, details["confusion"], strict=True)}
        tables = [("confusion (rows: true, columns: predicted " + ", ".join(classes) + ")", rows)]
        c = calibration_of(self.task.meta)
        if c is not None:
            rows = {"temperature T": f"{c['temperature']:.4g}"}
            for name, key in (("NLL", "nll"), (f"ECE, {ECE_BINS} bins", "ece")):
                rows[f"validation {name} (T = 1 -> T)"] = f"{c[f'val_{key}_before']:.4f} -> {c[f'val_{key}_after']:.4f}"
            tables.append(("calibration (predict's probability: softmax(scores / T), T fitted on validation)", rows))
        return tables


class EncoderTask(Task):
    """What the text task and its pretraining share: the length texts are cut to, the encoder's arguments, the
    example input and the export's dynamic axes."""

    unit = "texts"
    options: EncoderOptions

    @property
    def max_len(self) -> int:
        """The length texts are cut to: ``--max-len``, else the one measured on the run's training texts."""
        return self.options.max_len or self.meta["max_len"]

    def encoder_arguments(self) -> dict:
        """The text encoder's keyword arguments (``models.text.TextTransformer``) from the options and the data."""
        o = self.options
        return {
            "vocab_size": len(self.meta["vocab"]),
            "dim": o.dim,
            "depth": o.depth,
            "heads": o.heads,
            "max_len": self.max_len,
            "ngram_buckets": o.ngram_buckets,
            "ngram_order": o.ngram_order,
            "subword_buckets": self.meta.get("subword_buckets", 0),  # 0 where the tokenizer is not words
            "dropout": self.meta.get("dropout", o.dropout),  # runs from before the rule: their option's
        }

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        """Token ids (batch, L), or with subwords (batch, L, 1 + S): column 0 the token, then its n-grams."""
        shape = (batch, min(64, self.max_len)) + ((1 + 8,) if self.meta.get("subword_buckets") else ())
        return (torch.full(shape, 2, dtype=torch.int64),)

    def export_dynamic(self) -> dict[int, dict[int, str]]:
        axes = {0: "batch", 1: "length"} | ({2: "subwords"} if self.meta.get("subword_buckets") else {})
        return {0: axes}


@register_task
class Text(EncoderTask):
    """Text classification; the default: 1-layer char transformer + capsule head on reviews_zh."""

    name = "text"
    Options = TextOptions
    CLI = TextCLI
    # the default run: 4 epochs of reviews_zh's 14,064 training texts at batch 64 (engine.plan: any other size)
    recipe = {"samples_seen": 56_000, "base_batch": 64, "base_lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_acc", "max")
    classifies = True
    description = "text classification: multi-head attention + capsules (default on reviews_zh)"
    default_vary = {"head": ["capsule", "mean", "cls"]}
    renamed = {"bigrams": "ngram_buckets", "ngrams": "ngram_order"}  # runs made before the model's names were taken
    options: TextOptions

    def __init__(self, options: TextOptions, *, meta: dict | None = None, runs: RunSource | None = None) -> None:
        super().__init__(options, meta=meta, runs=runs)
        if options.multi_label:  # per run: its own monitor
            self.monitor = ("val_micro_f1", "max")

    @property
    def multi_label(self) -> bool:
        return self.options.multi_label

    @property
    def threshold(self) -> float:
        """Several labels per text: the decision threshold chosen on validation (``fit_after_training``), else
        ``DEFAULT_THRESHOLD`` (0.5)."""
        return (self.saved_meta or {}).get("fitted", {}).get("threshold", DEFAULT_THRESHOLD)

    def check_names(self) -> None:
        o = self.options
        get_model_builder(o.model)
        TEXT_DATA.get(o.data)
        check_tokenizer(o.tokenizer)
        if o.backbone not in (None, AUTO_BACKBONE):  # auto: made first when missing
            read_backbone(o.backbone, self.runs, o, ENCODER_FIELDS)

    def build_data(self, *, download: bool = False) -> TaskData:
        data = TEXT_DATA.build(self.options.data, self.options, download=download)
        if self.options.class_weights == "balanced":  # of the training file's texts (a carved validation included)
            weights = balanced_weights(data.labels, len(data.meta["classes"]))
            data.meta["class_weights"] = weights
            data.meta["notes"].append("class weights (balanced): " + ", ".join(f"{w:.3g}" for w in weights))
        return data

    @property
    def backbone(self) -> Path | None:
        """The pretrained run ``--backbone`` names (``auto``: the one for this encoder and texts where they are many
        enough, ``training_texts``), or None."""
        b = self.options.backbone
        if b != AUTO_BACKBONE:
            return None if b is None else Path(b)
        return auto_backbone(self.options, ENCODER_FIELDS) if self.training_texts >= PRETRAIN_FROM else None

    @cached_property
    def training_texts(self) -> int:
        """How many texts the training file holds (a carved validation included): from the data meta, else (before
        the run reads its data: the engine's prerequisites) read, once per task."""
        count = (self.saved_meta or {}).get("training_texts")
        if count is None:
            count = len(TEXT_DATA.build(self.options.data, self.options).source.train_texts)
        return count

    def prerequisites(self) -> list[Prerequisite]:
        """``--backbone auto`` with enough training texts: the pretrained run for this encoder and these texts, made
        first when it is missing."""
        if self.options.backbone != AUTO_BACKBONE or self.backbone is None:
            return []
        values = {f: getattr(self.options, f) for f in ENCODER_FIELDS}
        why = "--backbone auto: the encoder pretrained on these training texts (attnlab train --task text_mlm)"
        return [Prerequisite(self.backbone, "text_mlm", values, why, same_validation=True)]

    def initialize(self, model: nn.Module) -> list[str]:
        """The pretrained encoder of ``--backbone``, where one is given."""
        if self.backbone is None:
            if self.options.backbone != AUTO_BACKBONE:
                return []
            n = self.training_texts
            return [
                f"--backbone auto: {n:,} training texts, fewer than {PRETRAIN_FROM:,}: the encoder starts from scratch "
                "(pretraining on so few measured no gain; --backbone RUN uses one anyway)"
            ]
        return load_encoder(model, self.backbone, self.runs, self.meta)

    @property
    def tokenizer(self) -> str:
        """The tokenizer the run's texts were read with (``--tokenizer auto`` resolved; runs from before it: the
        option's)."""
        return self.meta.get("tokenizer", self.options.tokenizer)

    def build_model(self) -> nn.Module:
        """The network, or a deep ensemble of ``meta["members"]`` networks (``regularization``; runs from before
        it: one)."""
        o = self.options
        head = {"head": o.head, "orphan": o.orphan, "capsules": o.capsules}
        args = {"num_classes": len(self.meta["classes"]), **self.encoder_arguments(), **head}
        members = [create_model(o.model, **args) for _ in range(self.meta.get("members", 1))]
        return members[0] if len(members) == 1 else TextEnsemble(members)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The capsule head's margin loss (its scores are capsule lengths), else cross-entropy on logits; each
        weighted by class with ``--class-weights balanced``. Several labels per text (multi-hot targets): the
        margin loss, else binary cross-entropy on each class's logit (the mean over texts and classes). An
        ensemble's training scores (B, M, K): the mean of each member's own loss."""
        return member_losses(self._loss, output, target)

    def _loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.multi_label:
            if self.options.head == "capsule":
                return margin_loss(output, target)
            return F.binary_cross_entropy_with_logits(output.float(), target.float())
        weights = self.meta.get("class_weights")
        weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=output.device)
        if self.options.head == "capsule":
            return margin_loss(output, target, weight=weight)
        return F.cross_entropy(output.float(), target, weight=weight)

    def metric(self, *, training: bool) -> Metric:
        k = len(self.meta["classes"])
        if self.multi_label:
            return MultiLabelMetrics(k, head=self.options.head, threshold=self.threshold, training=training)
        return TextMetrics(k, training=training)

    def predicted_classes(self, output: Tensor) -> Tensor:
        """(B,) int64 classes, the highest score; several labels per text: (B, K) int64 0/1 rows, each label's score
        (``label_scores``) against the threshold chosen on validation."""
        if self.multi_label:
            return (label_scores(output, self.options.head) >= self.threshold).long()
        return super().predicted_classes(output)

    @torch.no_grad()
    def validation_scores(self, model: nn.Module, data: TaskData, device: torch.device) -> tuple[Tensor, Tensor]:
        """(scores (N, K) float32, targets) of the validation texts, on the CPU: the head's outputs (capsule
        lengths, or logits) through the task's own collate and evaluation forward; targets (N,) int64 classes, or
        (N, K) multi-hot for several labels per text."""
        model.eval()
        loader = DataLoader(data.val, self.eval_batch_size, collate_fn=data.collate_fn)
        scores, targets = [], []
        for batch in loader:
            inputs, target = self.to_device(batch, device)
            scores.append(self.forward_eval(model, inputs).float().cpu())
            targets.append(target.cpu())
        return torch.cat(scores), torch.cat(targets)

    def fit_after_training(self, model: nn.Module, data: TaskData, device: torch.device) -> dict:
        """On the validation texts, with the best weights. One label per text: temperature scaling
        (``tasks.calibration``, Guo et al. 2017 §4.2), predict's probability being softmax(scores / T), T minimizing
        the validation NLL; the argmax, so the accuracy, is unchanged. Several labels per text: the one threshold on
        the labels' scores with the best micro-F1 (``metrics.choose_threshold``: 0.05, 0.10, …, 0.95), which eval,
        test and predict use."""
        scores, targets = self.validation_scores(model, data, device)
        return self._threshold(scores, targets) if self.multi_label else self._temperature(scores, targets)

    def _threshold(self, scores: Tensor, targets: Tensor) -> dict:
        s, t = label_scores(scores, self.options.head).numpy(), targets.numpy() > 0.5
        threshold, f1 = choose_threshold(s, t)
        at_default = multilabel_scores(t, s >= DEFAULT_THRESHOLD)["micro_f1"]
        fitted = {"threshold": threshold, "val_micro_f1": f1, "val_micro_f1_default": at_default}
        line = (
            f"threshold: {threshold:g}, best micro-F1 on the {len(t)} validation texts ({at_default:.3f} at "
            f"{DEFAULT_THRESHOLD:g} -> {f1:.3f}; grid 0.05..0.95); test, eval and predict use it"
        )
        return {"fitted": fitted, "lines": [line]}

    def _temperature(self, scores: Tensor, targets: Tensor) -> dict:
        c = calibrate(scores, targets)
        what = "capsule lengths" if self.options.head == "capsule" else "logits"
        bound = c["temperature"] <= TEMPERATURE_BOUNDS[0] * (1 + 1e-6)
        note = " (the search's lower bound: the validation NLL still falls as T shrinks)" * bound
        line = (
            f"calibration: softmax({what} / T), T = {c['temperature']:.4g}{note} fitted on the {len(targets)} "
            f"validation texts: NLL {c['val_nll_before']:.4f} -> {c['val_nll_after']:.4f}, ECE ({ECE_BINS} bins) "
            f"{c['val_ece_before']:.4f} -> {c['val_ece_after']:.4f} (T = 1 -> T); accuracy unchanged"
        )
        return {"fitted": {"calibration": c}, "lines": [line]}

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """The tuned linear baseline (``baseline.tuned_linear``): fitted on the texts the network trains on, chosen
        on the network's validation texts, scored once on test."""
        texts = data.source
        if texts is None:
            return {}
        val = (texts.val_texts, texts.val_labels)
        if data.split is not None:  # the training texts cut (--train-limit) or carved (validation from them)
            keep, held = data.split["train"], data.split["val"]
            if texts.val_texts is None:
                val = ([texts.train_texts[i] for i in held], [texts.train_labels[i] for i in held])
            texts = replace(
                texts,
                train_texts=[texts.train_texts[i] for i in keep],
                train_labels=[texts.train_labels[i] for i in keep],
            )
        tune = tuned_one_vs_rest if self.multi_label else tuned_linear
        return {"tuned_linear": tune(texts, val, spaced=self.tokenizer == "words")}

    def title(self) -> str:
        o = self.options
        several = ", several labels per text" if o.multi_label else ""
        members = (self.saved_meta or {}).get("members", o.members or 1)  # resolved once the data is read
        ensemble = f", an ensemble of {members}" if members > 1 else ""
        return f"{o.model} ({o.depth} layer, {o.head} head{several}{ensemble}) on {o.data}"

    def default_out(self) -> Path:
        several = "-multilabel" if self.options.multi_label else ""
        return Path("runs") / f"text-{self.options.head}-{self.options.data}{several}"
