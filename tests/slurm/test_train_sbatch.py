"""slurm/train.sbatch on a real (single-node) Slurm: stopped jobs checkpoint, get requeued and resume exactly.

- one 2-rank job is stopped twice: preempted (`scontrol requeue`, what a preempting partition does: Slurm sends
  SIGTERM to every process, the ranks checkpoint and exit 75, Slurm requeues the job), then warned of its time
  limit (SIGUSR1 to the batch shell, which sends SIGTERM to the ranks and requeues the job itself); each time it
  comes back with SLURM_RESTART_COUNT one higher and resumes from the checkpoint written on the signal, and its
  exported weights equal, bit for bit, those of the same job run without interruption;
- a crash is not requeued, and a job requeued more than MAX_RESTARTS times refuses to run.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file
from shardkit import write_shards

REPO = Path(__file__).resolve().parents[2]

MAX_STEPS = 24
PROCS = 2  # two ranks per node: the stop signal must reach both, and they must agree


def trainer_args(shards: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(REPO / "configs/demo/train.yaml"), f"data.shards={shards}", f"output_dir={out}",
            f"train.max_steps={MAX_STEPS}", "train.deterministic=true", "train.batch_size=4", "data.crop_seconds=1.0",
            "data.num_workers=0", "data.val_split=null", "train.log_every=1", "train.trackers=[]",
            "train.warmup_steps=5", "checkpoint.every_steps=1000", *extra]


def last_step(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1])["step"] if lines else 0


def wait_for(cond, timeout: float, what: str, cluster, job: int, log=lambda: "", poll: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out ({timeout}s) waiting for {what}; job {job}: {cluster.job(job)}\n"
                         f"--- job output ---\n{log()[-4000:]}\n--- daemons ---\n{cluster.logs(15)}")


def checkpoints(out: Path) -> list[str]:
    d = out / "checkpoints"
    return sorted(p.name for p in d.glob("step-*")) if d.exists() else []


def release(cluster, job: int) -> None:
    """Let a requeued job start now rather than after Slurm's ~121 s requeue delay.

    slurmd refuses a launch whose credential is not newer (1 s resolution) than the previous run's revocation
    ("Job credential revoked"): that is what the delay protects, so leave it 2 s.
    """
    time.sleep(2)
    cluster.run(["scontrol", "update", f"JobId={job}", "StartTime=now"])


def output(workdir: Path, name: str, job: int):
    path = workdir / f"{name}-{job}.out"
    return lambda: path.read_text() if path.exists() else ""


def submit(cluster, workdir: Path, name: str, args: list[str], **env) -> int:
    env = {"PROCS_PER_NODE": str(PROCS), "PYTHON": sys.executable, **env}
    return cluster.sbatch([f"--job-name={name}", "--chdir", str(REPO), f"--output={workdir}/{name}-%j.out",
                           str(REPO / "slurm/train.sbatch"), *args], env=env)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_shards")
    write_shards(root, "train", n_samples=24, samples_per_shard=4, seed=0, durations=(1.0,))
    return root


def test_preempted_and_time_limited_job_resumes_to_the_uninterrupted_weights(slurm_cluster, shards, tmp_path):
    c = slurm_cluster
    ref_out, out = tmp_path / "ref", tmp_path / "preempted"
    ref = submit(c, tmp_path, "reference", trainer_args(shards, ref_out))
    job = submit(c, tmp_path, "preempted", trainer_args(shards, out))
    job_log = output(tmp_path, "preempted", job)

    # 1. `scontrol requeue` (as a preempting partition does): SIGTERM to every process -> checkpoint -> Slurm
    #    requeues the job
    wait_for(lambda: last_step(out) >= 3, 150, "the job to train a few steps", c, job, job_log)
    c.run(["scontrol", "requeue", str(job)])
    wait_for(lambda: "stopped by SIGTERM" in job_log() and c.job(job).get("JobState") == "PENDING", 60,
             "the ranks to checkpoint and the job to be requeued", c, job, job_log)
    saved = checkpoints(out)
    assert len(saved) == 1, f"expected exactly the checkpoint written on the signal, found {saved}"
    stop1 = int(saved[0].split("-")[1])
    assert 3 <= stop1 < MAX_STEPS
    assert c.job(job)["Restarts"] == "1"
    release(c, job)

    # 2. the time-limit warning (`--signal=B:USR1@120`, sent here at once): only the batch shell gets SIGUSR1; it
    #    sends SIGTERM to the ranks, they checkpoint and exit 75, and the script requeues the job itself
    wait_for(lambda: f"resumed from {out}/checkpoints/{saved[0]} (step {stop1}," in job_log()
             and last_step(out) >= stop1 + 2, 150, "the job to resume and train a few more steps", c, job, job_log)
    c.run(["scancel", "--signal=USR1", "--batch", str(job)])
    wait_for(lambda: "requeueing job" in job_log() and c.job(job).get("JobState") == "PENDING", 60,
             "the script to requeue the job", c, job, job_log)
    assert c.job(job)["Restarts"] == "2"
    stop2 = max(int(n.split("-")[1]) for n in checkpoints(out))
    assert stop1 < stop2 < MAX_STEPS
    assert (out / "checkpoints/latest").read_text().strip().endswith(f"step-{stop2:08d}")
    release(c, job)

    # 3. it resumes again and finishes with the weights of the uninterrupted run, bit for bit
    info = c.wait_job(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=180)
    text = job_log()
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "2", text[-3000:]
    assert "restart 1/10" in text and "restart 2/10" in text  # the script saw SLURM_RESTART_COUNT 1, then 2
    assert "time-limit warning (SIGUSR1)" in text
    assert f"resumed from {out}/checkpoints/step-{stop2:08d} (step {stop2}," in text
    ref_info = c.wait_job(ref, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=120)
    assert ref_info["JobState"] == "COMPLETED" and ref_info["Restarts"] == "0"

    got, want = load_file(out / "model/model.safetensors"), load_file(ref_out / "model/model.safetensors")
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), f"{name} differs after preemption + resume"


def test_crashing_job_is_not_requeued(slurm_cluster, shards, tmp_path):
    c = slurm_cluster
    job = submit(c, tmp_path, "crash", trainer_args(shards, tmp_path / "out", "train.no_such_key=1"),
                 PROCS_PER_NODE="1")
    log = output(tmp_path, "crash", job)
    # done, or requeued (Restarts > 0, back to PENDING): the latter is the bug this test is about
    info = wait_for(lambda: (lambda i: i if i.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED")
                             or i.get("Restarts", "0") != "0" else None)(c.job(job)), 90, "the job to end", c, job,
                    log)
    text = log()
    assert info["JobState"] == "FAILED" and info["Restarts"] == "0", info
    assert info["ExitCode"] == "2:0"  # the trainer's config-error status, passed through launcher and srun
    assert "no_such_key" in text and "not requeued" in text


def test_restart_cap_stops_a_job_that_keeps_being_requeued(slurm_cluster, shards, tmp_path):
    c = slurm_cluster
    job = submit(c, tmp_path, "capped", trainer_args(shards, tmp_path / "out"), MAX_RESTARTS="0", PROCS_PER_NODE="1")
    c.wait_job(job, ("RUNNING",), timeout=60)
    c.run(["scontrol", "requeue", str(job)])  # Slurm requeues it whatever the script says...
    c.wait_job(job, ("PENDING",), timeout=60)
    release(c, job)
    info = c.wait_job(job, ("COMPLETED", "FAILED", "CANCELLED"), timeout=60)
    text = (tmp_path / f"capped-{job}.out").read_text()
    assert info["JobState"] == "FAILED" and info["Restarts"] == "1", info  # ...but the restart refuses to run
    assert "more than MAX_RESTARTS=0: giving up" in text
