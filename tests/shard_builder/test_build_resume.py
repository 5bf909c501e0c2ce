"""kill -9 in the middle of a build, run it again: the result is byte-identical to an uninterrupted build."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kit
from shard_builder.build import build_shards
from shard_builder.config import BuildConfig
from shard_builder.configuration import load_config
from shard_builder.schema import SPLITS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """48 short 16 kHz clips of 12 speakers behind a manifest; 4 samples per shard -> a dozen shards."""
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(7)
    rows = ["path,label,speaker"]
    for k in range(48):
        kit.write(root / "corpus" / "clips" / f"c{k:02d}.flac", rng, seconds=0.25)
        rows.append(f"clips/c{k:02d}.flac,{'spoof' if k % 3 == 0 else 'bonafide'},spk{k % 12}")
    (root / "corpus" / "manifest.csv").write_text("\n".join(rows) + "\n")
    entry = {"name": "m", "adapter": "manifest", "root": str(root / "corpus"), "attack_type": "digital"}

    def config(out: Path, workers: int = 1) -> Path:
        return kit.write_config(root / f"{out.name}.yaml", out, [entry], workers=workers,
                                shard={"max_samples": 4, "max_bytes": 1 << 30})

    ref = root / "reference"
    build_shards(load_config(BuildConfig, config(ref)))
    return {"root": root, "config": config, "reference": ref}


def digests(out: Path) -> dict:
    files = sorted(p for s in SPLITS for p in (out / s).iterdir())
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def start_build(cfg: Path, delay: float) -> subprocess.Popen:
    env = dict(os.environ, SHARD_BUILDER_TEST_DELAY=str(delay))
    return subprocess.Popen([sys.executable, "-m", "shard_builder", "build", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"build ended before it could be interrupted: {proc.stderr.read().decode()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("build made no progress")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def children(pid: int) -> list:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def test_kill_during_decoding_then_resume(corpus, tmp_path):
    out = tmp_path / "killed_decode"
    cfg = corpus["config"](out, workers=2)
    decoded = out / ".staging" / "decoded"
    proc = start_build(cfg, delay=0.5)
    workers = []

    def ready():
        workers.extend(c for c in children(proc.pid) if c not in workers)
        return len(list(decoded.glob("batch-*.json"))) >= 2

    kill_when(proc, ready)
    assert not (out / "build_report.json").exists()
    committed = {p.name: p.stat().st_mtime_ns for p in decoded.glob("batch-*.json")}
    assert 2 <= len(committed) < 6  # 48 records in batches of 8: interrupted mid-way
    # the orphaned decoding processes notice and exit instead of waiting for work forever
    assert len(workers) >= 2
    deadline = time.time() + 10
    while any(alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert time.time() < deadline, "worker processes outlived the killed build"
    report = build_shards(load_config(BuildConfig, cfg, ["workers=1"]))  # resumed with another worker count
    assert digests(out) == digests(corpus["reference"])
    assert report["totals"]["written"] == 48
    assert not (out / ".staging").exists()


def test_kill_during_shard_writing_then_resume(corpus, tmp_path):
    out = tmp_path / "killed_write"
    cfg = corpus["config"](out)
    proc = start_build(cfg, delay=0.3)
    kill_when(proc, lambda: (out / "train" / "shard-000001.tar").exists())
    assert not (out / "build_report.json").exists()
    assert not (out / "train" / "index.json").exists()
    first = out / "train" / "shard-000000.tar"
    kept_mtime = first.stat().st_mtime_ns
    # leftovers of the killed write must not be taken for shards
    (out / "train" / ".shard-000002.tar.partial").write_bytes(b"half a shard")
    proc = subprocess.run([sys.executable, "-m", "shard_builder", "build", "--config", str(cfg)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert first.stat().st_mtime_ns == kept_mtime  # a complete shard is reused, not rewritten
    assert digests(out) == digests(corpus["reference"])
    ref_index = json.loads((corpus["reference"] / "train" / "index.json").read_text())
    assert json.loads((out / "train" / "index.json").read_text()) == ref_index


def test_two_builds_into_one_out_dir_are_refused(corpus, tmp_path):
    import fcntl

    out = tmp_path / "locked"
    out.mkdir()
    with open(out / ".build.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another build is running"):
            build_shards(load_config(BuildConfig, corpus["config"](out)))
    assert not (out / "train").exists()
