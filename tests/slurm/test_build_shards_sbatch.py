"""slurm/build_shards.sbatch on a real Slurm: the command's arguments pass through, and the status comes back.

(slurm/eval.sbatch is the same wrapper around `python -m eval`; running it here would cost a full torch start-up,
so it is exercised by hand: see docs/cluster.md.)
"""
from __future__ import annotations

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
