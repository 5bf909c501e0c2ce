"""Score calibration: raw spoof logits -> log-likelihood ratios, by prior-weighted logistic regression.

``llr = a * score + b`` where ``llr = log p(score | spoof) / p(score | bona fide)``. The regression is fitted on
validation scores with the classes re-weighted to an effective prior ``prior`` (BOSARIS / Brümmer's recipe), then
``logit(prior)`` is subtracted from its output so that what remains is a likelihood ratio, independent of the class
balance of the validation set. With calibrated LLRs the Bayes decision for any operating point is a fixed threshold
(:func:`eval.metrics.bayes_threshold`), which makes ``actDCF`` and ``Cllr`` meaningful.

The calibration travels with the exported model: the trainer calls :func:`fit_calibration` on its final
validation scores and passes the dict to ``Detector.save_pretrained(dir, extra={"calibration": cal})``; ``eval``
and ``eval.detect`` read it back with :func:`calibration_from_model_dir` / the ``export_meta`` of the model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from eval.metrics import _validate, bayes_threshold

CALIBRATION_KEY = "calibration"
METHOD = "logistic_regression"


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def fit_calibration(
    scores,
    labels,
    prior: float = 0.5,
    *,
    p_spoof: float = 0.5,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict:
    """Fit ``llr = a * score + b`` on (validation) ``scores`` with ``labels`` (1 = spoof, 0 = bona fide).

    ``prior`` is the effective spoof prior the regression is weighted to (0.5: both classes weigh the same,
    whatever their counts). ``p_spoof, c_miss, c_fa`` name the operating point whose Bayes threshold becomes the
    default decision threshold of ``eval.detect`` (defaults: equal priors and costs, i.e. ``llr >= 0``).

    Returns a JSON-serialisable dict: ``{"method", "a", "b", "prior", "operating_point": {...},
    "threshold_llr", "threshold_score", "n_bonafide", "n_spoof"}``. ``threshold_score`` is the same decision
    threshold on the raw score scale (None if the fitted slope is not positive).
    """
    from sklearn.linear_model import LogisticRegression

    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in (0, 1), got {prior}")
    s, y = _validate(scores, labels)
    n_spoof = int(y.sum())
    n_bona = int(y.size - n_spoof)
    # Weights giving the spoof class total weight `prior` and the bona fide class `1 - prior`, scaled to sum to n.
    # The mild L2 penalty (C=1, against n weighted log-losses) is negligible with hundreds of trials and keeps the
    # map finite (rather than infinitely confident) when the validation scores are perfectly separated.
    w = np.where(y == 1, prior / n_spoof, (1.0 - prior) / n_bona) * y.size
    lr = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000)
    lr.fit(s.reshape(-1, 1), y, sample_weight=w)
    a = float(lr.coef_[0, 0])
    b = float(lr.intercept_[0]) - _logit(prior)
    threshold_llr = bayes_threshold(p_spoof, c_miss, c_fa)
    return {
        "method": METHOD,
        "a": a,
        "b": b,
        "prior": float(prior),
        "operating_point": {"p_spoof": float(p_spoof), "c_miss": float(c_miss), "c_fa": float(c_fa)},
        "threshold_llr": threshold_llr,
        "threshold_score": (threshold_llr - b) / a if a > 0 else None,
        "n_bonafide": n_bona,
        "n_spoof": n_spoof,
    }


def check_calibration(cal: dict) -> dict:
    """Validate a calibration dict read from a model's config.json; returns it or raises ValueError."""
    if not isinstance(cal, dict):
        raise ValueError(f"calibration must be a mapping, got {type(cal).__name__}")
    for key in ("a", "b"):
        if not isinstance(cal.get(key), (int, float)) or not math.isfinite(cal[key]):
            raise ValueError(f"calibration key '{key}' must be a finite number, got {cal.get(key)!r}")
    return cal


def apply_calibration(scores, cal: dict) -> np.ndarray:
    """Raw scores -> calibrated log-likelihood ratios (float64)."""
    check_calibration(cal)
    return float(cal["a"]) * np.asarray(scores, dtype=np.float64) + float(cal["b"])


def decision_threshold_llr(cal: dict) -> float:
    """The calibration's default decision threshold on the LLR scale (its operating point's Bayes threshold)."""
    if "threshold_llr" in cal and cal["threshold_llr"] is not None:
        return float(cal["threshold_llr"])
    op = cal.get("operating_point") or {}
    return bayes_threshold(op.get("p_spoof", 0.5), op.get("c_miss", 1.0), op.get("c_fa", 1.0))


def score_threshold(cal: Optional[dict]) -> float:
    """The default decision threshold on the raw score (logit) scale: the calibrated Bayes threshold, else 0.0
    (``sigmoid(0) = 0.5`` on p_spoof)."""
    if not cal:
        return 0.0
    a, b = float(cal["a"]), float(cal["b"])
    if a <= 0:
        raise ValueError(f"calibration slope a={a} is not positive: the scores are not usable with this polarity")
    return (decision_threshold_llr(cal) - b) / a


def calibration_from_meta(meta: Optional[dict]) -> Optional[dict]:
    """The calibration stored in an exported model's config.json (None when there is none)."""
    if not meta:
        return None
    cal = meta.get(CALIBRATION_KEY)
    return check_calibration(cal) if cal else None


def calibration_from_model_dir(directory) -> Optional[dict]:
    path = Path(directory) / "config.json"
    if not path.is_file():
        return None
    return calibration_from_meta(json.loads(path.read_text()))
