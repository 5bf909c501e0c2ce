"""`python -m shard_builder demo`: synthetic corpora in the real layouts, deterministic, buildable and learnable.

One demo is written per module (2 worker processes) and built once with the real CLI in a subprocess; the tests
read what those produced.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shard_builder.config import BuildConfig
from shard_builder.configuration import load_config
from shard_builder.corpora import prepare_records
from shard_builder.demo import (CORPUS_DIRS, EXPECTED_DUPLICATES, EXPECTED_SKIPS, plan_demo, render_clip,
                                write_demo_corpora)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_corpora(out, seed=0, workers=2)
    return out


@pytest.fixture(scope="module")
def shards(demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "shard_builder", "build", "--config", str(demo / "shards.yaml"),
                           f"out_dir={out}", "workers=2"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- writing
def test_layouts_are_the_real_ones(demo):
    expect = [
        "asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt",
        "asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt",
        "asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.eval.trl.txt",
        "asvspoof2021/ASVspoof2021_LA_eval/keys/LA/CM/trial_metadata.txt",
        "asvspoof2021/ASVspoof2021_PA_eval/keys/PA/CM/trial_metadata.txt",
        "replaydf/meta.csv", "pyara/pyara.tsv", "generated_phrases/manifest.csv",
    ]
    for rel in expect:
        assert (demo / rel).is_file(), rel
    assert list((demo / "asvspoof2019/LA/ASVspoof2019_LA_train/flac").glob("LA_T_*.flac"))
    for split in ("training", "validation", "testing"):
        for cls in ("real", "fake"):
            assert list((demo / "for/for-rerecorded" / split / cls).glob("*.wav")), (split, cls)
    for lang in ("ru_RU", "uk_UK", "pl_PL"):
        metas = list((demo / "slavic/mailabs" / lang / "by_book").glob("*/*/*/metadata.csv"))
        assert metas and all((m.parent / "wavs").is_dir() for m in metas)
    for lang in ("ru", "uk", "pl"):
        models = [d for d in (demo / "slavic/mlaad/fake" / lang).iterdir() if d.is_dir()]
        assert models and all((m / "meta.csv").is_file() and list(m.glob("*.wav")) for m in models)
        header = (models[0] / "meta.csv").read_text().splitlines()[0]
        assert header.split("|")[:2] == ["path", "original_file"]
    setups = sorted((demo / "replaydf/wav").iterdir())
    assert len(setups) >= 2 and all((s / "spoof").is_dir() and (s / "benign").is_dir() for s in setups)

    # key/protocol line formats (FACTS.md): 2019 = 5 columns, 2021 LA = 8, 2021 PA = 12
    line19 = (demo / "asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt").read_text()
    assert all(len(l.split()) == 5 for l in line19.splitlines())
    la = (demo / "asvspoof2021/ASVspoof2021_LA_eval/keys/LA/CM/trial_metadata.txt").read_text().splitlines()
    pa = (demo / "asvspoof2021/ASVspoof2021_PA_eval/keys/PA/CM/trial_metadata.txt").read_text().splitlines()
    assert all(len(l.split()) == 8 and l.endswith("notrim eval") for l in la)
    assert all(len(l.split()) == 12 and l.endswith("notrim eval") for l in pa)

    # the audio varies in format, rate and channels, not with the label
    infos = Counter()
    for p in demo.rglob("*"):
        if p.suffix in (".wav", ".flac") and p.stat().st_size > 1000:
            try:
                i = sf.info(str(p))
            except Exception:
                continue
            infos[(p.suffix, i.samplerate, i.channels)] += 1
    rates = {k[1] for k in infos}
    assert {16000, 22050, 44100} <= rates and any(k[2] == 2 for k in infos)
    assert {".wav", ".flac"} <= {k[0] for k in infos}


def test_shards_yaml_is_a_valid_build_config_with_both_groups(demo):
    cfg = load_config(BuildConfig, demo / "shards.yaml")
    groups = {c.name: c.attack_type for c in cfg.corpora}
    assert {"digital", "replay"} == set(groups.values())
    adapters = {c.adapter for c in cfg.corpora}
    assert {"asvspoof2019", "asvspoof2021", "for", "mailabs", "mlaad", "replaydf", "pyara", "manifest"} <= adapters
    assert groups["replaydf"] == groups["for_rerecorded"] == groups["asvspoof2021_pa"] == "replay"
    assert groups["slavic_mailabs"] == groups["slavic_mlaad"] == groups["pyara"] == "digital"
    # every adapter reads its corpus: labels from the corpus metadata, both labels where the corpus has both
    for i, entry in enumerate(cfg.corpora):
        labels = Counter(r.label for r in prepare_records(entry, f"corpora[{i}]"))
        want = {"mailabs": {"bonafide"}, "mlaad": {"spoof"}}.get(entry.adapter, {"bonafide", "spoof"})
        assert set(labels) == want, (entry.name, labels)


def test_same_seed_same_bytes_whatever_the_workers(demo, tmp_path):
    """The demo written by 2 worker processes equals clips rendered here, one by one, in another order."""
    plan, entries = plan_demo(0)
    clips = [c for c in plan.clips if c.path not in plan.truncate]  # (the one deliberately cut file)
    sample = clips[::-11]  # every 11th clip, backwards: all corpora, several rates, vocoders, channels
    assert {c.path.split("/")[0] for c in sample} == set(CORPUS_DIRS)
    for clip in sample:
        wave = render_clip(0, clip)
        data, sr = sf.read(str(demo / clip.path), dtype="float32", always_2d=True)
        assert sr == clip.sr and data.shape == wave.reshape(len(data), -1).shape, clip.path
        assert np.abs(wave.reshape(len(data), -1) - data).max() < 1e-4, clip.path  # 16-bit quantisation only
    # text files (protocols, keys, metadata) and the hand-made broken files are identical to a fresh plan's
    for rel, text in plan.texts.items():
        assert (demo / rel).read_text() == text, rel
    for rel, data in plan.raw.items():
        assert (demo / rel).read_bytes() == data, rel
    # ... and the same file bytes when written again by this process (spot-check of 2 short clips)
    from shard_builder.demo import _write_clip

    again = tmp_path / "again"
    cheap = [c for c in plan.clips if c.seconds < 1.3][:2]
    for clip in cheap:
        _write_clip((0, str(again), clip))
        assert _file_digest(again / clip.path) == _file_digest(demo / clip.path), clip.path
    # another seed is other audio
    first, other = render_clip(0, cheap[0]), render_clip(1, cheap[0])
    assert first.shape != other.shape or not np.allclose(first, other)


def test_refuses_to_overwrite_data_it_did_not_write(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "pyara").mkdir()  # someone else's data
    with pytest.raises(FileExistsError, match="pyara"):
        write_demo_corpora(out, seed=0)
    assert not (out / "shards.yaml").exists()


# ----------------------------------------------------------------------------------------------- building
def test_build_skips_the_broken_files_and_counts_the_duplicate(shards):
    report = json.loads((shards / "build_report.json").read_text())
    got = {(name, f["source"]): f["reason"] for name, c in report["corpora"].items() for f in c["skipped_files"]}
    assert got == EXPECTED_SKIPS
    assert report["totals"]["duplicates"] == EXPECTED_DUPLICATES
    assert sum(c["duplicates"] for c in report["corpora"].values()) == EXPECTED_DUPLICATES
    pa = report["corpora"]["asvspoof2021_pa"]
    assert pa["capped"] > 0 and pa["by_label"] == {"bonafide": 12, "spoof": 12}


def test_every_split_has_both_labels_and_both_attack_types(shards):
    for split in ("train", "val", "test"):
        totals = json.loads((shards / split / "index.json").read_text())["totals"]
        assert set(totals["by_label"]) == {"bonafide", "spoof"}, split
        assert set(totals["by_attack_type"]) == {"digital", "replay"}, split
        assert min(totals["by_label"].values()) >= 0.35 * totals["samples"], (split, totals["by_label"])


# ----------------------------------------------------------------------------------------------- learnable
def _logmel_stats(wave: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Per-band mean and std of a 40-band log-mel spectrogram (25 ms / 10 ms) and the mean frame-to-frame change."""
    n, hop = 400, 160
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(wave, (0, n)), n)[::hop] * np.hanning(n)
    lm = np.log(np.abs(np.fft.rfft(frames, 512)) ** 2 @ fb.T + 1e-8)
    return np.concatenate([lm.mean(0), lm.std(0), np.abs(np.diff(lm, axis=0)).mean(0)])


def _features(split_dir: Path):
    from shard_builder.synth import mel_filterbank

    fb = mel_filterbank(16000, 512, 40)
    X, y, groups = [], [], []
    for tar in sorted(split_dir.glob("*.tar")):
        members = {}
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                members.setdefault(key, {})[ext] = tf.extractfile(m).read()
        for key, parts in members.items():
            meta = json.loads(parts["json"])
            wave, sr = sf.read(io.BytesIO(parts.get("flac") or parts["wav"]), dtype="float32")
            assert sr == 16000
            X.append(_logmel_stats(wave, fb))
            y.append(int(meta["label"] == "spoof"))
            groups.append(meta["attack_type"])
    return np.asarray(X), np.asarray(y), np.asarray(groups)


def test_the_classes_are_told_apart_by_the_audio(shards):
    """Logistic regression on log-mel statistics only (no metadata) separates bona fide from spoof on the test split,
    in both attack types: the spoof cue is in the signal."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xtr, ytr, _ = _features(shards / "train")
    Xte, yte, gte = _features(shards / "test")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(Xtr, ytr)
    acc = float((clf.predict(Xte) == yte).mean())
    auc = float(roc_auc_score(yte, clf.decision_function(Xte)))
    assert acc >= 0.75 and auc >= 0.85, (acc, auc)
    for group in ("digital", "replay"):
        m = gte == group
        assert (clf.predict(Xte[m]) == yte[m]).mean() >= 0.65, group
