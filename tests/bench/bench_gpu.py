"""GPU figures of the real trainer: WavLM-Base bf16 training throughput, model FLOP utilisation (MFU), the share of
step time spent waiting for data, and a DeepSpeed ZeRO-2 preempt -> save -> resume.

    python tests/bench/bench_gpu.py [--steps 300] [--batch 16] [--workers 6] [--peak-tflops 989]
    python tests/bench/bench_gpu.py --smoke      # CPU, tiny backbone, a few steps: checks that the bench itself runs

Everything goes through the real CLI (``python -m trainer`` / ``accelerate launch``) on synthetic FLAC shards:
- throughput: ``model.backbone=base-random`` (the WavLM-Base architecture, ``WavLMConfig()``'s default, randomly
  initialised: no download), ``train.precision=bf16``, 4 s crops, no validation; audio-s/s and ``data_wait_frac``
  from ``metrics.jsonl`` (median / mean over the rows after the first 20 % of steps);
- MFU: training FLOPs per sample counted with ``torch.utils.flop_counter.FlopCounterMode`` on one forward + backward
  of the same model and batch, times samples/s, over the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s;
  ``--peak-tflops`` for others);
- ZeRO-2: ``configs/accelerate/deepspeed_zero2.yaml`` with one process, SIGTERM to the process group after a few
  steps (what ``slurm/train.sbatch`` turns a preemption notice into), the same command again; the table says where
  it stopped, where it resumed, and whether it finished.
Without a CUDA device ``run()`` (``make bench``) reports that it was skipped; ``--smoke`` runs it on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for p in (str(REPO), str(REPO / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1, "A10": 125.0}


def trainer_args(shards: Path, out: Path, o: argparse.Namespace) -> list:
    return ["--config", str(REPO / "configs" / "train.yaml"), f"data.shards={shards}", f"output_dir={out}",
            f"model.backbone={o.backbone}", f"train.precision={o.precision}", f"train.max_steps={o.steps}",
            f"train.batch_size={o.batch}", "train.grad_accum=1", f"data.num_workers={o.workers}",
            f"data.crop_seconds={o.crop}", "data.val_split=null", "train.trackers=[]", f"train.log_every={o.log_every}",
            f"train.warmup_steps={max(1, o.steps // 10)}", f"checkpoint.every_steps={o.steps}", "export.average_last=1"]


def launch(cmd: list, out: Path, env: dict) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(f"{out}.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def metric_rows(out: Path) -> list:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip().endswith("}")]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def flops_per_sample(o: argparse.Namespace, device: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from trainer.model import Detector, DetectorConfig

    model = Detector(DetectorConfig(backbone=o.backbone, freeze_feature_encoder=True)).to(device)
    x = torch.randn(o.batch, int(o.crop * 16000), device=device) * 0.1
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=o.precision == "bf16"):
            logits = model(x)
        logits.float().sum().backward()
    return counter.get_total_flops() / o.batch


def throughput(shards: Path, work: Path, o: argparse.Namespace, env: dict) -> dict:
    out = work / "throughput"
    p = launch([sys.executable, "-m", "trainer", *trainer_args(shards, out, o)], out, env)
    rc = p.wait()
    rows = [r for r in metric_rows(out) if "loss" in r]
    if rc != 0 or not rows:
        raise RuntimeError(f"trainer exited {rc}: see {out}.log")
    steady = [r for r in rows if r["step"] > o.steps // 5] or rows
    return {"audio_s_per_s": statistics.median(r["audio_s_per_s"] for r in steady),
            "samples_per_s": statistics.median(r["samples_per_s"] for r in steady),
            "data_wait_frac": statistics.fmean(r["data_wait_frac"] for r in steady), "rows": len(steady)}


def zero2_resume(shards: Path, work: Path, o: argparse.Namespace, env: dict) -> dict:
    out = work / "zero2"
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--config_file", "configs/accelerate/deepspeed_zero2.yaml",
           "--num_processes", "1", "-m", "trainer", *trainer_args(shards, out, o),
           f"checkpoint.every_steps={max(2, o.zero2_steps // 2)}", f"train.max_steps={o.zero2_steps}",
           "train.log_every=1"]
    p = launch(cmd, out, env)
    t0 = time.time()
    while not any(r.get("step", 0) >= o.zero2_steps // 3 for r in metric_rows(out)):
        if p.poll() is not None or time.time() - t0 > 1800:
            raise RuntimeError(f"ZeRO-2 run ended ({p.returncode}) before step {o.zero2_steps // 3}: see {out}.log")
        time.sleep(0.2)
    t_signal = time.time()
    os.killpg(p.pid, signal.SIGTERM)
    p.wait()
    while group_alive(p.pid):  # the launcher may exit before the rank has saved
        time.sleep(0.1)
    stop_s = time.time() - t_signal
    stopped = json.loads((out / "run_state.json").read_text())
    t1 = time.time()
    rc = launch(cmd, out, env).wait()
    final = json.loads((out / "run_state.json").read_text())
    ckpt = out / "checkpoints" / f"step-{stopped['step']:08d}" / "pytorch_model"
    shards_saved = sorted(x.name for x in ckpt.iterdir()) if ckpt.is_dir() else []
    return {"stopped": stopped, "stop_s": stop_s, "resume_run_s": time.time() - t1, "rc": rc, "final": final,
            "optim_shards": [s for s in shards_saved if "optim_states" in s]}


def measure(o: argparse.Namespace) -> str:
    import torch

    from shardkit import write_shards

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    peak = o.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               HF_HUB_OFFLINE="1")
    if device == "cpu":
        env.update(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shards = work / "shards"
        write_shards(shards, "train", n_samples=o.clips, samples_per_shard=64, seed=0, durations=(3.0, 5.0, 8.0, 12.0))
        fl = flops_per_sample(o, device)
        t = throughput(shards, work, o, env)
        try:
            z = zero2_resume(shards, work, o, env)
        except RuntimeError as exc:  # report the throughput anyway, with the end of the ZeRO-2 log
            path = work / "zero2.log"
            log = path.read_text(errors="replace").splitlines()[-25:] if path.exists() else []
            z = {"error": f"{exc}\n" + "\n".join(log)}
    achieved = fl * t["samples_per_s"]
    mfu = f"{100 * achieved / (peak * 1e12):.1f} %" if peak and device == "cuda" else "n/a (no GPU peak)"
    if "error" in z:
        zero2 = [f"| ZeRO-2 preempt/resume | failed: {z['error'].splitlines()[0]} |", "", "```", z["error"], "```"]
    else:
        zero2 = [
            f"| ZeRO-2, SIGTERM at step >= {o.zero2_steps // 3} | state `{z['stopped']['state']}` at step "
            f"{z['stopped']['step']}, {z['stop_s']:.1f} s from signal to exit, optimizer shards {z['optim_shards']} |",
            f"| ZeRO-2, same command again | exit {z['rc']}, state `{z['final']['state']}` at step "
            f"{z['final']['step']} ({z['resume_run_s']:.0f} s including start-up) |"]
    return "\n".join([
        f"Device: {name}. Backbone `{o.backbone}`, {o.precision}, batch {o.batch} x {o.crop:g} s crops, "
        f"{o.workers} loader workers, {o.steps} steps (steady state: {t['rows']} log rows after the first 20 %).",
        "",
        "| what | measured |",
        "|---|---|",
        f"| training throughput | {t['audio_s_per_s']:,.0f} audio-s/s ({t['samples_per_s']:,.1f} clips/s) |",
        f"| training FLOPs per clip (forward + backward, FlopCounterMode) | {fl / 1e9:,.4g} GFLOP |",
        f"| achieved / MFU | {achieved / 1e12:,.4g} TFLOP/s / {mfu} (peak {peak or '?'} TFLOP/s) |",
        f"| data-wait share of step time | {100 * t['data_wait_frac']:.1f} % (target < 5 %) |",
        *zero2,
    ])


def options(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny backbone, a few steps")
    ap.add_argument("--backbone", default="base-random")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--zero2-steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--clips", type=int, default=1024)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=None)
    o = ap.parse_args(argv)
    if o.smoke:
        o.backbone, o.precision, o.steps, o.zero2_steps, o.batch, o.crop = "tiny", "fp32", 8, 6, 2, 1.0
        o.workers, o.clips, o.log_every = 1, 48, 1
    return o


def run(quick: bool = True) -> str:
    import torch

    if not torch.cuda.is_available():
        return "Skipped: no CUDA device (`python tests/bench/bench_gpu.py --smoke` checks the bench on CPU)."
    return measure(options([] if not quick else ["--steps", "150"]))


if __name__ == "__main__":
    print(measure(options()))
