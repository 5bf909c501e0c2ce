"""Write small contract-format WebDataset shards directly (no shard builder), for trainer / eval / slurm tests.

Audio is synthetic but learnable: bona fide = harmonic "voiced" tones with jitter, spoof = the same with a
buzzier, band-limited spectrum (digital) or a smeared, noisier one (replay), so a tiny model can separate them.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf

SR = 16000


def synth_clip(rng: np.random.Generator, label: str, attack_type: str, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(90, 220) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    harmonics = range(1, 12)
    if label == "bonafide":
        x = sum((0.9 ** k) * np.sin(k * phase + rng.uniform(0, 6.28)) for k in harmonics)
        x += 0.02 * rng.standard_normal(n)
    elif attack_type == "digital":
        x = sum(np.sign(np.sin(k * phase)) * (0.7 ** k) for k in harmonics)
    else:
        x = sum((0.9 ** k) * np.sin(k * phase) for k in (1, 2, 3))
        x += 0.2 * rng.standard_normal(n)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * t) ** 2
    x = x * env
    x = 0.3 * x / (np.abs(x).max() + 1e-9)
    return x.astype(np.float32)


def write_shards(
    root: str | os.PathLike,
    split: str = "train",
    n_samples: int = 32,
    samples_per_shard: int = 8,
    seed: int = 0,
    fmt: str = "flac",
    durations: Sequence[float] = (1.0, 2.5, 4.5),
    corpora: Iterable[tuple] = (("demo_digital", "digital"), ("demo_replay", "replay")),
) -> Path:
    """Write ``root/split/shard-NNNNNN.tar`` + ``index.json``; samples alternate label and corpus."""
    import hashlib

    import webdataset as wds

    rng = np.random.default_rng(seed)
    out = Path(root) / split
    out.mkdir(parents=True, exist_ok=True)
    corpora = list(corpora)
    shards, totals = [], {"samples": 0, "seconds": 0.0, "by_label": {}, "by_attack_type": {}, "by_corpus": {}}
    for s_idx in range(0, n_samples, samples_per_shard):
        name = f"shard-{s_idx // samples_per_shard:06d}.tar"
        path = out / name
        count = 0
        with wds.TarWriter(str(path)) as sink:
            for i in range(s_idx, min(n_samples, s_idx + samples_per_shard)):
                label = "spoof" if i % 2 else "bonafide"
                corpus, attack_type = corpora[(i // 2) % len(corpora)]
                dur = float(durations[i % len(durations)])
                wave = synth_clip(rng, label, attack_type, dur)
                pcm = (wave * 32767).astype(np.int16)
                buf = io.BytesIO()
                sf.write(buf, pcm, SR, format=fmt.upper(), subtype="PCM_16")
                key = f"{split}_{i:06d}"
                meta = {
                    "key": key, "label": label, "attack_type": attack_type,
                    "attack": None if label == "bonafide" else f"A{i % 3:02d}", "corpus": corpus,
                    "language": "en", "speaker": f"spk{i % 5}", "duration": len(pcm) / SR, "sample_rate": SR,
                    "source": f"{corpus}/{key}.wav", "audio_sha1": hashlib.sha1(pcm.tobytes()).hexdigest(),
                }
                sink.write({"__key__": key, fmt: buf.getvalue(), "json": json.dumps(meta).encode()})
                count += 1
                totals["samples"] += 1
                totals["seconds"] += meta["duration"]
                for k, v in (("by_label", label), ("by_attack_type", attack_type), ("by_corpus", corpus)):
                    totals[k][v] = totals[k].get(v, 0) + 1
        data = path.read_bytes()
        shards.append({"name": name, "samples": count, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (out / "index.json").write_text(json.dumps({"split": split, "shards": shards, "totals": totals}, indent=2))
    return Path(root)
