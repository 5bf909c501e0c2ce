"""slurm/build_shards.sbatch and slurm/eval.sbatch on a real Slurm: the command's arguments pass through, the work
is done, and the status comes back."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from shardkit import write_shards

REPO = Path(__file__).resolve().parents[2]


def submit_builder(c, tmp_path: Path, *args: str) -> tuple[int, Path]:
    job = c.sbatch(["--chdir", str(REPO), f"--output={tmp_path}/build-%j.out", "--cpus-per-task=1",
                    str(REPO / "slurm/build_shards.sbatch"), *args], env={"PYTHON": sys.executable})
    return job, tmp_path / f"build-{job}.out"


def test_build_shards_job_passes_arguments_and_status(slurm_cluster, tmp_path):
    c = slurm_cluster
    shards = tmp_path / "shards"
    write_shards(shards, "test", n_samples=8, samples_per_shard=4, seed=3, durations=(1.0,))
    good, good_log = submit_builder(c, tmp_path, "verify", str(shards))
    # a config that does not exist: `build` is added in front, and the builder's error status fails the job
    bad, bad_log = submit_builder(c, tmp_path, "--config", str(tmp_path / "missing.yaml"))

    assert c.wait_job(good, ("COMPLETED", "FAILED"), timeout=60)["JobState"] == "COMPLETED"
    assert f"python -m shard_builder verify {shards}" in good_log.read_text() and "OK:" in good_log.read_text()
    info = c.wait_job(bad, ("COMPLETED", "FAILED"), timeout=60)
    text = bad_log.read_text()
    assert info["JobState"] == "FAILED" and info["Restarts"] == "0", text
    assert f"python -m shard_builder build --config {tmp_path / 'missing.yaml'} workers=1" in text
    assert "missing.yaml" in text.split("workers=1", 1)[1]  # the builder's own error names the file


def test_eval_job_scores_the_shards_and_fails_on_a_bad_key(slurm_cluster, tmp_path):
    from trainer.model import Detector, DetectorConfig

    c = slurm_cluster
    shards = tmp_path / "shards"
    write_shards(shards, "test", n_samples=8, samples_per_shard=4, seed=3, durations=(1.0,))
    Detector(DetectorConfig(backbone="tiny")).save_pretrained(tmp_path / "model")

    def submit(name, *overrides):
        job = c.sbatch(["--chdir", str(REPO), f"--output={tmp_path}/{name}-%j.out", "--cpus-per-task=1",
                        str(REPO / "slurm/eval.sbatch"), "--config", str(REPO / "configs/eval.yaml"),
                        f"model={tmp_path / 'model'}", f"data.shards={shards}", "data.split=test", *overrides],
                       env={"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})
        return job, tmp_path / f"{name}-{job}.out"

    good, good_log = submit("eval", f"out_dir={tmp_path / 'eval'}")
    bad, bad_log = submit("bad", f"out_dir={tmp_path / 'bad'}", "scoring.no_such_key=1")
    assert c.wait_job(good, ("COMPLETED", "FAILED"), timeout=300)["JobState"] == "COMPLETED", good_log.read_text()
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["overall"]["n_bonafide"] + metrics["overall"]["n_spoof"] == 8
    assert (tmp_path / "eval" / "report.md").is_file()
    info = c.wait_job(bad, ("COMPLETED", "FAILED"), timeout=300)
    assert info["JobState"] == "FAILED" and "no_such_key" in bad_log.read_text()
