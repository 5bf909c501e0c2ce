"""The evaluation runner end to end: real tar shards, a real (tiny) model, real processes."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, subprocess_env
from eval.config import EvalConfig
from eval.report import read_scores_csv
from shard_builder.configuration import ConfigError, load_config

CONFIG = REPO / "configs" / "eval.yaml"
# Small windows and batches so that 3 shards make 6 units of work and several batches per window.
FAST = ["scoring.window=4", "scoring.chunk_seconds=3.0", "scoring.batch_seconds=8.0", "metrics.bootstrap=50"]


def overrides(model, shards, out, *extra):
    return [f"model={model}", f"data.shards={shards}", "data.split=test", f"out_dir={out}", *FAST, *extra]


def run_torchrun(args, nproc=2, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "eval", "--quiet", "--config", str(CONFIG), *args]
    return subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


def run_main(args, capsys):
    """The CLI in this process (`python -m eval ...` minus the interpreter start)."""
    from eval.__main__ import main

    rc = main(["--quiet", "--config", str(CONFIG), *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def single_run(tiny_model, test_shards, tmp_path_factory):
    from eval.__main__ import main

    out = tmp_path_factory.mktemp("eval1")
    assert main(["--quiet", "--config", str(CONFIG), *overrides(tiny_model, test_shards, out),
                 "report.per_corpus_plots=true"]) == 0
    return out


def test_outputs_follow_the_contract(single_run, test_shards):
    out = single_run
    index = json.loads((test_shards / "test" / "index.json").read_text())
    rows = read_scores_csv(out / "scores.csv")
    header = (out / "scores.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["key", "score", "label", "attack_type", "corpus"] and "source" in header
    assert len(rows) == index["totals"]["samples"] == len({r["key"] for r in rows})
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["by_attack_type"]) == {"digital", "replay"}
    assert set(m["by_corpus"]) == {"demo_digital", "demo_replay"}
    assert "by_language" in m and "by_attack" in m
    blocks = [m["overall"], *m["by_attack_type"].values(), *m["by_corpus"].values()]
    for b in blocks:
        for k in ("eer", "accuracy", "min_dcf", "accuracy_at_eer"):
            assert 0.0 <= b[k] <= 1.0, (k, b)
        assert b["n_bonafide"] + b["n_spoof"] > 0
    assert m["overall"]["n_bonafide"] == index["totals"]["by_label"]["bonafide"]
    assert m["overall"]["n_spoof"] == index["totals"]["by_label"]["spoof"]
    assert m["by_attack_type"]["replay"]["n_spoof"] + m["by_attack_type"]["digital"]["n_spoof"] == m["overall"]["n_spoof"]
    for kind in ("roc", "det", "confusion"):
        for group in ("overall", "digital", "replay"):
            png = out / "plots" / f"{kind}_{group}.png"
            assert png.read_bytes()[:4] == b"\x89PNG", png
        assert (out / "plots" / f"{kind}_corpus-demo_replay.png").is_file()
    report = (out / "report.md").read_text()
    assert "higher means more likely spoof" in report
    assert "## Digital vs replay" in report and "| digital |" in report and "| replay |" in report
    assert "plots/roc_overall.png" in report and "Most confident false accepts" in report
    assert not list(out.rglob("*.tmp*"))
    # long utterances are chunked (7 s with 3 s chunks -> 3 chunks), short ones are not
    by_dur = {round(float(r["duration"]), 1): int(r["chunks"]) for r in rows}
    assert by_dur[7.0] == 3 and by_dur[0.5] == 1 and by_dur[2.5] == 1


def test_two_processes_give_exactly_the_single_process_scores(single_run, tiny_model, test_shards, tmp_path):
    out1 = single_run
    p = run_torchrun(overrides(tiny_model, test_shards, tmp_path, "report.plots=false"), nproc=2)
    assert p.returncode == 0, p.stderr[-3000:]
    one = (out1 / "scores.csv").read_text()
    two = (tmp_path / "scores.csv").read_text()
    assert two == one  # same keys, no duplicates or losses, bit-identical scores
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["meta"]["stats"]["processes"] == 2
    assert m["overall"] == json.loads((out1 / "metrics.json").read_text())["overall"]


def test_first_n_seconds_protocol(tiny_model, test_shards, tmp_path):
    from eval.runner import run_eval

    cfg = load_config(EvalConfig, CONFIG, overrides(tiny_model, test_shards, tmp_path, "scoring.max_seconds=1.0",
                                                    "report.plots=false"))
    res = run_eval(cfg)
    rows = read_scores_csv(tmp_path / "scores.csv")
    assert len(rows) == 24 and all(r["chunks"] == "1" for r in rows)
    # 24 utterances, each scored on at most 1 s (the 0.5 s ones whole)
    expected = sum(min(1.0, float(r["duration"])) for r in rows)
    assert res["stats"]["audio_seconds"] == pytest.approx(expected, abs=1e-3)


def _corrupt_shards(root: Path) -> Path:
    from shardkit import write_shards

    write_shards(root, "test", n_samples=8, samples_per_shard=8, seed=3, durations=(1.0, 1.5))
    split = root / "test"
    good = (split / "shard-000000.tar").read_bytes()
    # a shard with: a valid sample, a FLAC member of garbage, invalid JSON, a sample with no audio
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf, tarfile.open(fileobj=io.BytesIO(good)) as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers()}
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        meta = json.loads(members["test_000000.json"])
        add("bad_000001.flac", b"fLaC this is not audio" * 10)
        add("bad_000001.json", json.dumps({**meta, "key": "bad_000001"}).encode())
        add("bad_000002.flac", members["test_000002.flac"])
        add("bad_000002.json", b"{not json")
        add("bad_000003.json", json.dumps({**meta, "key": "bad_000003"}).encode())
        add("ok_000004.flac", members["test_000004.flac"])
        add("ok_000004.json", json.dumps({**meta, "key": "ok_000004", "label": "spoof"}).encode())
    (split / "shard-000001.tar").write_bytes(buf.getvalue())
    # a truncated copy of the good shard (cut in the middle of the 5th sample's audio)
    (split / "shard-000002.tar").write_bytes(good[: len(good) * 5 // 8 + 700])
    index = json.loads((split / "index.json").read_text())
    index["shards"] += [{"name": "shard-000001.tar", "samples": 4, "bytes": 0, "sha256": ""},
                        {"name": "shard-000002.tar", "samples": 8, "bytes": 0, "sha256": ""}]
    (split / "index.json").write_text(json.dumps(index))
    return root


def test_corrupt_members_are_counted_and_reported(tiny_model, tmp_path):
    from eval.runner import run_eval

    shards = _corrupt_shards(tmp_path / "shards")
    out = tmp_path / "out"
    cfg = load_config(EvalConfig, CONFIG, overrides(tiny_model, shards, out, "report.plots=false"))
    res = run_eval(cfg)
    rows = read_scores_csv(out / "scores.csv")
    keys = {r["key"] for r in rows}
    assert "ok_000004" in keys and not any(k.startswith("bad_") for k in keys)
    # the good shard + at least the truncated copy's first 4 samples (same keys again: reported as duplicates)
    assert len([r for r in rows if r["key"].startswith("test_")]) >= 8 + 4
    m = json.loads((out / "metrics.json").read_text())
    reasons = {e["key"]: e["reason"] for e in m["errors"]}
    assert "unreadable" in reasons["bad_000001"]
    assert "json" in reasons["bad_000002"]
    assert "no audio member" in reasons["bad_000003"]
    assert any("damaged" in r or "unreadable tar" in r for r in reasons.values())
    report = (out / "report.md").read_text()
    assert "bad_000001" in report and "could not be scored" in report
    assert any("could not be read" in w for w in res["warnings"])
    assert any("more than once" in w for w in res["warnings"])


def test_inverted_scores_are_flagged(tmp_path):
    from eval.report import write_outputs

    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        label = "spoof" if i % 2 else "bonafide"
        at = "digital" if i % 4 < 2 else "replay"
        s = -3.0 * (label == "spoof") + rng.normal()  # a model whose output means "bona fide"
        rows.append({"key": f"k{i:04d}", "score": s, "label": label, "attack_type": at, "corpus": at,
                     "source": f"x/{i}.wav", "chunks": 1})
    cfg = load_config(EvalConfig, CONFIG, ["model=m", "data.shards=s", f"out_dir={tmp_path}", "metrics.bootstrap=100",
                                           "report.plots=false"])
    stats = {"processes": 1, "audio_seconds": 1.0, "wall_seconds_max_rank": 1.0, "audio_seconds_per_second": 1.0,
             "batches": 1, "padding_fraction": 0.0}
    res = write_outputs(cfg, {"rows": rows, "errors": [], "duplicate_keys": [], "stats": stats}, {})
    assert res["metrics"]["overall"]["eer"] > 0.9
    assert any("INVERTED" in w and "overall" in w for w in res["warnings"])
    assert "INVERTED" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["warnings"]


def test_bad_config_and_model_are_clear_errors(tiny_model, test_shards, tmp_path, capsys):
    with pytest.raises(ConfigError, match="scoring.windw"):
        load_config(EvalConfig, CONFIG, overrides(tiny_model, test_shards, tmp_path, "scoring.windw=3"))
    with pytest.raises(ConfigError, match="model"):
        load_config(EvalConfig, CONFIG, [f"data.shards={test_shards}", f"out_dir={tmp_path}"])
    (tmp_path / "not_a_model").mkdir()
    rc, _, err = run_main(overrides(tmp_path / "not_a_model", test_shards, tmp_path / "o"), capsys)
    assert rc != 0 and "config.json" in err and "model.safetensors" in err
    rc, _, err = run_main(overrides(tiny_model, test_shards, tmp_path / "o", "scoring.device=gpu"), capsys)
    assert rc == 2 and "scoring.device" in err


def test_checkpoint_directories_resolve_to_complete_checkpoints(tiny_model, tmp_path):
    import shutil

    from eval.scoring import ModelLoadError, load_detector, resolve_model_dir

    ck = tmp_path / "run" / "checkpoints"
    for step, committed in ((100, True), (200, True), (300, False)):
        d = ck / f"step-{step:08d}"
        shutil.copytree(tiny_model, d)
        if committed:
            (d / "COMMITTED").write_text("{}")
    (ck / "latest").write_text("step-00000200\n")
    assert resolve_model_dir(ck / "step-00000100") == ck / "step-00000100"
    assert resolve_model_dir(ck) == ck / "step-00000200"  # the newest complete one, not the uncommitted 300
    assert resolve_model_dir(tmp_path / "run") == ck / "step-00000200"
    with pytest.raises(ModelLoadError, match="incomplete checkpoint"):
        resolve_model_dir(ck / "step-00000300")
    model, meta = load_detector(ck / "step-00000200")
    assert meta["loaded_from"].endswith("step-00000200")
    shutil.copytree(tiny_model, tmp_path / "run" / "model")
    assert resolve_model_dir(tmp_path / "run") == tmp_path / "run" / "model"  # the export wins


def test_calibrated_model_reports_act_dcf_and_cllr(test_shards, tmp_path):
    import torch

    from eval.calibration import fit_calibration
    from eval.runner import run_eval
    from trainer.model import Detector, DetectorConfig

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    cal = fit_calibration(rng.normal(size=100) + y, y)
    torch.manual_seed(0)
    Detector(DetectorConfig(backbone="tiny")).save_pretrained(tmp_path / "m", extra={"calibration": cal})
    cfg = load_config(EvalConfig, CONFIG, overrides(tmp_path / "m", test_shards, tmp_path / "out", "report.plots=false"))
    res = run_eval(cfg)
    o = res["metrics"]["overall"]
    assert 0.0 <= o["act_dcf"] and 0.0 <= o["cllr"]
    rows = read_scores_csv(tmp_path / "out" / "scores.csv")
    assert float(rows[0]["llr"]) == pytest.approx(cal["a"] * rows[0]["score"] + cal["b"])
    assert res["threshold"] == pytest.approx(-cal["b"] / cal["a"])  # LLR 0 on the score scale
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["meta"]["calibration"] == cal and "calibrated" in m["meta"]["threshold_source"]
    assert "actDCF" in (tmp_path / "out" / "report.md").read_text()


def test_without_padding_a_score_does_not_depend_on_its_batch(tiny_model, test_shards, tmp_path):
    """padding=none (default): any window / batch size gives the same scores; padding=zero is the faster option."""
    from eval.runner import run_eval

    def scores(name, *extra):
        cfg = load_config(EvalConfig, CONFIG, overrides(tiny_model, test_shards, tmp_path / name, "report.plots=false",
                                                        "metrics.bootstrap=0", *extra))
        run_eval(cfg)
        return {r["key"]: r["score"] for r in read_scores_csv(tmp_path / name / "scores.csv")}

    a = scores("small", "scoring.window=2", "scoring.max_batch_size=1")
    b = scores("large", "scoring.window=64", "scoring.max_batch_size=32", "scoring.batch_seconds=600")
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-5) for k in a)
    z = scores("zero", "scoring.padding=zero", "scoring.window=64", "scoring.batch_seconds=600")
    assert z.keys() == a.keys()
