"""What few labelled texts get (``tasks.text.regularization``): the rule at its threshold, given values winning;
a run's data, meta and model carrying what was chosen; and the deep ensemble (``models.text_ensemble``): its
inference is the members' mean, its training loss gives each member the gradient it would get alone."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from sentiment import write_sentiment

from attnlab.models.text import TextTransformer, margin_loss
from attnlab.models.text_ensemble import TextEnsemble, member_losses, member_mean
from attnlab.tasks.text.regularization import FEW, MANY, few_labels
from attnlab.tasks.text.task import EncoderOptions, Text, TextOptions
from attnlab.tasks.text.transfer import PRETRAIN_FROM


def test_few_training_texts_get_stronger_dropout_and_an_ensemble_and_given_values_win():
    unset = TextOptions()
    assert few_labels(unset, PRETRAIN_FROM - 1)[0] == FEW == {"dropout": 0.5, "token_dropout": 0.3, "members": 3}
    assert few_labels(unset, PRETRAIN_FROM)[0] == MANY == {"dropout": 0.3, "token_dropout": 0.15, "members": 1}
    _, note = few_labels(unset, 680)
    assert note.startswith("dropout 0.5, token dropout 0.3, an ensemble of 3 networks: 680 training texts, fewer")
    assert few_labels(TextOptions(dropout=0.1), 680)[0] == {"dropout": 0.1, "token_dropout": 0.3, "members": 3}
    chosen, note = few_labels(TextOptions(dropout=0.0, token_dropout=0.0, members=1), 680)
    assert chosen == {"dropout": 0.0, "token_dropout": 0.0, "members": 1}
    assert note == "dropout 0, token dropout 0, one network (given)"
    assert few_labels(EncoderOptions(), 680)[0] == {"dropout": 0.5, "token_dropout": 0.3}  # pretraining: no members
    with pytest.raises(ValueError, match="--members: expected int >= 1, got 0"):
        TextOptions(members=0)


def test_the_choice_reaches_the_data_the_meta_and_the_model(tmp_path):
    write_sentiment(tmp_path, 40, 30)
    options = {"data": "textfile", "data_dir": str(tmp_path), "dim": 8, "heads": 2, "subword_buckets": 0}

    def built(**given):
        data = Text(TextOptions(**options, **given)).build_data()
        torch.manual_seed(0)
        model = Text(TextOptions(**options, **given), meta=data.meta).build_model()
        return data, model, {m.p for m in model.modules() if isinstance(m, nn.Dropout)}

    data, model, rates = built()
    assert (data.meta["dropout"], data.meta["token_dropout"], data.meta["members"]) == (0.5, 0.3, 3) and rates == {0.5}
    assert data.train.token_dropout == 0.3 and any("30 training texts, fewer than" in n for n in data.meta["notes"])
    assert isinstance(model, TextEnsemble) and len(model.members) == 3
    first, second = (m.embed.weight for m in model.members[:2])
    assert not torch.equal(first, second)  # each network from its own random start
    data, model, rates = built(dropout=0.2, token_dropout=0.05, members=1)
    assert data.train.token_dropout == 0.05 and rates == {0.2} and isinstance(model, TextTransformer)
    # a run made before the rule saved neither in its meta: its options' dropout, one network
    meta = {k: v for k, v in data.meta.items() if k not in ("dropout", "token_dropout", "members")}
    model = Text(TextOptions(**options, dropout=0.3), meta=meta).build_model()
    assert isinstance(model, TextTransformer) and {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.3}


def members(n=3):
    torch.manual_seed(0)
    return [
        TextTransformer(vocab_size=30, num_classes=4, dim=8, depth=1, heads=2, max_len=12, dropout=0.0)
        for _ in range(n)
    ]  # fmt: skip  (float64 below: the gradients compared to rounding)


def test_an_ensemble_infers_the_members_mean_and_trains_each_member_as_alone():
    nets = [net.double() for net in members()]
    ensemble = TextEnsemble(nets)
    ids = torch.randint(1, 30, (5, 12))
    ids[0, 7:] = 0  # padding
    ensemble.eval()
    expected = torch.stack([m(ids) for m in nets]).mean(0)
    torch.testing.assert_close(ensemble(ids), expected, rtol=0, atol=0)
    assert ensemble.max_len == 12
    ensemble.train()
    target = torch.tensor([0, 1, 2, 3, 1])
    scores = ensemble(ids)
    assert scores.shape == (5, 3, 4) and torch.equal(member_mean(scores), scores.mean(1))
    member_losses(margin_loss, scores, target).backward()
    for net in nets:  # alone: its own loss; in the ensemble: 1/M of it (the mean), no other member's output in it
        alone = [p.grad.clone() for p in net.parameters()]
        net.zero_grad()
        margin_loss(net(ids), target).backward()
        for got, own in zip(alone, net.parameters(), strict=True):
            torch.testing.assert_close(got, own.grad / 3, rtol=1e-10, atol=1e-14)
    assert member_losses(margin_loss, scores[:, 0], target).item() == pytest.approx(
        margin_loss(scores[:, 0], target).item()
    )
    with pytest.raises(ValueError, match="members: expected at least 2 networks"):
        TextEnsemble(nets[:1])
