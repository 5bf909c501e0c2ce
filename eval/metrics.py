"""Detection metrics, pure numpy (the trainer's validation and the evaluation runner share them).

Convention: ``labels`` are 1 for spoof and 0 for bona fide; a higher score means more likely spoof.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def _validate(scores, labels) -> Tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    if s.size == 0:
        raise ValueError("no scores given")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (bona fide) or 1 (spoof)")
    y = y.astype(np.int64)
    n_spoof = int(y.sum())
    if n_spoof == 0 or n_spoof == y.size:
        which = "spoof" if n_spoof == 0 else "bona fide"
        raise ValueError(f"need both classes to compute a detection metric: no {which} trials")
    return s, y


def det_curve(scores, labels) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every threshold, the ASVspoof evaluation-package way.

    With the decision "spoof if score >= t", sort the scores ascending (stable; at equal scores bona fide
    before spoof), and sweep the threshold past one trial at a time. Returns ``(p_miss, p_fa, thresholds)``
    where ``p_miss`` is the fraction of spoof trials below the threshold (missed spoofs) and ``p_fa`` the
    fraction of bona fide trials at or above it (false alarms), starting at (0, 1) and ending at (1, 0).
    Ties are handled by taking only the points between distinct score values.
    """
    s, y = _validate(scores, labels)
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    n_spoof = y.sum()
    n_bona = y.size - n_spoof
    spoof_below = np.concatenate([[0], np.cumsum(y_sorted)])
    bona_below = np.concatenate([[0], np.cumsum(1 - y_sorted)])
    # Keep only cut points between distinct scores (and both ends), so tied trials fall on one side together.
    cut = np.concatenate([[True], s_sorted[1:] != s_sorted[:-1], [True]])
    p_miss = spoof_below[cut] / n_spoof
    p_fa = (n_bona - bona_below[cut]) / n_bona
    thresholds = np.concatenate([[s_sorted[0]], s_sorted[np.flatnonzero(cut[1:-1]) + 1], [np.nextafter(s_sorted[-1], np.inf)]])
    return p_miss, p_fa, thresholds


def eer(scores, labels) -> Tuple[float, float]:
    """Equal error rate and its threshold: the operating point where miss and false-alarm rates cross.

    As in the ASVspoof evaluation package: ``eer = mean(p_miss[i], p_fa[i])`` at the index minimising
    ``|p_miss - p_fa|`` over the (non-interpolated) curve of :func:`det_curve`.
    """
    p_miss, p_fa, thr = det_curve(scores, labels)
    i = int(np.argmin(np.abs(p_miss - p_fa)))
    return float((p_miss[i] + p_fa[i]) / 2.0), float(thr[i])


def min_dcf(scores, labels, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0) -> float:
    """Normalised minimum detection cost (ASVspoof 5 parameters by default).

    ``DCF(t) = c_miss * p_spoof * P_miss(t) + c_fa * (1 - p_spoof) * P_fa(t)``, normalised by the cost of the
    best trivial system ``min(c_miss * p_spoof, c_fa * (1 - p_spoof))``, minimised over thresholds.
    """
    if not 0.0 < p_spoof < 1.0:
        raise ValueError(f"p_spoof must be in (0, 1), got {p_spoof}")
    p_miss, p_fa, _ = det_curve(scores, labels)
    dcf = c_miss * p_spoof * p_miss + c_fa * (1.0 - p_spoof) * p_fa
    return float(dcf.min() / min(c_miss * p_spoof, c_fa * (1.0 - p_spoof)))


def accuracy(scores, labels, threshold: float) -> float:
    """Fraction of trials classified correctly with the decision "spoof if score >= threshold"."""
    s, y = _validate(scores, labels)
    return float(np.mean((s >= threshold).astype(np.int64) == y))
