"""CLI: ``python -m shard_builder {build,verify,demo}`` (thin: parse, load config, call one function)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _progress_bars():
    from tqdm import tqdm

    bars = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            unit = "file" if stage == "decode" else "sample"
            bar = bars[stage] = tqdm(total=total, desc=stage, unit=unit, dynamic_ncols=True)
        bar.update(done - bar.n)

    def close():
        for b in bars.values():
            b.close()

    return progress, close


def cmd_build(args) -> int:
    from .build import build_shards
    from .config import BuildConfig
    from .configuration import ConfigError, load_config

    try:
        cfg = load_config(BuildConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress, close = _progress_bars()
    try:
        report = build_shards(cfg, progress=progress)
    except ConfigError as exc:
        close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. another build holds the out_dir's lock
        close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    close()
    t = report["totals"]
    print(f"{t['written']} samples ({t['seconds'] / 3600:.2f} h) written to {report['out_dir']}: "
          + ", ".join(f"{s} {v['samples']} in {v['shards']} shards" for s, v in report["splits"].items()))
    # .get: a build finished before malformed lines were counted returns its old report
    print(f"found {t['found']}, capped {t['capped']}, duplicates {t['duplicates']}, skipped {t['skipped']}, "
          f"malformed protocol lines skipped {t.get('bad_protocol_lines', 0)}"
          f" (see {Path(report['out_dir']) / 'build_report.json'})")
    for name, c in report["corpora"].items():
        if c["skipped"]:
            print(f"  {name}: skipped " + ", ".join(f"{r} {n}" for r, n in sorted(c["skipped"].items())))
        if c.get("bad_protocol_lines"):
            first = c["bad_protocol_line_list"][0]
            print(f"  {name}: skipped {c['bad_protocol_lines']} malformed protocol line(s), the first "
                  f"{first['file']}:{first['line']}: {first['reason']}")
    return 0


def cmd_verify(args) -> int:
    from tqdm import tqdm

    from .verify import verify_shards

    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="verify", unit="shard", dynamic_ncols=True)
        bar.update(done - bar.n)

    res = verify_shards(args.shards_dir, decode=not args.no_decode, progress=progress)
    if bar is not None:
        bar.close()
    for p in res.problems:
        print(f"MISMATCH {p}", file=sys.stderr)
    status = "OK" if res.ok else f"FAILED ({len(res.problems)} problems)"
    print(f"{status}: {res.splits} splits, {res.shards} shards, {res.samples} samples checked in {args.shards_dir}")
    return 0 if res.ok else 1


def cmd_demo(args) -> int:
    from .demo import write_demo_corpora  # written by the demo module's owner; imported only here

    path = write_demo_corpora(Path(args.out_dir), args.seed)
    print(f"demo corpora written; build them with: python -m shard_builder build --config {path}")
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m shard_builder", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build WebDataset shards from the corpora of a config")
    b.add_argument("--config", required=True, action="append",
                   help="YAML file (schema: shard_builder.config.BuildConfig); repeat to merge files in order "
                        "(a later file's `corpora` list replaces the earlier one)")
    b.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. workers=4 shard.max_samples=5000")
    b.set_defaults(func=cmd_build)
    v = sub.add_parser("verify", help="re-read every shard and check it against index.json")
    v.add_argument("shards_dir")
    v.add_argument("--no-decode", action="store_true", help="skip decoding audio (checks sizes, sha256, metadata)")
    v.set_defaults(func=cmd_verify)
    d = sub.add_parser("demo", help="write small synthetic corpora in the real layouts + OUT_DIR/shards.yaml")
    d.add_argument("out_dir")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
