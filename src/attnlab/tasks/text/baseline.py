"""The text task's classical baseline: TF-IDF of character 1-3-grams + logistic regression (scikit-learn),
fitted on the same training split and scored on the same test split as the network, in the same run."""

from __future__ import annotations

from .data import TextSplits

__all__ = ["tfidf_logreg"]


def tfidf_logreg(d: TextSplits) -> dict[str, float]:
    """TF-IDF of character 1-3-grams (sublinear tf) + logistic regression: ``test_acc``, ``test_macro_f1``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    train_x, train_y, test_x, test_y = d.train_texts, d.train_labels, d.test_texts, d.test_labels
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    clf = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(train_x), train_y)
    pred = clf.predict(vectorizer.transform(test_x))
    scores = {"test_acc": accuracy_score(test_y, pred), "test_macro_f1": f1_score(test_y, pred, average="macro")}
    return {k: float(v) for k, v in scores.items()}
