"""Shared fixtures for the trainer tests: tiny contract-format shards and a way to run the real CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from shardkit import write_shards  # noqa: E402

DEMO_CONFIG = REPO / "configs" / "demo" / "train.yaml"
# Tiny, deterministic, every step logged; 44 train samples in shards of 8,8,8,8,8,4 (uneven across 2 ranks).
TINY = [
    "train.max_steps=12", "train.batch_size=2", "data.crop_seconds=1.0", "checkpoint.every_steps=4",
    "checkpoint.keep_last=2", "train.log_every=1", "val.every_steps=6", "train.trackers=[]", "train.warmup_steps=3",
    "train.deterministic=true", "data.val_max_seconds=1.0",
]


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    write_shards(root, "train", n_samples=44, samples_per_shard=8, seed=0)
    write_shards(root, "val", n_samples=12, samples_per_shard=6, seed=1)
    return root


DEEPSPEED = ["-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/deepspeed_zero2.yaml"]


def trainer_cmd(nproc: int, out: Path, shards: Path, extra=(), deepspeed: bool = False) -> list:
    py = sys.executable
    if deepspeed:  # ZeRO-2 through accelerate, on CPU (DS_ACCELERATOR=cpu: gloo)
        head = [py, *DEEPSPEED, "--num_processes", str(nproc), "-m", "trainer"]
    elif nproc == 1:
        head = [py, "-m", "trainer"]
    else:
        head = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "trainer"]
    return head + ["--config", str(DEMO_CONFIG), f"data.shards={shards}", f"output_dir={out}", *TINY, *extra]


def start(nproc: int, out: Path, shards: Path, extra=(), env=None, deepspeed: bool = False) -> subprocess.Popen:
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **(env or {}))
    if deepspeed:
        e["DS_ACCELERATOR"] = "cpu"
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "ab")
    # A new session: signals can go to the whole process group, as Slurm sends them to every process of a step.
    return subprocess.Popen(trainer_cmd(nproc, out, shards, extra, deepspeed), cwd=REPO, env=e, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finish(p: subprocess.Popen, timeout: float = 240) -> int:
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise AssertionError("trainer did not finish in time (hang?)")


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [json.loads(l).get("step", 0) for l in path.read_text().splitlines() if l.strip().endswith("}")]
    return max(steps, default=0)


def wait_for_step(p: subprocess.Popen, out: Path, step: int, timeout: float = 240) -> None:
    t0 = time.time()
    while logged_steps(out) < step:
        if p.poll() is not None:
            raise AssertionError(f"trainer exited ({p.returncode}) before step {step}: see {out}.log")
        if time.time() - t0 > timeout:
            raise AssertionError(f"step {step} not reached in {timeout}s")
        time.sleep(0.05)


def losses(out: Path) -> dict:
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return {("val" if "val_samples" in r else "train", r["step"]): (r.get("loss"), r.get("val_eer")) for r in rows}


def weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model" / "model.safetensors"))


def assert_same_run(a: Path, b: Path) -> None:
    import torch

    la, lb = losses(a), losses(b)
    assert la == lb, f"per-step losses differ:\n{la}\n{lb}"
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    diff = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not diff, f"final weights differ in {diff[:5]}"
