"""Loader throughput and resume latency of the trainer's shard stream.

    python tests/bench/bench_loader.py [--full]

Table 1: audio-seconds/s decoded + cropped (4 s) + batched, by DataLoader worker count, from FLAC and WAV shards,
next to the baseline: a per-file map-style Dataset reading the same audio from individual files with soundfile
(shuffled, same crop, same batch), measured in the same run, best of 3 (interleaved). Target: >= 2x the baseline at equal workers.
Table 2: resume latency (load the checkpointed position -> first batch; best of 7) at 10 % and 90 % of an epoch.
Target: within 1.5x of each other (the position is reached by skipping tar headers, not by decoding).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[2]
for p in (str(REPO), str(REPO / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from shardkit import write_shards  # noqa: E402
from trainer.data import StreamOptions, TrainStream, index_tar, list_shards, random_crop  # noqa: E402

SR = 16000
CROP = 4.0
BATCH = 8
# Clip lengths like the corpora (ASVspoof ~3 s, M-AILABS / FLEURS 5-15 s), cropped to 4 s.
DURATIONS = (3.0, 5.0, 8.0, 12.0)


class PerFileDataset(Dataset):
    """The baseline: one audio file per sample, read with soundfile."""

    def __init__(self, files, labels):
        self.files, self.labels = files, labels

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        wave, _ = sf.read(self.files[i], dtype="float32")
        rng = np.random.default_rng(i)
        return torch.from_numpy(random_crop(wave, int(CROP * SR), rng)), self.labels[i]


def explode(shard_dir: Path, out: Path, ext: str):
    """Write every shard member's audio as its own file (the per-file layout of a raw corpus)."""
    out.mkdir(parents=True, exist_ok=True)
    files, labels = [], []
    for shard in sorted(shard_dir.glob("*.tar")):
        samples, _ = index_tar(str(shard))
        with open(shard, "rb") as f:
            for s in samples:
                off, size = s.members[ext]
                f.seek(off)
                path = out / f"{s.key}.{ext}"
                path.write_bytes(f.read(size))
                files.append(str(path))
                labels.append(int(s.key.split("_")[-1]) % 2)
    return files, labels


def time_stream(root, workers, epochs=1):
    shards = list_shards(root, "train")
    opts = StreamOptions(seed=0, batch_size=BATCH, crop_samples=int(CROP * SR), num_workers=workers)
    n, t0 = 0, None
    for e in range(epochs):
        stream = TrainStream(shards, opts)
        stream.epoch = e
        while (b := stream.fetch(1)) is not None:
            if t0 is None:  # steady state: worker start-up and the first batch are not counted
                t0 = time.perf_counter()
            else:
                n += b[0]["wave"].shape[0]
            stream.commit(b[0])
        stream.close()
    return n * CROP / (time.perf_counter() - t0)


def time_baseline(files, labels, workers, epochs=1):
    loader = DataLoader(PerFileDataset(files, labels), batch_size=BATCH, shuffle=True, num_workers=workers,
                        drop_last=True, generator=torch.Generator().manual_seed(0))
    n, t0 = 0, None
    for _ in range(epochs):
        for wave, _ in loader:
            if t0 is None:
                t0 = time.perf_counter()
            else:
                n += wave.shape[0]
    return n * CROP / (time.perf_counter() - t0)


def resume_latency(root, fraction, workers=0, repeats=7):
    shards = list_shards(root, "train")
    opts = StreamOptions(seed=0, batch_size=BATCH, crop_samples=int(CROP * SR), num_workers=workers)
    stream = TrainStream(shards, opts)
    total = sum(s.samples for s in shards) // BATCH
    for _ in range(int(total * fraction)):
        stream.commit(stream.fetch(1)[0])
    state = stream.state_dict()
    stream.close()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = TrainStream(shards, opts)
        s.load_state_dict(state)
        s.fetch(1)
        times.append(time.perf_counter() - t0)
        s.close()
    return min(times), state["positions"]


def run(quick: bool = True) -> str:
    n = 96 if quick else 400
    per_shard = 48 if quick else 100
    worker_counts = (0, 1, 2) if quick else (0, 1, 2, 4)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for fmt in ("flac", "wav"):
            root = write_shards(tmp / fmt, "train", n_samples=n, samples_per_shard=per_shard, seed=0, fmt=fmt,
                                durations=DURATIONS)
            files, labels = explode(root / "train", tmp / f"files_{fmt}", fmt)
            time_stream(root, 0)  # warm the page cache
            for w in worker_counts:
                # best of 3, interleaved: the fairest figure on a shared machine
                ours, base = 0.0, 0.0
                for _ in range(3):
                    ours = max(ours, time_stream(root, w))
                    base = max(base, time_baseline(files, labels, w))
                lines.append(f"| {fmt.upper()} | {w} | {ours:,.0f} | {base:,.0f} | {ours / base:.2f}x |")
        table = ["| format | workers | shard stream (audio-s/s) | per-file baseline (audio-s/s) | ratio |",
                 "|---|---|---|---|---|", *lines]
        root = tmp / "flac"
        lat10, pos10 = resume_latency(root, 0.10)
        lat90, pos90 = resume_latency(root, 0.90)
        table += ["", "| resume at | position (shard slot, sample, copy) | time to first batch | ratio vs 10 % |",
                  "|---|---|---|---|",
                  f"| 10 % of the epoch | {pos10} | {lat10 * 1000:.1f} ms | 1.00x |",
                  f"| 90 % of the epoch | {pos90} | {lat90 * 1000:.1f} ms | {lat90 / lat10:.2f}x |"]
    return "\n".join(table)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(run(quick="--full" not in sys.argv))
