"""Held-out comparison of recipe options on the demo corpora: does an option change the replay EER?

For every arm (the demo training config alone = baseline, or baseline + one recipe fragment from configs/recipes/)
and every seed: train the tiny model with ``python -m trainer`` (same seed, same steps, same data), score the test
split with ``python -m eval``, and read EER overall / digital / replay from ``metrics.json``. The demo's test split
holds only ~18 replay clips, so every model is also scored on a larger replay-only held-out set built from freshly
generated demo corpora (``--heldout-seeds``). Prints a markdown table with mean +- std over training seeds and the
per-seed values, and writes it to ``WORK/compare.md``.

    python tests/bench/compare_recipes.py --seeds 0 1 2 --steps 200 \
        --arms baseline configs/recipes/augment_replay.yaml configs/recipes/rebalance_replay.yaml

Demo shards are built under WORK/ unless ``--shards`` names existing ones (e.g. runs/demo/shards from make demo).
Fragments are flattened to ``dotted.key=value`` overrides, so any trainer CLI accepts them. Runs are reused when
their exported model and metrics exist (delete WORK/runs/<arm>/seed<N> to redo one). Synthetic data: the numbers
say whether an option moves the metric on this data and model size, not what it does on real corpora.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent.parent
BASE_CONFIG = "configs/demo/train.yaml"


def flatten(node, prefix: str = "") -> List[str]:
    """A YAML fragment -> ``dotted.key=value`` overrides (lists inline, nulls as ``null``)."""
    out: List[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        out.append(f"{prefix}=[{','.join(str(x) for x in node)}]")
    else:
        out.append(f"{prefix}={'null' if node is None else node}")
    return out


def fragment_overrides(path: Path) -> List[str]:
    from omegaconf import OmegaConf

    return flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {})


def sh(cmd: List[str], log: Path, env: Dict[str, str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        raise RuntimeError(f"command failed with status {rc} (see {log}): {' '.join(cmd)}")


def ensure_shards(work: Path, env: Dict[str, str], seed: int) -> Path:
    shards = work / "shards"
    if (shards / "test" / "index.json").exists():
        return shards
    py = sys.executable
    corpora = work / "corpora"
    if not (corpora / "shards.yaml").exists():
        sh([py, "-m", "shard_builder", "demo", str(corpora), "--seed", str(seed)], work / "build.log", env)
    sh([py, "-m", "shard_builder", "build", "--config", str(corpora / "shards.yaml"), f"out_dir={shards}"],
       work / "build.log", env)
    return shards


def ensure_heldout(work: Path, seeds: List[int], env: Dict[str, str]) -> Path:
    """Replay-only held-out shards from freshly generated demo corpora (other seeds: new speakers and clips, same
    kinds of channels), every entry forced into the ``test`` split - the demo's own test split has ~18 replay clips,
    too few to tell options apart."""
    from omegaconf import OmegaConf

    out = work / "heldout"
    if (out / "test" / "index.json").exists():
        return out
    py = sys.executable
    entries = []
    for seed in seeds:
        corpora = work / f"corpora_seed{seed}"
        if not (corpora / "shards.yaml").exists():
            sh([py, "-m", "shard_builder", "demo", str(corpora), "--seed", str(seed)], work / "build.log", env)
        cfg = OmegaConf.to_container(OmegaConf.load(corpora / "shards.yaml"))
        for e in cfg["corpora"]:
            if e["attack_type"] == "replay":
                entries.append(dict(e, name=f"{e['name']}_seed{seed}", split="test"))
    cfg["corpora"], cfg["out_dir"] = entries, str(out)
    spec = work / "heldout.yaml"
    OmegaConf.save(OmegaConf.create(cfg), spec)
    sh([py, "-m", "shard_builder", "build", "--config", str(spec)], work / "build.log", env)
    return out


def evaluate(model: Path, shards: Path, out: Path, log: Path, env: Dict[str, str]) -> dict:
    metrics = out / "metrics.json"
    if not metrics.exists():
        sh([sys.executable, "-m", "eval", "--config", "configs/eval.yaml", f"model={model}", f"data.shards={shards}",
            "data.split=test", f"out_dir={out}", "report.plots=false", "metrics.bootstrap=0"], log, env)
    m = json.loads(metrics.read_text())
    replay = m.get("by_attack_type", {}).get("replay", {})
    return {"overall": m["overall"]["eer"], "digital": m.get("by_attack_type", {}).get("digital", {}).get("eer"),
            "replay": replay.get("eer"), "n_replay": replay.get("n_bonafide", 0) + replay.get("n_spoof", 0)}


def run_arm(arm: str, seed: int, args, shards: Path, heldout, env: Dict[str, str]) -> dict:
    name = "baseline" if arm == "baseline" else Path(arm).stem
    extra = [] if arm == "baseline" else fragment_overrides(ROOT / arm)
    out = (args.work / "runs" / name / f"seed{seed}").resolve()
    model = out / "train" / "model"
    t0 = time.time()
    if not (model / "model.safetensors").exists():
        sh([sys.executable, "-m", "trainer", "--config", BASE_CONFIG, *extra, f"data.shards={shards}",
            f"output_dir={out / 'train'}", f"seed={seed}", f"train.max_steps={args.steps}",
            f"data.num_workers={args.workers}", "train.trackers=[]", *args.set], out / "run.log", env)
    res = {"test": evaluate(model, shards, out / "eval", out / "run.log", env)}
    if heldout is not None:
        res["heldout"] = evaluate(model, heldout, out / "eval_heldout", out / "run.log", env)
    print(f"  {name} seed {seed}: {time.time() - t0:.0f} s", flush=True)
    return res


def fmt(values: List[float]) -> str:
    vals = [100 * v for v in values if v is not None]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} +- {statistics.stdev(vals):.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "compare")
    ap.add_argument("--shards", type=Path, default=None, help="existing demo shards (default: build under WORK)")
    ap.add_argument("--arms", nargs="+", default=["baseline", "configs/recipes/augment_replay.yaml"],
                    help="'baseline' and/or recipe fragments (paths relative to the repository root)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1, help="data.num_workers of each training run")
    ap.add_argument("--set", nargs="*", default=[], help="extra overrides for every training run")
    ap.add_argument("--heldout-seeds", nargs="*", type=int, default=[1],
                    help="demo seeds whose replay corpora form the extra held-out set ([] to skip it)")
    args = ap.parse_args()
    args.work = args.work.resolve()
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    t0 = time.time()
    shards = args.shards.resolve() if args.shards else ensure_shards(args.work, env, 0)
    heldout = ensure_heldout(args.work, args.heldout_seeds, env) if args.heldout_seeds else None
    results: Dict[str, List[dict]] = {}
    for seed in args.seeds:  # seed-major: a partial run still has every arm for the first seeds
        for arm in args.arms:
            results.setdefault(arm, []).append(run_arm(arm, seed, args, shards, heldout, env))
    first = next(iter(results.values()))[0]
    lines = [
        f"Demo corpora (seed 0), tiny WavLM, {args.steps} training steps, training seeds "
        f"{' '.join(map(str, args.seeds))}. EER in %, mean +- std over training seeds. Test split: "
        f"{first['test']['n_replay']} replay clips"
        + (f"; held-out replay set: {first['heldout']['n_replay']} clips from fresh demo corpora (demo seed "
           f"{', '.join(map(str, args.heldout_seeds))})." if heldout is not None else "."),
        "Change vs baseline: the same training seed with and without the option (paired), in EER points.",
        "",
        "| arm | test: overall EER | test: digital EER | test: replay EER | held-out replay EER | "
        "held-out replay EER per seed | change vs baseline per seed |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    base_held = [r["heldout"]["replay"] for r in results["baseline"]] if "baseline" in results and heldout else None
    for arm, rows in results.items():
        name = "baseline (configs/demo/train.yaml)" if arm == "baseline" else f"+ {arm}"
        held = [r["heldout"]["replay"] for r in rows] if heldout is not None else []
        per_seed = ", ".join(f"{100 * v:.2f}" for v in held if v is not None) or "n/a"
        change = "-"
        if base_held and arm != "baseline":
            change = ", ".join(f"{100 * (v - b):+.2f}" for v, b in zip(held, base_held))
        lines.append(f"| {name} | {fmt([r['test']['overall'] for r in rows])} | "
                     f"{fmt([r['test']['digital'] for r in rows])} | {fmt([r['test']['replay'] for r in rows])} | "
                     f"{fmt(held)} | {per_seed} | {change} |")
    table = "\n".join(lines) + "\n"
    (args.work / "compare.md").write_text(table)
    print(table)
    print(f"total {time.time() - t0:.0f} s; table written to {args.work / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
