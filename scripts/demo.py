"""`make demo`: the whole pipeline on synthetic corpora, end to end, on CPU.

corpora -> shards -> 2-process training (torchrun, gloo) with a preemption signal part-way and an automatic
resume -> evaluation report. Everything goes under the output directory (default runs/demo/).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREEMPTED = 75  # the trainer's exit status after a signal-triggered checkpoint


def run_state(train_dir: Path) -> str:
    """The trainer's own record of how it stopped: torchrun reports 1 for children that exited 75."""
    try:
        return json.loads((train_dir / "run_state.json").read_text()).get("state", "")
    except (OSError, ValueError):
        return ""


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def run(cmd: list[str], **kw) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; the training workers under torchrun)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def latest_step(train_dir: Path) -> int:
    """The last logged training step in metrics.jsonl (0 before any)."""
    path = train_dir / "metrics.jsonl"
    step = 0
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                step = max(step, int(json.loads(line).get("step", 0)))
            except (ValueError, AttributeError):
                pass
    return step


def train(cmd: list[str], train_dir: Path, preempt_at_step: int | None) -> int:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT)
    sent = False
    while proc.poll() is None:
        time.sleep(0.5)
        if preempt_at_step is not None and not sent and latest_step(train_dir) >= preempt_at_step:
            workers = children(proc.pid)
            print(f"\n>>> simulating preemption: SIGUSR1 to training processes {workers} at step "
                  f"{latest_step(train_dir)}", flush=True)
            for pid in workers:
                os.kill(pid, signal.SIGUSR1)
            sent = True
    return proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", nargs="?", default="runs/demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--preempt-at-step", type=int, default=60)
    args = ap.parse_args()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    t0 = time.time()
    env_threads = {"OMP_NUM_THREADS": "1"}
    os.environ.update(env_threads)

    banner("1/4 synthetic demo corpora (real on-disk layouts)")
    corpora = out / "corpora"
    if not (corpora / "shards.yaml").exists():
        run([py, "-m", "shard_builder", "demo", str(corpora), "--seed", str(args.seed)])
    else:
        print(f"reusing {corpora}")

    banner("2/4 shards")
    shards = out / "shards"
    run([py, "-m", "shard_builder", "build", "--config", str(corpora / "shards.yaml"), f"out_dir={shards}"])
    run([py, "-m", "shard_builder", "verify", str(shards)])

    banner(f"3/4 training: {args.nproc} processes (torchrun, gloo), preempted part-way, then resumed")
    train_dir = out / "train"
    cmd = [py, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}", "-m", "trainer",
           "--config", "configs/demo/train.yaml", f"data.shards={shards}", f"output_dir={train_dir}",
           f"seed={args.seed}"]
    if (train_dir / "model" / "model.safetensors").exists():
        print(f"reusing the finished training run in {train_dir}")
    else:
        rc = train(cmd, train_dir, args.preempt_at_step)
        if rc == PREEMPTED or (rc != 0 and run_state(train_dir) == "preempted"):
            print(f"\n>>> the trainer checkpointed and stopped (run_state.json: preempted; torchrun exit {rc}); "
                  "running the same command again resumes from checkpoints/latest.\n    (torchrun's 'ChildFailedError' "
                  "report above is how it shows workers that exited 75 = checkpointed for preemption; "
                  "slurm/launch.py passes 75 through instead)", flush=True)
            rc = train(cmd, train_dir, None)
        if rc != 0:
            print(f"training failed with status {rc}", file=sys.stderr)
            return rc

    banner("4/4 evaluation")
    eval_dir = out / "eval"
    run([py, "-m", "eval", "--config", "configs/eval.yaml", f"model={train_dir / 'model'}", f"data.shards={shards}",
         "data.split=test", f"out_dir={eval_dir}"])

    m = json.loads((eval_dir / "metrics.json").read_text())
    banner(f"done in {time.time() - t0:.0f} s (synthetic data: says nothing about real-world accuracy)")
    rows = [("overall", m["overall"])] + sorted(m.get("by_attack_type", {}).items())
    print(f"{'subset':<10} {'accuracy':>9} {'EER':>8} {'minDCF':>8} {'bonafide':>9} {'spoof':>7}")
    for name, b in rows:
        print(f"{name:<10} {100 * b['accuracy']:8.2f}% {100 * b['eer']:7.2f}% {b['min_dcf']:8.3f} "
              f"{b['n_bonafide']:>9} {b['n_spoof']:>7}")
    print(f"\nreport: {eval_dir / 'report.md'}\nplots:  {eval_dir / 'plots'}\nmodel:  {train_dir / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
