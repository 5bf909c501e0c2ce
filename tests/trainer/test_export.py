"""The export: safetensors + config.json, loadable without the training config; optional checkpoint averaging; the
score calibration fitted on validation scores that equal `python -m eval`'s, used by `eval` and `eval.detect`."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import DEMO_CONFIG, REPO, finish, start
from eval.calibration import fit_calibration
from eval.metrics import eer
from shard_builder.configuration import load_config
from trainer.checkpoint import COMMIT
from trainer.config import TrainConfig
from trainer.loop import ValScores, export_model
from trainer.model import Detector, DetectorConfig, average_checkpoints, load_export_meta


def test_export_averages_the_last_k_checkpoints(tmp_path):
    cfg = load_config(TrainConfig, DEMO_CONFIG, [f"output_dir={tmp_path}", "data.shards=/x", "export.average_last=2"])
    for step, seed in ((4, 0), (8, 1), (12, 2)):
        torch.manual_seed(seed)
        d = tmp_path / "checkpoints" / f"step-{step:08d}"
        Detector(DetectorConfig(backbone="tiny")).save_pretrained(d)
        (d / COMMIT).write_text("{}")
    model = Detector(DetectorConfig(backbone="tiny"))
    export_model(tmp_path, model, cfg, 12, {"step": 8, "val_eer": 0.1, "val_accuracy": 0.9})
    meta = load_export_meta(tmp_path / "model")
    assert meta["averaged_checkpoints"] == ["step-00000008", "step-00000012"]
    assert meta["best_val"]["step"] == 8 and meta["trained_steps"] == 12
    out = load_file(str(tmp_path / "model" / "model.safetensors"))
    a, b = (load_file(str(tmp_path / "checkpoints" / n / "model.safetensors")) for n in meta["averaged_checkpoints"])
    for k in ("head.weight", "backbone.encoder.layers.0.attention.q_proj.weight"):
        assert torch.allclose(out[k], (a[k] + b[k]) / 2)
    reloaded = Detector.from_pretrained(tmp_path / "model")
    assert torch.equal(reloaded.state_dict()["head.weight"], out["head.weight"])


# -- calibration at export; validation scores == `python -m eval` scores ---------------------------------------------
# A real 4-step run, exporting the mean of the last 2 checkpoints: the val split is scored with those weights.
CALIBRATED = ["train.max_steps=4", "checkpoint.every_steps=2", "val.every_steps=2", "export.average_last=2",
              "data.num_workers=0", "train.warmup_steps=1"]


@pytest.fixture(scope="module")
def calibrated(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated") / "run"
    assert finish(start(1, out, shards, CALIBRATED)) == 0, f"trainer failed: see {out}.log"
    return out


def read_csv(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_saves_a_calibration_fitted_on_the_exported_weights(calibrated):
    meta = load_export_meta(calibrated / "model")
    assert meta["averaged_checkpoints"] == ["step-00000002", "step-00000004"]
    cal = meta["calibration"]
    assert cal["method"] == "logistic_regression" and cal["a"] > 0 and cal["n_bonafide"] + cal["n_spoof"] == 12
    assert meta["calibration_data"] == {"split": "val", "max_seconds": 1.0, "samples": 12, "scores": "val_scores.csv"}
    rows = read_csv(calibrated / "val_scores.csv")
    s = np.array([float(r["score"]) for r in rows])
    y = np.array([int(r["label"]) for r in rows])
    assert cal == fit_calibration(s, y)  # the saved map is the one fitted on these scores ...
    # ... and these are the exported (averaged) weights' scores: not the last validation's (final weights)
    model = Detector.from_pretrained(calibrated / "model")
    avg = average_checkpoints([calibrated / "checkpoints" / n for n in meta["averaged_checkpoints"]])
    assert all(torch.equal(avg[k], v) for k, v in model.state_dict().items())


def test_validation_scores_equal_python_m_eval_and_detect_uses_the_calibration(calibrated, shards, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    ev = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "eval", f"model={calibrated / 'model'}", f"out_dir={ev}",
                        f"data.shards={shards}", "data.split=val", "scoring.max_seconds=1.0", "metrics.bootstrap=0",
                        "report.plots=false", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    val = {row["key"]: float(row["score"]) for row in read_csv(calibrated / "val_scores.csv")}
    got = {row["key"]: float(row["score"]) for row in read_csv(ev / "scores.csv")}
    assert got.keys() == val.keys() and len(val) == 12
    # equal up to float rounding (the batches hold different numbers of the same equal-length clips)
    assert max(abs(got[k] - val[k]) for k in val) < 1e-5
    metrics = json.loads((ev / "metrics.json").read_text())["overall"]
    rows = [json.loads(l) for l in (calibrated / "metrics.jsonl").read_text().splitlines()]
    final_val = [x for x in rows if "val_samples" in x][-1]
    assert final_val["step"] == 4 and final_val["val_samples"] == 12
    labels = {row["key"]: int(row["label"]) for row in read_csv(calibrated / "val_scores.csv")}
    keys = sorted(val)
    trainer_eer = eer(np.array([val[k] for k in keys]), np.array([labels[k] for k in keys]))[0]
    assert metrics["eer"] == pytest.approx(trainer_eer)  # (the step-4 row used the final, not the averaged weights)
    # with a calibration in the model, eval reports actDCF and Cllr
    assert metrics["act_dcf"] is not None and metrics["cllr"] is not None

    # eval.detect applies the saved calibration and its Bayes threshold (llr >= 0) by default
    clips = tmp_path / "clips"
    clips.mkdir()
    with tarfile.open(sorted((shards / "val").glob("*.tar"))[0]) as tf:
        for m in tf.getmembers()[:8]:
            if m.name.endswith((".wav", ".flac")):
                (clips / os.path.basename(m.name)).write_bytes(tf.extractfile(m).read())
    r = subprocess.run([sys.executable, "-m", "eval.detect", "--model", str(calibrated / "model"), "--quiet",
                        str(clips)], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "calibrated Bayes threshold" in r.stderr
    cal = load_export_meta(calibrated / "model")["calibration"]
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(lines) >= 2
    for line in lines:
        assert line["llr"] == pytest.approx(cal["a"] * line["score"] + cal["b"], abs=1e-6)
        assert line["p_spoof"] == pytest.approx(1 / (1 + math.exp(-line["llr"])))
        assert line["label"] == ("spoof" if line["llr"] >= 0 else "bonafide")


def test_export_without_usable_val_scores_records_why(tmp_path):
    cfg = load_config(TrainConfig, DEMO_CONFIG, [f"output_dir={tmp_path}", "data.shards=/x"])
    model = Detector(DetectorConfig(backbone="tiny"))
    export_model(tmp_path, model, cfg, 3, None, val=None)
    meta = load_export_meta(tmp_path / "model")
    assert "calibration" not in meta and "no validation split" in meta["calibration_skipped"]
    one_class = ValScores(step=3, keys=["a", "b"], labels=np.array([1, 1]), scores=np.array([0.5, 1.5]))
    export_model(tmp_path, model, cfg, 3, None, val=one_class)
    meta = load_export_meta(tmp_path / "model")
    assert "calibration" not in meta and "one class only" in meta["calibration_skipped"]
    assert read_csv(tmp_path / "val_scores.csv") == [{"key": "a", "label": "1", "score": "0.5"},
                                                    {"key": "b", "label": "1", "score": "1.5"}]


def test_metrics_rows_report_throughput_and_data_wait(calibrated):
    rows = [json.loads(l) for l in (calibrated / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for r in train_rows:
        assert r["audio_s_per_s"] > 0 and 0.0 <= r["data_wait_frac"] <= 1.0
    # the first step waits for the DataLoader to start and fill: the loader is what it waited for
    assert train_rows[0]["data_wait_frac"] > 0.0
