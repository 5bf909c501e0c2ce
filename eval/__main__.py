"""``python -m eval --config configs/eval.yaml model=DIR data.shards=DIR data.split=test out_dir=DIR``

Also under ``torchrun --nproc_per_node N -m eval ...`` or ``accelerate launch -m eval ...``: each process scores a
disjoint part of the split and rank 0 writes the outputs.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval", description="Score one split of shards and write the "
                                "evaluation report (metrics.json, scores.csv, report.md, plots/).")
    p.add_argument("--config", action="append",
                   help="YAML config (configs/eval.yaml); repeat to merge files in order (later wins)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. model=runs/demo/model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from shard_builder.configuration import ConfigError, load_config
    from eval.config import EvalConfig
    from eval.runner import dist_env, run_eval
    from eval.scoring import ModelLoadError

    try:
        cfg = load_config(EvalConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rank, _, _ = dist_env()
    bar = None
    progress = None
    if rank == 0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="utt", desc="scoring (rank 0)", file=sys.stderr, dynamic_ncols=True)
        progress = lambda n, secs: bar.update(n)  # noqa: E731
    try:
        result = run_eval(cfg, progress=progress)
    except (ModelLoadError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if result is not None:
        o = result["metrics"]["overall"]
        by = result["metrics"]["by_attack_type"]
        fmt = lambda x: "n/a" if x is None else f"{100 * x:.2f}%"  # noqa: E731
        print(f"EER {fmt(o['eer'])}  accuracy {fmt(o['accuracy'])}  minDCF "
              f"{'n/a' if o['min_dcf'] is None else round(o['min_dcf'], 4)}  "
              f"(digital EER {fmt(by['digital']['eer'])}, replay EER {fmt(by['replay']['eer'])})")
        for w in result["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        print(f"wrote {result['out_dir']}/metrics.json, scores.csv, report.md, plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
