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


def counts(labels) -> Tuple[int, int]:
    """``(n_bonafide, n_spoof)`` of a label array (0 = bona fide, 1 = spoof)."""
    y = np.asarray(labels).ravel()
    n_spoof = int(np.sum(y == 1))
    return int(y.size - n_spoof), n_spoof


def accuracy_at_eer(scores, labels) -> float:
    """Accuracy with the decision threshold set at the EER operating point."""
    _, thr = eer(scores, labels)
    return accuracy(scores, labels, thr)


def eer_ci(scores, labels, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Tuple[float, float]:
    """Bootstrap confidence interval of the EER (percentile method).

    Trials are resampled with replacement *within each class* (so every replicate keeps the class sizes and
    both classes), the EER recomputed each time, and the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
    of the replicates returned. Deterministic for a given ``seed``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    s, y = _validate(scores, labels)
    rng = np.random.default_rng(seed)
    # Sort once; a replicate is then a vector of multiplicities over the sorted trials, and its curve the
    # cumulative sums of those multiplicities: the same rates det_curve would compute on the resampled set.
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    cut = np.concatenate([[True], s_sorted[1:] != s_sorted[:-1], [True]])
    spoof_pos, bona_pos = np.flatnonzero(y_sorted == 1), np.flatnonzero(y_sorted == 0)
    n_spoof, n_bona = spoof_pos.size, bona_pos.size
    reps = np.empty(n_boot)
    step = max(1, int(4_000_000 // s.size))
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        w_spoof = np.zeros((k, s.size))
        w_bona = np.zeros((k, s.size))
        w_spoof[:, spoof_pos] = rng.multinomial(n_spoof, np.full(n_spoof, 1.0 / n_spoof), size=k)
        w_bona[:, bona_pos] = rng.multinomial(n_bona, np.full(n_bona, 1.0 / n_bona), size=k)
        zero = np.zeros((k, 1))
        p_miss = np.concatenate([zero, np.cumsum(w_spoof, axis=1)], axis=1)[:, cut] / n_spoof
        p_fa = (n_bona - np.concatenate([zero, np.cumsum(w_bona, axis=1)], axis=1)[:, cut]) / n_bona
        i = np.argmin(np.abs(p_miss - p_fa), axis=1)
        rows = np.arange(k)
        reps[start:start + k] = (p_miss[rows, i] + p_fa[rows, i]) / 2.0
    lo, hi = np.quantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def bayes_threshold(p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0) -> float:
    """The LLR threshold of the Bayes decision: spoof if ``llr >= log(c_fa (1 - p_spoof) / (c_miss p_spoof))``."""
    if not 0.0 < p_spoof < 1.0:
        raise ValueError(f"p_spoof must be in (0, 1), got {p_spoof}")
    return float(np.log(c_fa * (1.0 - p_spoof) / (c_miss * p_spoof)))


def act_dcf(llrs, labels, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0) -> float:
    """Normalised actual detection cost of calibrated log-likelihood ratios (``llr = log p(x|spoof)/p(x|bona)``).

    Decisions are taken at the Bayes threshold :func:`bayes_threshold`; normalised like :func:`min_dcf`, so
    ``act_dcf >= min_dcf`` and the gap is the calibration loss. A value above 1 means the decisions are worse
    than always answering the cheaper class.
    """
    s, y = _validate(llrs, labels)
    t = bayes_threshold(p_spoof, c_miss, c_fa)
    decide_spoof = s >= t
    p_miss = float(np.mean(~decide_spoof[y == 1]))
    p_fa = float(np.mean(decide_spoof[y == 0]))
    dcf = c_miss * p_spoof * p_miss + c_fa * (1.0 - p_spoof) * p_fa
    return float(dcf / min(c_miss * p_spoof, c_fa * (1.0 - p_spoof)))


def cllr(llrs, labels) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer): 0 is perfect, 1 is an uninformative system (llr = 0).

    ``Cllr = 1/2 [ mean_spoof log2(1 + e^{-llr}) + mean_bona log2(1 + e^{llr}) ]``.
    """
    s, y = _validate(llrs, labels)
    c_spoof = np.mean(np.logaddexp(0.0, -s[y == 1])) / np.log(2.0)
    c_bona = np.mean(np.logaddexp(0.0, s[y == 0])) / np.log(2.0)
    return float(0.5 * (c_spoof + c_bona))


def summarize(
    scores,
    labels,
    threshold: float = 0.0,
    *,
    llrs=None,
    p_spoof: float = 0.05,
    c_miss: float = 1.0,
    c_fa: float = 10.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """One metrics block: ``{eer, eer_threshold, eer_ci95, accuracy, accuracy_at_eer, min_dcf, n_bonafide, n_spoof}``.

    ``accuracy`` uses the fixed ``threshold`` (on the score scale; 0.0 on a logit is p_spoof = 0.5). With
    ``llrs`` (calibrated log-likelihood ratios of the same trials) the block also has ``act_dcf`` and ``cllr``.
    ``n_boot=0`` skips the bootstrap (``eer_ci95`` is then None). Rates are fractions in [0, 1].
    Raises ValueError for single-class input (a detection metric needs both classes).
    """
    s, y = _validate(scores, labels)
    e, thr = eer(s, y)
    n_bona, n_spoof = counts(y)
    out = {
        "eer": e,
        "eer_threshold": thr,
        "eer_ci95": list(eer_ci(s, y, n_boot=n_boot, seed=seed)) if n_boot > 0 else None,
        "accuracy": accuracy(s, y, threshold),
        "accuracy_at_eer": accuracy(s, y, thr),
        "min_dcf": min_dcf(s, y, p_spoof=p_spoof, c_miss=c_miss, c_fa=c_fa),
        "n_bonafide": n_bona,
        "n_spoof": n_spoof,
    }
    if llrs is not None:
        out["act_dcf"] = act_dcf(llrs, y, p_spoof=p_spoof, c_miss=c_miss, c_fa=c_fa)
        out["cllr"] = cllr(llrs, y)
    return out
