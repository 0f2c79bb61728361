"""Model metrics as plain JSON values: floats, ints, lists and dicts; NaN and infinities become None.

``regression_metrics``: ``rmse``, ``mae``, ``r2`` (None under 2 rows), ``mape`` (the mean of
``|y - pred| / |y|`` over the rows where ``y != 0``; None when every ``y`` is 0), ``n_rows``.

``classification_metrics``: ``accuracy``; ``precision``, ``recall``, ``f1`` each ``_macro`` and
``_weighted`` (labels in class order; a class never predicted counts 0); ``roc_auc`` (binary: of
the positive class ``classes[1]``; multiclass: one-vs-rest, macro; None when the rows lack a class
it needs); ``log_loss``; ``confusion_matrix`` (rows: true class, columns: predicted, in class
order); ``roc_curve`` and ``pr_curve`` (binary: one curve ``{"fpr", "tpr", "thresholds"}`` /
``{"precision", "recall", "thresholds"}``; multiclass: ``[{"class", ...}]`` one-vs-rest per class,
None for a class absent from the rows), each at most 101 points, picked evenly along the full
curve, ends kept; for binary also ``ks`` (``max |TPR - FPR|`` over the ROC curve) and
``calibration`` (``sklearn.calibration.calibration_curve``, 10 uniform bins: ``{"prob_true",
"prob_pred"}``, unweighted). The predicted label is the most probable class (the first of equals).
Weights, when given, weight every metric but the calibration curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    mean_absolute_error,
    precision_recall_curve,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

from studio9.ml.engine.columns import python_scalar

__all__ = ["class_labels", "classification_metrics", "regression_metrics"]

MAX_CURVE_POINTS: Final = 101
CALIBRATION_BINS: Final = 10


def _num(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _nums(values: Any) -> list[float | None]:
    return [_num(v) for v in np.asarray(values, dtype=np.float64)]


def _thin(count: int) -> Any:
    """Evenly spread positions of at most ``MAX_CURVE_POINTS`` of ``count`` points, ends kept."""
    return np.unique(np.round(np.linspace(0, count - 1, min(count, MAX_CURVE_POINTS))).astype(np.int64))


def regression_metrics(y: Any, pred: Any, weights: Any = None) -> dict[str, Any]:
    """RMSE, MAE, R², MAPE and the row count of predictions ``pred`` of ``y`` (module doc)."""
    truth = np.asarray(y, dtype=np.float64)
    guess = np.asarray(pred, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    result: dict[str, Any] = {"n_rows": len(truth), "rmse": None, "mae": None, "r2": None, "mape": None}
    if len(truth) == 0:
        return result
    result["rmse"] = _num(root_mean_squared_error(truth, guess, sample_weight=w))
    result["mae"] = _num(mean_absolute_error(truth, guess, sample_weight=w))
    if len(truth) >= 2:
        result["r2"] = _num(r2_score(truth, guess, sample_weight=w))
    nonzero = truth != 0
    if nonzero.any():
        ratios = np.abs((truth[nonzero] - guess[nonzero]) / truth[nonzero])
        kept = None if w is None else w[nonzero]
        if kept is None or kept.sum() > 0:
            result["mape"] = _num(np.average(ratios, weights=kept))
    return result


def class_labels(classes: Sequence[Any], like: Any) -> Any:
    """``classes`` as a numpy array of the same kind as the targets ``like`` (so that scikit-learn
    compares them as equals: an object array for text, else the targets' dtype)."""
    dtype = like.dtype if like.dtype != np.dtype(object) else object
    return np.array(list(classes), dtype=dtype)


def _roc(truth: Any, score: Any, w: Any) -> dict[str, Any]:
    fpr, tpr, thresholds = roc_curve(truth, score, sample_weight=w)
    keep = _thin(len(fpr))
    return {"fpr": _nums(fpr[keep]), "tpr": _nums(tpr[keep]), "thresholds": _nums(thresholds[keep])}


def _pr(truth: Any, score: Any, w: Any) -> dict[str, Any]:
    precision, recall, thresholds = precision_recall_curve(truth, score, sample_weight=w)
    # the last point (recall 0, precision 1) has no threshold
    thresholds = np.append(thresholds, np.nan)
    keep = _thin(len(precision))
    return {
        "precision": _nums(precision[keep]),
        "recall": _nums(recall[keep]),
        "thresholds": _nums(thresholds[keep]),
    }


def classification_metrics(y: Any, proba: Any, classes: Sequence[Any], weights: Any = None) -> dict[str, Any]:
    """The metrics of class probabilities ``proba`` (columns in ``classes`` order) for the true
    labels ``y`` (see the module doc)."""
    truth = np.asarray(y)
    scores = np.asarray(proba, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    labels = class_labels(classes, truth)
    result: dict[str, Any] = {"n_rows": len(truth), "classes": [python_scalar(c) for c in classes]}
    if len(truth) == 0:
        return result
    pred = labels[np.argmax(scores, axis=1)]
    result["accuracy"] = _num(accuracy_score(truth, pred, sample_weight=w))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            truth, pred, labels=labels, average=average, sample_weight=w, zero_division=0
        )
        result[f"precision_{average}"] = _num(p)
        result[f"recall_{average}"] = _num(r)
        result[f"f1_{average}"] = _num(f)
    result["log_loss"] = _num(log_loss(truth, scores, labels=labels, sample_weight=w))
    matrix = confusion_matrix(truth, pred, labels=labels, sample_weight=w)
    result["confusion_matrix"] = matrix.tolist() if w is None else [_nums(row) for row in matrix]
    present = [bool((truth == label).any()) for label in labels]
    if len(labels) == 2:
        positive = truth == labels[1]
        result["positive_class"] = python_scalar(labels[1])
        result["roc_auc"] = result["ks"] = result["roc_curve"] = result["pr_curve"] = None
        if all(present):
            result["roc_auc"] = _num(roc_auc_score(positive, scores[:, 1], sample_weight=w))
            fpr, tpr, _ = roc_curve(positive, scores[:, 1], sample_weight=w)
            result["ks"] = _num(np.max(np.abs(tpr - fpr)))
            result["roc_curve"] = _roc(positive, scores[:, 1], w)
        if present[1]:
            result["pr_curve"] = _pr(positive, scores[:, 1], w)
        prob_true, prob_pred = calibration_curve(positive, scores[:, 1], n_bins=CALIBRATION_BINS)
        result["calibration"] = {"prob_true": _nums(prob_true), "prob_pred": _nums(prob_pred)}
        return result
    result["roc_auc"] = None
    if all(present):
        result["roc_auc"] = _num(
            roc_auc_score(truth, scores, multi_class="ovr", average="macro", labels=labels, sample_weight=w)
        )
    roc: list[dict[str, Any] | None] = []
    pr: list[dict[str, Any] | None] = []
    for j, label in enumerate(labels):
        mine = truth == label
        both = present[j] and not mine.all()
        roc.append({"class": python_scalar(label), **_roc(mine, scores[:, j], w)} if both else None)
        pr.append({"class": python_scalar(label), **_pr(mine, scores[:, j], w)} if present[j] else None)
    result["roc_curve"], result["pr_curve"] = roc, pr
    return result
