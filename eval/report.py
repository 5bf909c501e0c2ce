"""From scored rows to the contract's outputs: metrics.json, scores.csv, plots/*.png and report.md.

Everything is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import os
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from eval import metrics as M
from eval.calibration import apply_calibration, calibration_from_meta, score_threshold
from eval.config import EvalConfig
from shard_builder.configuration import to_dict
from shard_builder.schema import ATTACK_TYPES, label_to_int

CSV_COLUMNS = ("key", "score", "label", "attack_type", "corpus", "attack", "language", "speaker", "duration",
               "source", "chunks")


# -- atomic writes ------------------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- metric blocks ------------------------------------------------------------------------------------------
def metric_block(scores, labels, threshold: float, llrs=None, mc=None) -> dict:
    """``summarize`` for a group, or a block of counts with null rates when the group lacks a class."""
    mc = mc or {}
    y = np.asarray(labels)
    n_bona, n_spoof = M.counts(y)
    if n_bona == 0 or n_spoof == 0:
        s = np.asarray(scores, dtype=np.float64)
        acc = float(np.mean((s >= threshold).astype(int) == y)) if y.size else None
        missing = "spoof" if n_spoof == 0 else "bona fide"
        return {
            "eer": None, "eer_threshold": None, "eer_ci95": None, "accuracy": acc, "accuracy_at_eer": None,
            "min_dcf": None, "n_bonafide": n_bona, "n_spoof": n_spoof,
            "note": f"no {missing} trials: EER and minDCF are undefined" if y.size else "no trials",
        }
    return M.summarize(
        scores, labels, threshold, llrs=llrs, p_spoof=mc.get("p_spoof", 0.05), c_miss=mc.get("c_miss", 1.0),
        c_fa=mc.get("c_fa", 10.0), n_boot=mc.get("bootstrap", 1000), seed=mc.get("seed", 0),
    )


def grouped_blocks(rows: List[dict], field: str, scores, labels, threshold, llrs, mc,
                   always: tuple = ()) -> Dict[str, dict]:
    values = np.array([str(r.get(field)) if r.get(field) is not None else "" for r in rows], dtype=object)
    names = sorted({v for v in values if v} | set(always))
    out = {}
    for name in names:
        m = values == name
        out[name] = metric_block(scores[m], labels[m], threshold, None if llrs is None else llrs[m], mc)
    return out


def attack_blocks(rows: List[dict], scores, labels, threshold, llrs, mc) -> Dict[str, dict]:
    """Per fine-grained attack: its trials, plus (ASVspoof convention) all bona fide trials when it has none."""
    attacks = np.array([str(r.get("attack")) if r.get("attack") is not None else "" for r in rows], dtype=object)
    out = {}
    for name in sorted({a for a in attacks if a}):
        m = attacks == name
        note = None
        if not np.any(labels[m] == 0):
            m = m | (labels == 0)
            note = "this attack's spoof trials vs all bona fide trials"
        blk = metric_block(scores[m], labels[m], threshold, None if llrs is None else llrs[m], mc)
        if note:
            blk["note"] = note
        out[name] = blk
    return out


def compute_metrics(rows: List[dict], threshold: float, calibration: Optional[dict], mc: dict) -> dict:
    if not rows:
        raise ValueError("no sample could be scored: nothing to evaluate")
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    labels = np.array([label_to_int(r["label"]) for r in rows], dtype=np.int64)
    llrs = apply_calibration(scores, calibration) if calibration else None
    out = {
        "overall": metric_block(scores, labels, threshold, llrs, mc),
        "by_attack_type": grouped_blocks(rows, "attack_type", scores, labels, threshold, llrs, mc, ATTACK_TYPES),
        "by_corpus": grouped_blocks(rows, "corpus", scores, labels, threshold, llrs, mc),
    }
    if any(r.get("language") for r in rows):
        out["by_language"] = grouped_blocks(rows, "language", scores, labels, threshold, llrs, mc)
    if any(r.get("attack") for r in rows):
        out["by_attack"] = attack_blocks(rows, scores, labels, threshold, llrs, mc)
    return out


def polarity_warnings(m: dict) -> List[str]:
    """EER above 50 % means the scores rank the classes backwards: say so loudly rather than report 1 - EER."""
    warn = []
    for name, blk in [("overall", m["overall"])] + [(f"attack type {k}", v) for k, v in m["by_attack_type"].items()]:
        e, ci = blk.get("eer"), blk.get("eer_ci95")
        if e is None or e <= 0.5:
            continue
        if ci is None or ci[0] > 0.5:
            warn.append(
                f"{name}: EER {e:.2%} is above 50 %: the scores look INVERTED (higher should mean spoof). "
                f"With the polarity flipped the EER would be {1 - e:.2%}; check the model's label convention."
            )
        else:
            warn.append(f"{name}: EER {e:.2%} is above 50 % (the 95 % CI includes 50 %: a chance-level system, "
                        f"or inverted scores)")
    return warn


# -- scores.csv ---------------------------------------------------------------------------------------------
def scores_csv(rows: List[dict], llrs: Optional[np.ndarray]) -> str:
    buf = io.StringIO()
    cols = list(CSV_COLUMNS) + (["llr"] if llrs is not None else [])
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for i, r in enumerate(rows):
        vals = []
        for c in CSV_COLUMNS:
            v = r.get(c)
            vals.append(repr(float(v)) if c == "score" else ("" if v is None else v))
        if llrs is not None:
            vals.append(repr(float(llrs[i])))
        w.writerow(vals)
    return buf.getvalue()


def read_scores_csv(path) -> List[dict]:
    """Rows of a scores.csv with ``score`` as float (handy for tests and re-scoring)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["score"] = float(r["score"])
    return rows


# -- report.md ----------------------------------------------------------------------------------------------
def _pct(x) -> str:
    return "n/a" if x is None else f"{100.0 * x:.2f} %"


def _num(x, fmt="{:.4f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _ci(b) -> str:
    ci = b.get("eer_ci95")
    return "n/a" if not ci else f"{100 * ci[0]:.2f} - {100 * ci[1]:.2f} %"


def _group_table(title: str, blocks: Dict[str, dict], calibrated: bool) -> List[str]:
    head = f"| {title} | Accuracy | EER | EER 95 % CI | minDCF |" + (" actDCF | Cllr |" if calibrated else "") \
        + " Bona fide | Spoof |"
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    for name, b in blocks.items():
        cal = f" {_num(b.get('act_dcf'))} | {_num(b.get('cllr'))} |" if calibrated else ""
        lines.append(
            f"| {name} | {_pct(b['accuracy'])} | {_pct(b['eer'])} | {_ci(b)} | {_num(b['min_dcf'])} |{cal}"
            f" {b['n_bonafide']} | {b['n_spoof']} |"
        )
    return lines


def _error_table(rows: List[dict], idx, scores, n: int) -> List[str]:
    lines = ["| # | key | score | corpus | attack type | attack | source |", "|---|---|---|---|---|---|---|"]
    for j, i in enumerate(idx[:n], 1):
        r = rows[i]
        lines.append(f"| {j} | `{r['key']}` | {scores[i]:.4f} | {r.get('corpus') or ''} | {r.get('attack_type') or ''}"
                     f" | {r.get('attack') or ''} | `{r.get('source') or ''}` |")
    if len(lines) == 2:
        lines.append("| - | none | | | | | |")
    return lines


def render_report(cfg: EvalConfig, m: dict, rows: List[dict], meta_info: dict, plots: List[str]) -> str:
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    labels = np.array([label_to_int(r["label"]) for r in rows], dtype=np.int64)
    thr = meta_info["threshold"]
    calibrated = meta_info["calibration"] is not None
    o = m["overall"]
    L = [
        "# Evaluation report",
        "",
        f"- Model: `{cfg.model}`" + (f" (weights from `{meta_info['model_loaded_from']}`)"
                                     if meta_info.get("model_loaded_from") not in (None, str(cfg.model)) else ""),
        f"- Data: `{cfg.data.shards}` split `{cfg.data.split}`: {len(rows)} trials "
        f"({o['n_bonafide']} bona fide, {o['n_spoof']} spoof), {meta_info['stats']['audio_seconds']:.1f} s of audio "
        f"scored on {meta_info['stats']['processes']} process(es)",
        f"- Scoring: {'first %.1f s' % cfg.scoring.max_seconds if cfg.scoring.max_seconds else 'whole utterances'}"
        f", chunks of at most {cfg.scoring.chunk_seconds:g} s (chunk scores averaged)",
        "- **Score polarity**: `score` is the spoof logit, **higher means more likely spoof**; spoof is the positive "
        "class of ROC/DET (a false accept is a spoof scored as bona fide, a false reject is a bona fide trial "
        "flagged as spoof).",
        f"- Decision threshold (accuracy, confusion matrices): score >= {thr:.4f} means spoof ({meta_info['threshold_source']}).",
        f"- minDCF / actDCF costs: p_spoof={cfg.metrics.p_spoof}, C_miss={cfg.metrics.c_miss}, C_fa={cfg.metrics.c_fa}"
        + ("; actDCF and Cllr use the model's calibration (LLR = a * score + b)." if calibrated
           else "; the model has no calibration, so actDCF and Cllr are not reported."),
        "",
    ]
    if meta_info["warnings"]:
        L += ["## Warnings", ""] + [f"- **{w}**" for w in meta_info["warnings"]] + [""]
    L += ["## Overall", "", "| Accuracy | EER | EER 95 % CI | minDCF | Accuracy at EER threshold | EER threshold |"
          + (" actDCF | Cllr |" if calibrated else "") + " Bona fide | Spoof |"]
    L.append("|" + "---|" * (8 + (2 if calibrated else 0)))
    cal = f" {_num(o.get('act_dcf'))} | {_num(o.get('cllr'))} |" if calibrated else ""
    L.append(f"| {_pct(o['accuracy'])} | {_pct(o['eer'])} | {_ci(o)} | {_num(o['min_dcf'])} | "
             f"{_pct(o['accuracy_at_eer'])} | {_num(o['eer_threshold'])} |{cal} {o['n_bonafide']} | {o['n_spoof']} |")
    L += ["", "## Digital vs replay", ""] + _group_table("Attack type", m["by_attack_type"], calibrated)
    L += ["", "## By corpus", ""] + _group_table("Corpus", m["by_corpus"], calibrated)
    if "by_language" in m:
        L += ["", "## By language", ""] + _group_table("Language", m["by_language"], calibrated)
    if "by_attack" in m:
        L += ["", "## By attack (fine-grained)", "",
              "Attacks without bona fide trials of their own are scored against all bona fide trials.", ""]
        L += _group_table("Attack", m["by_attack"], calibrated)
    if plots:
        L += ["", "## Plots", "", "| | ROC | DET | Confusion matrix |", "|---|---|---|---|"]
        groups: Dict[str, Dict[str, str]] = {}
        for p in plots:
            kind, _, group = Path(p).stem.partition("_")
            groups.setdefault(group, {})[kind] = p
        for group, kinds in groups.items():
            cells = " | ".join(f"![{k} {group}]({kinds[k]})" if k in kinds else "" for k in ("roc", "det", "confusion"))
            L.append(f"| {group} | {cells} |")
    n = cfg.report.n_errors
    fa = np.flatnonzero((labels == 1) & (scores < thr))
    fa = fa[np.argsort(scores[fa], kind="mergesort")]  # lowest spoof scores first: most confidently accepted
    fr = np.flatnonzero((labels == 0) & (scores >= thr))
    fr = fr[np.argsort(-scores[fr], kind="mergesort")]  # highest bona fide scores first
    L += ["", "## Error analysis", "",
          f"At the decision threshold {thr:.4f}: {fa.size} false accepts (spoof scored as bona fide) and {fr.size} "
          f"false rejects (bona fide flagged as spoof).", "",
          f"### Most confident false accepts (spoof trials with the lowest scores, top {n})", ""]
    L += _error_table(rows, fa, scores, n)
    L += ["", f"### Most confident false rejects (bona fide trials with the highest scores, top {n})", ""]
    L += _error_table(rows, fr, scores, n)
    errs = meta_info["errors"]
    L += ["", "## Unreadable shard members", ""]
    if errs:
        L += [f"{len(errs)} member(s) could not be scored and are not in the metrics:", "",
              "| shard | key | reason |", "|---|---|---|"]
        L += [f"| {e['shard']} | `{e['key']}` | {e['reason']} |" for e in errs[:200]]
        if len(errs) > 200:
            L.append(f"| ... | {len(errs) - 200} more in metrics.json | |")
    else:
        L.append("None.")
    st = meta_info["stats"]
    L += ["", "## Throughput", "",
          f"{st['audio_seconds']:.1f} audio-seconds in {st['wall_seconds_max_rank']:.1f} s (slowest rank): "
          f"{(st['audio_seconds_per_second'] or 0):.1f} audio-s/s; {st['batches']} batches, padding "
          f"{100 * st['padding_fraction']:.1f} % of the computed samples.", ""]
    return "\n".join(L)


# -- entry point --------------------------------------------------------------------------------------------
def write_outputs(cfg: EvalConfig, merged: dict, model_meta: Optional[dict]) -> dict:
    out = Path(cfg.out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    rows = merged["rows"]
    calibration = calibration_from_meta(model_meta)
    early_warnings = []
    threshold, source = 0.0, "default: logit 0, i.e. p_spoof = sigmoid(score) >= 0.5"
    if cfg.metrics.threshold is not None:
        threshold, source = float(cfg.metrics.threshold), "metrics.threshold"
    elif calibration:
        try:
            threshold, source = score_threshold(calibration), "the calibrated Bayes threshold saved with the model"
        except ValueError as exc:
            early_warnings.append(f"calibration not used for the threshold: {exc}")
    mc = {"p_spoof": cfg.metrics.p_spoof, "c_miss": cfg.metrics.c_miss, "c_fa": cfg.metrics.c_fa,
          "bootstrap": cfg.metrics.bootstrap, "seed": cfg.metrics.seed}
    m = compute_metrics(rows, threshold, calibration, mc)
    warnings = early_warnings + polarity_warnings(m)
    if merged["duplicate_keys"]:
        warnings.append(f"{len(merged['duplicate_keys'])} key(s) occur more than once in the split "
                        f"(e.g. {merged['duplicate_keys'][:3]}): each occurrence is counted")
    if merged["errors"]:
        warnings.append(f"{len(merged['errors'])} shard member(s) could not be read and were skipped")
    expected = merged["stats"].get("total_samples_in_index")
    if expected is not None and expected != len(rows) + len(merged["errors"]):
        warnings.append(f"the index lists {expected} samples; {len(rows)} were scored and "
                        f"{len(merged['errors'])} skipped")
    llrs = apply_calibration([r["score"] for r in rows], calibration) if calibration else None
    _write_text(out / "scores.csv", scores_csv(rows, llrs))
    plots: List[str] = []
    if cfg.report.plots:
        from eval.plots import write_plots

        plots = write_plots(out / "plots", rows, threshold, per_corpus=cfg.report.per_corpus_plots)
    info = {
        "model": str(cfg.model),
        "model_loaded_from": (model_meta or {}).get("loaded_from"),
        "split": cfg.data.split,
        "shards": str(cfg.data.shards),
        "threshold": threshold,
        "threshold_source": source,
        "score": "spoof logit: higher means more likely spoof",
        "calibration": calibration,
        "stats": merged["stats"],
        "errors": merged["errors"],
        "warnings": warnings,
        "config": to_dict(cfg),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    doc = dict(m)
    doc["meta"] = {k: v for k, v in info.items() if k not in ("errors", "warnings")}
    doc["warnings"] = warnings
    doc["errors"] = merged["errors"]
    _write_text(out / "metrics.json", json.dumps(doc, indent=2, default=_json_default, allow_nan=False))
    _write_text(out / "report.md", render_report(cfg, m, rows, info, [f"plots/{Path(p).name}" for p in plots]))
    return {"out_dir": str(out), "metrics": m, "warnings": warnings, "errors": merged["errors"],
            "stats": merged["stats"], "threshold": threshold}


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    return str(o)
