"""What few labelled texts get: the text encoder's dropout and the number of networks in the run's ensemble, from
how many training texts there are (``--dropout``, ``--token-dropout``, ``--members`` left unset).

Few labelled texts are memorized: the default run on 610 English paragraphs (``docs850``) fits every one of them
by epoch 22, and the capsule head's margin loss then gives almost no gradient. Below ``PRETRAIN_FROM`` training
texts (where ``--backbone auto`` does not pretrain either: the encoder learns from these labels alone) the run
uses ``FEW``: stronger dropout (measured over three seeds, AMD EPYC, torch 2.14.1, docs/text.md
"Regularization": +6.7 points of validation accuracy at 610 texts, +0.3 at 2,160) and a deep ensemble of three
networks (``models.text_ensemble``; docs/text.md, "Few labels (this round)": +3.3 points of validation accuracy
at 610 texts, +1.8 at 2,160), whose three times the training time is what such a run has room for. From
``PRETRAIN_FROM`` on: ``MANY``, the one network and the rates reviews_zh's 14,064 texts were tuned with.
"""

from __future__ import annotations

from .transfer import PRETRAIN_FROM

__all__ = ["FEW", "MANY", "few_labels"]

FEW = {"dropout": 0.5, "token_dropout": 0.3, "members": 3}
MANY = {"dropout": 0.3, "token_dropout": 0.15, "members": 1}


def _said(name: str, value: float) -> str:
    if name == "members":
        return f"an ensemble of {value} networks" if value > 1 else "one network"
    return f"{name.replace('_', ' ')} {value:g}"


def few_labels(options, training_texts: int) -> tuple[dict[str, float], str]:
    """(the values, the log's line) of ``FEW``'s names that ``options`` has (pretraining's options have no
    ``members``): each option's value where given, else ``FEW``'s below ``PRETRAIN_FROM`` training texts (the
    training file's, a carved validation included) and ``MANY``'s from there on."""
    few = training_texts < PRETRAIN_FROM
    rule = FEW if few else MANY
    names = [name for name in rule if hasattr(options, name)]
    chosen = {name: rule[name] if getattr(options, name) is None else getattr(options, name) for name in names}
    said = ", ".join(_said(name, chosen[name]) for name in names)
    if all(getattr(options, name) is not None for name in names):
        return chosen, f"{said} (given)"
    size = f"fewer than {PRETRAIN_FROM:,}: few labels" if few else f"at least {PRETRAIN_FROM:,}"
    flags = ", ".join("--" + name.replace("_", "-") for name in names)
    return chosen, f"{said}: {training_texts:,} training texts, {size} (measured, docs/text.md; {flags} override)"
