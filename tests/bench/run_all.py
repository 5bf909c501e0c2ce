"""`make bench`: run every benchmark in tests/bench/ and write one markdown file the README quotes.

Each bench_*.py exposes ``run(quick: bool) -> str`` (a markdown table whose ratios are against a baseline
measured in the same run). ``--full`` uses the sizes the issues' targets name (slower).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{os.cpu_count()} cores ({cpu}), GPU: {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--full", action="store_true")
    ap.add_argument("only", nargs="*", help="names like bench_build (default: all)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    parts = [f"# Benchmarks\n\nMachine: {machine()}. Mode: {'full' if args.full else 'quick'}. "
             f"Date: {time.strftime('%Y-%m-%d')}.\n"]
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        print(f"--- {path.stem}", flush=True)
        t0 = time.time()
        try:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            table = mod.run(quick=not args.full)
            parts.append(f"## {path.stem} ({time.time() - t0:.0f} s)\n\n{table.strip()}\n")
            print(table, flush=True)
        except Exception:
            failed += 1
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            parts.append(f"## {path.stem}: FAILED\n\n```\n{tb.strip().splitlines()[-1]}\n```\n")
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
