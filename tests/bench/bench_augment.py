"""Loader cost of each augmentation (trainer/augment.py), in audio-seconds per second per core on 4 s clips.

Each row times the training loader's per-sample work - decode the FLAC member, crop 4 s, augment - with one
augmentation switched on (prob 1), against the same loop with augmentation off (the baseline, same run). The
"augmentation alone" column times only the augmenter call. Times are CPU time of this single-threaded process
(``time.process_time``), so other jobs on a shared machine inflate them less than wall time would.

    python tests/bench/bench_augment.py [--full]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for p in (str(ROOT), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from shard_builder.audio import decode_audio_bytes  # noqa: E402
from shardkit import synth_clip  # noqa: E402
from trainer.augment import STEPS, AugmentConfig, Augmenter, available_codecs  # noqa: E402

SR = 16000
CROP = 4 * SR


def _section(cfg: AugmentConfig, path: str):
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _one(step: str, **params) -> AugmentConfig:
    cfg = AugmentConfig(enabled=True)
    sec = _section(cfg, dict(STEPS)[step])
    sec.prob = 1.0
    for k, v in params.items():
        setattr(sec, k, v)
    return cfg


def _recipe(path: Path) -> AugmentConfig:
    """The ``augment`` section of a recipe fragment under configs/recipes/, merged onto the defaults."""
    from omegaconf import OmegaConf

    frag = OmegaConf.load(path)
    merged = OmegaConf.merge(OmegaConf.structured(AugmentConfig), frag.get("augment", {}))
    return OmegaConf.to_object(merged)


def cases():
    rows = [("none (baseline)", "augment.enabled=false", AugmentConfig(enabled=False))]
    rows.append(("speed", "factors 0.9-1.1", _one("speed")))
    rows.append(("rawboost.lnl", "RawBoost 1, n_f=5, 5 bands", _one("lnl")))
    rows.append(("rawboost.isd", "RawBoost 2, P=10 %", _one("isd")))
    rows.append(("rawboost.ssi", "RawBoost 3, SNR 10-40 dB", _one("ssi")))
    rows.append(("reverb", "RT60 0.2-1.0 s", _one("reverb")))
    rows.append(("noise", "coloured, SNR 5-30 dB", _one("noise")))
    rows.append(("band_limit", "LP/HP/BP/telephone", _one("band_limit")))
    for codec in available_codecs(SR):
        if codec in ("mp3", "vorbis", "opus", "mulaw", "alaw", "gsm"):
            rows.append((f"codec: {codec}", "quality 0-0.9" if codec in ("mp3", "vorbis", "opus") else "",
                         _one("codec", codecs=[codec])))
    rows.append(("codec (default mix)", "mp3/vorbis/opus/mulaw/alaw", _one("codec")))
    rows.append(("gain", "-12..+6 dB", _one("gain")))
    recipe = ROOT / "configs" / "recipes" / "augment_replay.yaml"
    if recipe.is_file():
        rows.append(("recipe augment_replay.yaml", "probabilities as in the recipe", _recipe(recipe)))
    return rows


def _clips(n: int):
    g = np.random.default_rng(0)
    out = []
    for i in range(n):
        wave = synth_clip(g, "spoof" if i % 2 else "bonafide", "replay" if i % 3 else "digital", 4.0)
        buf = io.BytesIO()
        sf.write(buf, (wave * 32767).astype(np.int16), SR, format="FLAC", subtype="PCM_16")
        out.append(buf.getvalue())
    return out


def _time(fn, seconds: float, min_iters: int = 3):
    """(CPU seconds per call, calls) of ``fn(i)`` run for about ``seconds`` of CPU time."""
    i, t0 = 0, time.process_time()
    while True:
        fn(i)
        i += 1
        elapsed = time.process_time() - t0
        if i >= min_iters and elapsed >= seconds:
            return elapsed / i, i


def run(quick: bool = True) -> str:
    per_row = 0.6 if quick else 4.0
    flacs = _clips(8)
    waves = [decode_audio_bytes(b)[0] for b in flacs]
    clip_s = CROP / SR

    def loader(aug):
        def step(i):
            wave, _ = decode_audio_bytes(flacs[i % len(flacs)])
            rng = np.random.default_rng([0, 0, i])
            x = wave[:CROP]
            if aug.active:
                x = aug(x, rng)
            return x
        return step

    t_dec, _ = _time(lambda i: decode_audio_bytes(flacs[i % len(flacs)]), per_row)
    lines = [
        "| option | setting | augmentation alone (audio-s/s) | ms per 4 s clip | loader: FLAC decode + crop + "
        "augment (audio-s/s) | loader vs baseline |",
        "|---|---|---:|---:|---:|---:|",
    ]
    base = None
    for name, setting, cfg in cases():
        aug = Augmenter(cfg, SR)
        if aug.active:
            t_aug, _ = _time(lambda i: aug(waves[i % len(waves)][:CROP], np.random.default_rng([1, i])), per_row)
        else:
            t_aug = 0.0
        t_load, _ = _time(loader(aug), per_row)
        if base is None:
            base = t_load
        alone = "-" if t_aug == 0 else f"{clip_s / t_aug:,.0f}"
        ms = "-" if t_aug == 0 else f"{1000 * t_aug:.1f}"
        lines.append(f"| {name} | {setting} | {alone} | {ms} | {clip_s / t_load:,.0f} | {base / t_load:.2f}x |")
    lines.append(f"| FLAC decode alone (for scale) | 16-bit, 16 kHz | - | {1000 * t_dec:.2f} | "
                 f"{clip_s / t_dec:,.0f} | {base / t_dec:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", action="store_true", help="time each row for ~4 s of CPU instead of ~0.6 s")
    print(run(quick=not ap.parse_args().full))
