"""ROC, DET and confusion-matrix plots (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List

import numpy as np

from eval import metrics as M
from shard_builder.schema import ATTACK_TYPES, label_to_int


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    _plt().close(fig)
    os.replace(tmp, path)


def _placeholder(path: Path, title: str, why: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\n\n{why}", ha="center", va="center", wrap=True)
    _save(fig, path)


def roc_plot(path: Path, scores, labels, title: str) -> None:
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    e, _ = M.eer(scores, labels)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, lw=1.5, label=f"AUC {auc(fpr, tpr):.4f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot([e], [1 - e], "o", color="C3", label=f"EER {100 * e:.2f} %")
    ax.set_xlabel("False alarm rate (bona fide flagged as spoof)")
    ax.set_ylabel("Detection rate (spoof detected)")
    ax.set_title(f"ROC: {title}")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def det_plot(path: Path, scores, labels, title: str) -> None:
    from scipy.stats import norm

    p_miss, p_fa, _ = M.det_curve(scores, labels)
    e, _ = M.eer(scores, labels)
    lo, hi = 1e-3, (0.5 if e < 0.25 else 0.95)
    clip = lambda x: norm.ppf(np.clip(x, lo * 0.5, 1 - lo * 0.5))  # noqa: E731
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(clip(p_fa), clip(p_miss), lw=1.5)
    ax.plot(clip(np.array([e])), clip(np.array([e])), "o", color="C3", label=f"EER {100 * e:.2f} %")
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9])
    ticks = ticks[ticks <= hi]
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(lo), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo), norm.ppf(hi))
    ax.set_xlabel("False alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.set_title(f"DET: {title}")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def confusion_plot(path: Path, scores, labels, threshold: float, title: str) -> None:
    s, y = np.asarray(scores), np.asarray(labels)
    pred = (s >= threshold).astype(int)
    cm = np.array([[np.sum((y == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm / np.maximum(cm.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for t in (0, 1):
        row = max(cm[t].sum(), 1)
        for p in (0, 1):
            frac = cm[t, p] / row
            ax.text(p, t, f"{cm[t, p]}\n{100 * frac:.1f} %", ha="center", va="center",
                    color="white" if frac > 0.5 else "black")
    ax.set_xticks([0, 1], ["bona fide", "spoof"])
    ax.set_yticks([0, 1], ["bona fide", "spoof"])
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(f"{title} (score >= {threshold:.3g})")
    _save(fig, path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "unnamed"


def write_plots(plot_dir: Path, rows: List[dict], threshold: float, per_corpus: bool = False) -> List[str]:
    """``{roc,det,confusion}_{overall,digital,replay}.png`` (+ ``_corpus-<name>`` on request); returns paths."""
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    labels = np.array([label_to_int(r["label"]) for r in rows], dtype=np.int64)
    groups = [("overall", "overall", np.ones(len(rows), bool))]
    for at in ATTACK_TYPES:
        groups.append((at, at, np.array([r.get("attack_type") == at for r in rows], bool)))
    if per_corpus:
        for c in sorted({r.get("corpus") for r in rows if r.get("corpus")}):
            groups.append((f"corpus-{_safe(c)}", f"corpus {c}", np.array([r.get("corpus") == c for r in rows], bool)))
    written = []
    for suffix, title, m in groups:
        s, y = scores[m], labels[m]
        both = y.size > 0 and 0 < y.sum() < y.size
        for kind in ("roc", "det", "confusion"):
            path = plot_dir / f"{kind}_{suffix}.png"
            if kind == "confusion" and y.size:
                confusion_plot(path, s, y, threshold, title)
            elif both:
                (roc_plot if kind == "roc" else det_plot)(path, s, y, title)
            else:
                why = "no trials" if y.size == 0 else "only one class: curve undefined"
                _placeholder(path, f"{kind.upper()}: {title}", why)
            written.append(str(path))
    return written
