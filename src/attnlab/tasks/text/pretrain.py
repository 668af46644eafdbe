"""The text encoder pretrained on unlabeled text: task ``text_mlm``, a masked language model (BERT's objective,
Devlin et al., NAACL 2019, §3.1) over the training texts of a text data set, labels unread.

    attnlab train --task text_mlm                            # the encoder of reviews_zh's default text run
    attnlab train --task text --backbone runs/text_mlm-…     # the text task starts from it

Texts: the text data set's, read, tokenized and cut exactly as the text task reads them (``EncoderOptions``: the
same vocabulary and length come out), and the validation carve is the text task's (the engine's, the same
fraction and seed), so the encoder never trains on a text the later run validates or tests on. Validation here
is that carve's texts, test the data's test texts: each is scored on tokens hidden by a fixed draw.

Hiding: ``--mask`` (15 %) of each text's tokens, at least one; of those 80 % become the unknown token (the one
token dropout uses in the text task), 10 % a random token, 10 % stay (BERT's 80/10/10). The loss is
cross-entropy over the hidden tokens; the metrics are its value and the share of hidden tokens told right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ...models.registry import create_model
from ...models.text_mlm import IGNORE
from ..base import Metric, TaskData, option, register_task
from .data import TEXT_DATA
from .task import EncoderOptions, EncoderTask
from .tokens import PAD, UNK, check_tokenizer, pad_rows

__all__ = ["MLMOptions", "MaskedTexts", "TextMLM", "collate_masked", "hide_tokens"]

EVAL_SEED = 12_345  # the fixed draw of the hidden tokens of validation and test texts


@dataclass
class MLMOptions(EncoderOptions):
    model: str = option("text_mlm", "a registered masked language model (attnlab list models)")
    mask: float = option(0.15, "the share of each text's tokens hidden (at least one a text)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.mask < 1:
            raise ValueError(f"--mask: expected a share in (0, 1), got {self.mask}")


def hide_tokens(ids: Tensor, share: float, vocab_size: int, generator: torch.Generator | None = None) -> tuple:
    """(inputs (L,) or (L, 1 + S), targets (L,)): ``share`` of the tokens (at least one) chosen, each then the
    unknown token (80 %), a random token (10 %) or itself (10 %), and its subwords (column 1 on) hidden too, so
    that they never tell the word; targets hold the chosen positions' token ids, ``IGNORE`` elsewhere."""
    tokens = ids[:, 0] if ids.dim() == 2 else ids
    chosen = torch.rand(tokens.shape, generator=generator) < share
    if not chosen.any():
        chosen[torch.randint(len(tokens), (1,), generator=generator)] = True
    how = torch.rand(tokens.shape, generator=generator)
    random_ids = torch.randint(2, max(3, vocab_size), tokens.shape, generator=generator)  # never PAD or UNK
    hidden = torch.where(chosen & (how < 0.8), torch.full_like(tokens, UNK), tokens)
    hidden = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_ids, hidden)
    targets = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    if ids.dim() == 1:
        return hidden, targets
    inputs = ids.masked_fill(chosen[:, None], 0)  # no n-gram at a hidden token
    inputs[:, 0] = hidden
    return inputs, targets


class MaskedTexts(Dataset):
    """Items ``(inputs (L,) or (L, 1 + S), targets (L,))`` of token-id texts: hidden afresh at each draw from
    torch's generator (training: ``EpochSeeded`` makes it a function of seed, epoch, index), or by a draw fixed
    per index."""

    def __init__(self, ids: list[Tensor], share: float, vocab_size: int, *, fixed: bool) -> None:
        self.ids, self.share, self.vocab_size, self.fixed = ids, share, vocab_size, fixed

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(EVAL_SEED * 1_000_003 + i) if self.fixed else None
        return hide_tokens(self.ids[i], self.share, self.vocab_size, g)


def collate_masked(batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Inputs padded with ``PAD`` ((B, L) or (B, L, 1 + S)), targets with ``IGNORE`` ((B, L)), int64."""
    return pad_rows([x for x, _ in batch], PAD), pad_rows([t for _, t in batch], IGNORE)


class MaskedTokenMetrics(Metric):
    """Sums (loss · hidden, hidden, told right) -> the loss per hidden token (evaluation) and ``acc``, the share
    of hidden tokens whose id has the highest logit."""

    def __init__(self, *, training: bool) -> None:
        super().__init__(3)
        self.training = training

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        truth = target[target != IGNORE]
        right = (output.float().argmax(-1) == truth).sum().item()
        self.sums += torch.tensor([loss.item() * len(truth), len(truth), right], dtype=torch.float64)

    def compute(self) -> tuple[dict[str, float], dict]:
        loss, n, right = self.sums.tolist()
        scalars = {"acc": right / max(n, 1)}
        return ({"loss": loss / max(n, 1), **scalars} if not self.training else scalars), {}


@register_task
class TextMLM(EncoderTask):
    """Masked-language-model pretraining of the text task's encoder on its training texts (labels unread)."""

    name = "text_mlm"
    Options = MLMOptions
    # 10 epochs of reviews_zh's 14,064 training texts at batch 64 (engine.plan scales it to any other size)
    recipe = {"samples_seen": 140_000, "base_batch": 64, "base_lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_loss", "min")
    description = "text pretraining: the text task's encoder as a masked language model, on its training texts"
    options: MLMOptions

    def check_names(self) -> None:
        o = self.options
        TEXT_DATA.get(o.data)
        check_tokenizer(o.tokenizer)

    def build_data(self, *, download: bool = False) -> TaskData:
        """The text data as the text task reads it, each split's texts with tokens hidden; the validation split
        left to the engine's carve (the text task's, so both runs hold the same texts out)."""
        o, data = self.options, TEXT_DATA.build(self.options.data, self.options, download=download)
        vocab = len(data.meta["vocab"])
        train_ids = data.train_eval.ids  # the unaugmented ids (no token dropout: hiding is the noise here)
        data.train = MaskedTexts(train_ids, o.mask, vocab, fixed=False)
        data.train_eval = MaskedTexts(train_ids, o.mask, vocab, fixed=True)
        data.test = MaskedTexts(data.test.ids, o.mask, vocab, fixed=True)
        if data.val is not None:  # the data's own validation file
            data.val = MaskedTexts(data.val.ids, o.mask, vocab, fixed=True)
        data.collate_fn = collate_masked
        return data

    def build_model(self) -> nn.Module:
        return create_model(self.options.model, **self.encoder_arguments())

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
        inputs, targets = (t.to(device, non_blocking=True) for t in batch)
        return (inputs, targets), targets  # the model projects the hidden positions only

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output.float(), target[target != IGNORE])

    def metric(self, *, training: bool) -> Metric:
        return MaskedTokenMetrics(training=training)

    def title(self) -> str:
        o = self.options
        return f"{o.model} ({o.depth} layer, masked tokens) on {o.data}"

    def default_out(self) -> Path:
        return Path("runs") / f"text_mlm-{self.options.data}"
