"""Shard-build throughput, end to end, in audio-seconds per second per worker, next to `tar` on the same files.

    python tests/bench/bench_build.py              # quick: ~10 min of audio per row
    python tests/bench/bench_build.py --hours 2    # the issue's size: 2 h per 16 kHz row (44.1 kHz rows: 1/4 of it)

For each source kind (16 kHz WAV, 16 kHz FLAC, 44.1 kHz WAV; 4 s speech-like clips, each file distinct PCM so
nothing is deduplicated) and each output format (FLAC, WAV) it runs the whole build (`build_shards`: adapter
listing, decode + resample + encode in worker processes, dedup, split, shard writing with fsync, index, report)
and times it. The baseline is GNU `tar -cf` packing the same source folder in the same run. Targets from issue 2
(2 h of 16 kHz audio, 2 workers): FLAC >= 300x real time per worker, WAV >= 1000x.

Columns: *x RT/worker (wall)* = audio seconds / wall seconds / workers. *x RT/worker (idle est.)* = the same with the
wall time an idle machine would take, main-process CPU (serial) + workers' CPU / workers, which other load on a
shared machine does not change (it ignores I/O waits). *x RT/CPU-s* = audio seconds / all CPU seconds of the build.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CLIP_SECONDS = 4.0
TARGETS = {"flac": 300.0, "wav": 1000.0}  # x real time per worker, 16 kHz sources


def make_sources(root: Path, hours: float, sr: int, fmt: str, seed: int = 0) -> float:
    """``root/manifest.csv`` + ``root/audio/*.{wav,flac}``: distinct speech-like 4 s clips; returns audio seconds."""
    from shard_builder import synth

    rng = np.random.default_rng(seed)
    pool = [synth.speech(rng, synth.make_speaker(rng, f"s{i}"), CLIP_SECONDS, sr) for i in range(12)]
    n = max(2, int(round(hours * 3600 / CLIP_SECONDS)))
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = ["path,label,speaker"]
    for i in range(n):
        # a distinct gain and a faint distinct noise: no two files decode to the same PCM
        wave = pool[i % len(pool)] * (0.5 + 0.4 * (i % 97) / 97) + 1e-3 * rng.standard_normal(pool[0].size)
        rel = f"audio/clip_{i:06d}.{fmt}"
        sf.write(str(root / rel), wave.astype(np.float32), sr, format=fmt.upper(), subtype="PCM_16")
        rows.append(f"{rel},{'spoof' if i % 2 else 'bonafide'},spk{i % 40:02d}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return n * CLIP_SECONDS


def _cpu() -> tuple:
    """(CPU seconds of this process, CPU seconds of its finished children: the build's worker processes)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


def time_build(src: Path, out: Path, fmt: str, workers: int) -> tuple:
    """(wall s, (main CPU s, workers' CPU s), report, stage walls) of one complete build of ``src`` into ``out``."""
    from shard_builder.build import build_shards
    from shard_builder.config import AudioConfig, BuildConfig, CorpusEntry, ShardConfig

    cfg = BuildConfig(out_dir=str(out), seed=0, workers=workers, audio=AudioConfig(format=fmt),
                      shard=ShardConfig(max_bytes=256 * 1024 * 1024, max_samples=2000),
                      corpora=[CorpusEntry(name="bench", adapter="manifest", root=str(src), attack_type="digital")])
    cfg.validate()
    marks = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        marks.setdefault(stage, [now, now])[1] = now

    c0, t0 = _cpu(), time.perf_counter()
    report = build_shards(cfg, progress)
    t1 = time.perf_counter()
    c1 = _cpu()
    cpu = (c1[0] - c0[0], c1[1] - c0[1])
    # stage walls: listing/planning (before the first decode tick), decode, write, the rest (index, report)
    d0, d1 = marks.get("decode", [t0, t0])
    w0, w1 = marks.get("write", [d1, d1])
    stages = {"list": d0 - t0, "decode": d1 - d0, "write": w1 - d1, "rest": t1 - w1}
    return t1 - t0, cpu, report, stages


def time_tar(src: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["tar", "-cf", str(out), "-C", str(src), "."], check=True)
    return time.perf_counter() - t0


def run(quick: bool = True, hours: float | None = None, workers: int = 2, keep: bool = False) -> str:
    """The markdown table: quick = 10 min of audio per row, else 2 h per 16 kHz row (``hours`` overrides both)."""
    hours16 = hours if hours is not None else (1 / 6 if quick else 2.0)
    hours44 = hours16 / 4 if hours16 >= 0.5 else hours16
    kinds = [("16 kHz WAV", 16000, "wav", hours16), ("16 kHz FLAC", 16000, "flac", hours16),
             ("44.1 kHz WAV", 44100, "wav", hours44)]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        for label, sr, src_fmt, h in kinds:
            src = tmp / f"src_{sr}_{src_fmt}"
            audio_s = make_sources(src, h, sr, src_fmt)
            src_bytes = sum(p.stat().st_size for p in (src / "audio").iterdir())
            tar_s = time_tar(src, tmp / "baseline.tar")
            (tmp / "baseline.tar").unlink()
            for out_fmt in ("flac", "wav"):
                out = tmp / f"out_{sr}_{src_fmt}_{out_fmt}"
                wall, cpu, report, st = time_build(src, out, out_fmt, workers)
                written = report["totals"]["written"]
                assert written == report["totals"]["found"], report["totals"]
                per_worker = audio_s / wall / workers
                # what an idle machine would give: the main process's CPU is serial, the workers' is shared out
                idle_wall = cpu[0] + cpu[1] / workers
                idle_per_worker = audio_s / idle_wall / workers
                target = TARGETS[out_fmt] if sr == 16000 else None
                split = "/".join(f"{st[k]:.1f}" for k in ("list", "decode", "write", "rest"))
                verdict = "-" if target is None else f">= {target:.0f}x (judged at --hours 2)" if h < 2 else (
                    f">= {target:.0f}x: wall {'met' if per_worker >= target else 'NOT met'}, "
                    f"idle est. {'met' if idle_per_worker >= target else 'NOT met'}")
                rows.append((label, out_fmt.upper(), f"{audio_s / 3600:.2f} h", written, f"{wall:.1f}", split,
                             f"{cpu[0]:.1f} / {cpu[1]:.1f}", f"{per_worker:,.0f}x", f"{idle_per_worker:,.0f}x",
                             f"{audio_s / sum(cpu):,.0f}x", f"{audio_s / tar_s:,.0f}x",
                             f"{per_worker * workers / (audio_s / tar_s):.3f}", verdict))
                shutil.rmtree(out)
            shutil.rmtree(src)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    head = ("| source | output | audio | files | build wall (s) | list/decode/write/rest (s) | CPU main / workers (s) | "
            "x RT/worker (wall) | x RT/worker (idle est.) | x RT/CPU-s | tar x RT | build/tar (wall) | "
            "target (per worker) |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"Build with {workers} workers on {os.cpu_count()} cores (load average {load} at the end), 4 s clips; "
             f"`tar -cf` of the same source folder as baseline.", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=None, help="hours of 16 kHz audio per row (default: quick)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(run(quick=args.hours is None, hours=args.hours, workers=args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
