"""Multi-node without a cluster: two launchers on this machine (`--nnodes 2`, node ranks 0 and 1, rendezvous on
loopback), exactly as slurm/train.sbatch starts them with srun (one `slurm/launch.py` per node, node rank from
SLURM_NODEID), train to the same weights, bit for bit, as one node running two processes under plain torchrun.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.numpy import load_file
from shardkit import write_shards

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainer_args(shards: Path, out: Path) -> list[str]:
    return ["-m", "trainer", "--config", str(REPO / "configs/demo/train.yaml"), f"data.shards={shards}",
            f"output_dir={out}", "train.max_steps=6", "train.batch_size=2", "data.crop_seconds=1.0",
            "data.num_workers=0", "data.val_split=null", "train.log_every=1", "train.trackers=[]",
            "train.warmup_steps=2", "train.deterministic=true", "checkpoint.every_steps=1000"]


def test_two_nodes_on_loopback_equal_one_node_with_two_processes(tmp_path):
    shards = tmp_path / "shards"
    write_shards(shards, "train", n_samples=12, samples_per_shard=3, seed=1, durations=(1.0,))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("SLURM_NODEID", None)

    port = free_port()
    nodes = []
    for node_rank in (0, 1):
        node_env = dict(env, SLURM_NODEID=str(node_rank))  # what srun gives each node's launcher
        cmd = [PY, str(REPO / "slurm/launch.py"), "--nnodes", "2", "--nproc_per_node", "1",
               "--master_addr", "127.0.0.1", "--master_port", str(port), *trainer_args(shards, tmp_path / "2nodes")]
        nodes.append(subprocess.Popen(cmd, cwd=REPO, env=node_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    single = subprocess.Popen([PY, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                               *trainer_args(shards, tmp_path / "1node")],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=240)[0] for p in (*nodes, single)]
    for p, text in zip((*nodes, single), outputs):
        assert p.returncode == 0, text[-3000:]

    two = load_file(tmp_path / "2nodes/model/model.safetensors")
    one = load_file(tmp_path / "1node/model/model.safetensors")
    assert two.keys() == one.keys()
    for name in one:
        assert two[name].tobytes() == one[name].tobytes(), f"{name}: 2 nodes x 1 process != 1 node x 2 processes"
    # the same 6 logged steps, the same losses: the two nodes really formed one world of 2
    rows = lambda d: (tmp_path / d / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    assert len(rows("2nodes")) == 6
    assert [r.split('"samples_per_s"')[0] for r in rows("2nodes")] == [r.split('"samples_per_s"')[0]
                                                                       for r in rows("1node")]
