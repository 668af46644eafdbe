"""The classification metrics (images and clips) against scikit-learn, the confusion matrix and McNemar's exact test
by hand."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score, top_k_accuracy_score

from attnlab.tasks.metrics import ClassificationMetrics, TrainAccuracy
from attnlab.tasks.metrics import confusion_matrix as counts


def test_the_confusion_matrix_by_hand():
    pred, target = torch.tensor([0, 2, 1, 1, 2]), torch.tensor([0, 1, 1, 2, 2])
    expected = [[1, 0, 0], [0, 1, 1], [0, 1, 1]]  # rows: true, columns: predicted
    assert counts(pred, target, 3).tolist() == expected
    assert counts(pred.view(1, 5), target.view(1, 5), 3).tolist() == expected  # any shape (segmentation maps)


@pytest.mark.filterwarnings("ignore:.k. .3. greater than")  # top-5 of 3 classes: every sample
@pytest.mark.parametrize("classes", [3, 7])
def test_classification_metrics_equal_scikit_learns_over_batches(classes):
    g = torch.Generator().manual_seed(classes)
    logits = torch.randn(203, classes, generator=g)
    target = torch.randint(classes, (203,), generator=g)
    target[:classes] = torch.arange(classes)  # every class present
    metric = ClassificationMetrics(classes)
    losses = []
    for chunk in range(0, 203, 64):  # uneven batches: the sums weigh each by its size
        out, y = logits[chunk : chunk + 64], target[chunk : chunk + 64]
        loss = torch.nn.functional.cross_entropy(out, y)
        losses.append(loss.item() * len(y))
        metric.update(out, y, loss)
    scalars, details = metric.compute()
    pred = logits.argmax(1).numpy()
    assert scalars["acc"] == pytest.approx(accuracy_score(target.numpy(), pred), abs=1e-12)
    labels = np.arange(classes)
    top5 = top_k_accuracy_score(target.numpy(), logits.numpy(), k=min(5, classes), labels=labels)
    assert scalars["top5"] == pytest.approx(top5, abs=1e-12)
    assert scalars["loss"] == pytest.approx(sum(losses) / 203, rel=1e-12)
    assert details["confusion"] == confusion_matrix(target.numpy(), pred, labels=labels).tolist()
    recall = recall_score(target.numpy(), pred, labels=labels, average=None)
    np.testing.assert_allclose(details["per_class_acc"], recall, atol=1e-12)


def test_training_accuracy_counts_the_batches_as_trained():
    metric = TrainAccuracy()
    metric.update(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 0, 0]), torch.tensor(0.0))
    metric.update(torch.tensor([[0.0, 1.0]]), torch.tensor([1]), torch.tensor(0.0))
    assert metric.compute() == ({"acc": 3 / 4}, {})


def test_mcnemars_exact_test_by_hand():
    from attnlab.measure.paired import mcnemar_exact

    # 10 disagreements, 8 going to the first: p = 2 · P(X <= 2 | Binomial(10, 1/2)) = 2 (1 + 10 + 45) / 1024
    first = [True] * 8 + [False] * 2 + [True] * 5 + [False] * 3
    second = [False] * 8 + [True] * 2 + [True] * 5 + [False] * 3
    t = mcnemar_exact(first, second)
    assert (t["n"], t["first_only"], t["second_only"]) == (18, 8, 2) and t["p"] == pytest.approx(112 / 1024)
    assert mcnemar_exact(second, first)["p"] == pytest.approx(112 / 1024)  # two-sided: symmetric
    assert mcnemar_exact([True, False], [True, False])["p"] == 1.0  # no disagreement: no evidence
    with pytest.raises(ValueError, match="one length"):
        mcnemar_exact([True], [True, False])


def test_seed_pairs_intervals_and_verdicts():
    from scipy.stats import t

    from attnlab.measure.seed_pairs import bootstrap_interval, seeds_for, t_interval, verdict

    d = [0.012, 0.004, 0.009, -0.001]
    mean, low, high = t_interval(d)
    sd = np.std(d, ddof=1)
    assert mean == pytest.approx(0.006) and high - mean == pytest.approx(t.ppf(0.975, 3) * sd / 2)
    assert verdict(low, high) == "no difference" and verdict(0.001, 0.02) == "better"
    assert verdict(0.001, 0.02, higher_is_better=False) == "worse"  # a loss that rose
    with pytest.raises(ValueError, match="at least 2 paired differences"):
        t_interval([0.1])
    first = np.array([True] * 90 + [False] * 10)
    diff, low, high = bootstrap_interval(first, first)
    assert (diff, low, high) == (0.0, 0.0, 0.0)  # the same predictions: no difference, and no spread
    second = first.copy()
    second[:30] = False  # the second misses 30 more of 100
    diff, low, high = bootstrap_interval(first, second)
    assert diff == pytest.approx(0.30) and low > 0.2 and high < 0.4 and verdict(low, high) == "better"
    # a difference of one standard deviation of the paired differences needs 7 seed pairs; of half a one, 18
    assert seeds_for(1.0, 1.0) == 7 and seeds_for(0.5, 1.0) == 18
