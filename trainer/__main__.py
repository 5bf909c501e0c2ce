"""``python -m trainer --config FILE [dotted.key=value ...]`` (also under ``torchrun`` / ``accelerate launch``).

Exit status: 0 finished (``OUT/model`` exported), 75 stopped for preemption (checkpoint saved: rerun the same
command to resume), 2 config error, 1 any other error (corrupt data with ``data.on_corrupt=fail``, refused resume).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train a WavLM deepfake detector.")
    parser.add_argument("--config", required=True, action="append",
                        help="YAML config (e.g. configs/train.yaml); repeat to merge files in order (later wins)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    args = parser.parse_args(argv)
    rank = _rank()
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")
    for noisy in ("accelerate", "torch.distributed", "deepspeed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from shard_builder.configuration import ConfigError, load_config
    from trainer.config import TrainConfig

    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from trainer.data import DataError
    from trainer.loop import PREEMPTED, train
    from trainer.preemption import EXIT_PREEMPTED, PreemptionFlag

    flag = PreemptionFlag().install()
    bar = None

    def progress(step, total, row):
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=step - 1, desc="train", unit="step", dynamic_ncols=True,
                       disable=not sys.stderr.isatty())
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{row['loss']:.4f}", samples_s=f"{row['samples_per_s']:.1f}",
                        data_wait=f"{100 * row['data_wait_frac']:.0f}%", refresh=False)

    try:
        status = train(cfg, flag, progress)
    except ConfigError as exc:  # a config that loads but does not fit the data or the init_from model
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        logging.getLogger("trainer").error("%s", exc)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if status == PREEMPTED:
        logging.getLogger("trainer").warning(
            "stopped by %s: checkpoint saved; exit %d (rerun the same command to resume)", flag.name(), EXIT_PREEMPTED)
        return EXIT_PREEMPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
