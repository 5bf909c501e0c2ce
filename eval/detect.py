"""Score audio files with an exported detector: ``python -m eval.detect --model DIR PATH [PATH ...]``.

Files and directories (walked recursively), any format soundfile reads, any sample rate, any number of channels,
from a fraction of a second to hours: the file is read in chunks of at most ``chunk_seconds`` (bounded memory),
each chunk is down-mixed, resampled to 16 kHz and scored, and the chunk logits are averaged (the same near-equal
chunking as ``python -m eval``). One JSON object per line and per file:
``{"path", "score", "p_spoof", "label", "duration", ...}`` or ``{"path", "error"}``.

``score`` is the spoof logit (higher = more likely spoof). With a calibration saved in the model's config.json
the line also has ``llr`` and ``p_spoof = sigmoid(llr)`` (posterior at equal priors); otherwise
``p_spoof = sigmoid(score)``. ``label`` is ``spoof`` when ``p_spoof >= threshold``; the default threshold is the
calibration's Bayes threshold, else 0.5.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from eval.data import MIN_SAMPLES
from shard_builder.audio import TARGET_SR, resample, to_mono

#: Extensions picked up when walking a directory (explicitly named files are always tried).
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
                  ".caf", ".w64", ".rf64", ".sd2", ".voc", ".wve", ".htk", ".sph", ".nist", ".avr", ".mat",
                  ".pvf", ".xi", ".sds", ".ircam", ".sf", ".paf", ".mpc2k", ".raw"}
SILENCE_RMS = 1e-5


class DetectError(Exception):
    """A file that cannot be scored; the message is the ``error`` field of its line."""


def iter_inputs(paths: Sequence[str]) -> Iterator[Tuple[str, Optional[str]]]:
    """``(path, None)`` for each file to score, ``(path, error)`` for a named path that does not exist.

    Directories are walked recursively in sorted order, keeping files with an audio extension.
    """
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                        yield str(Path(root) / name), None
        elif path.is_file():
            yield str(path), None
        else:
            yield str(path), "no such file or directory"


def iter_chunks(path: str, chunk_seconds: float, sample_rate: int = TARGET_SR) -> Iterator[Tuple[np.ndarray, float]]:
    """Yield ``(chunk, seconds_read_so_far)``: float32 mono chunks at ``sample_rate``, read a chunk at a time.

    With a known frame count the file is cut into ``ceil(frames / chunk)`` near-equal chunks (as the eval runner
    does); otherwise fixed-size blocks are read until the end. Raises DetectError on unreadable data.
    """
    import soundfile as sf

    try:
        f = sf.SoundFile(path)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectError(f"unreadable: {msg}") from exc
    with f:
        sr = int(f.samplerate)
        chunk_frames = max(1, int(round(chunk_seconds * sr)))
        frames = int(f.frames) if f.frames and f.frames > 0 and f.frames < 2**62 else 0
        if frames:
            n = max(1, math.ceil(frames / chunk_frames))
            sizes = [round((i + 1) * frames / n) - round(i * frames / n) for i in range(n)]
        else:
            sizes = []
        done = 0
        # After the planned chunks, keep reading fixed blocks in case the header under-reported the length.
        for size in itertools.chain(sizes, itertools.repeat(chunk_frames)):
            try:
                data = f.read(size, dtype="float32", always_2d=True)
            except Exception as exc:
                raise DetectError(f"unreadable: read failed after {done / sr:.2f} s ({exc})") from exc
            if data.shape[0] == 0:
                break
            done += data.shape[0]
            yield resample(to_mono(data), sr, sample_rate), done / sr
            if data.shape[0] < size:
                break


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class FileScorer:
    """An exported model plus its calibration and threshold, scoring one file at a time."""

    def __init__(self, model_dir: str, device: str = "auto", threshold: Optional[float] = None,
                 chunk_seconds: float = 30.0, batch_seconds: float = 120.0):
        from eval.calibration import calibration_from_meta, decision_threshold_llr
        from eval.scoring import Scorer, load_detector, pick_device

        model, meta = load_detector(model_dir)
        self.scorer = Scorer(model, pick_device(device))
        self.calibration = calibration_from_meta(meta)
        if threshold is not None:
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"--threshold is a p_spoof threshold in [0, 1], got {threshold}")
            self.threshold, self.threshold_source = float(threshold), "--threshold"
        elif self.calibration:
            self.threshold = _sigmoid(decision_threshold_llr(self.calibration))
            self.threshold_source = "calibrated Bayes threshold"
        else:
            self.threshold, self.threshold_source = 0.5, "default 0.5 (no calibration saved with the model)"
        self.chunk_seconds = chunk_seconds
        self.batch_samples = int(batch_seconds * TARGET_SR)

    def _score_group(self, group: List[np.ndarray]) -> np.ndarray:
        from eval.data import Item, collate

        waves, lengths = collate([Item("", i, w) for i, w in enumerate(group)])
        return self.scorer.score_arrays(waves, lengths)

    def score_file(self, path: str) -> dict:
        """The JSON line of one file (``error`` instead of a score when it cannot be scored)."""
        try:
            return self._score(path)
        except DetectError as exc:
            return {"path": path, "error": str(exc)}

    def _score(self, path: str) -> dict:
        logits: List[float] = []
        group: List[np.ndarray] = []
        sumsq, n_samples, seconds = 0.0, 0, 0.0
        for chunk, seconds in iter_chunks(path, self.chunk_seconds):
            if not np.all(np.isfinite(chunk)):
                raise DetectError("non_finite: NaN or infinite samples")
            sumsq += float(np.square(chunk, dtype=np.float64).sum())
            n_samples += chunk.size
            if chunk.size < MIN_SAMPLES:
                if logits or group:  # a last sliver after full chunks adds nothing; drop it
                    continue
                raise DetectError(f"too_short: {seconds:.3f} s; at least {MIN_SAMPLES / TARGET_SR:.3f} s needed")
            # Only chunks of identical length share a batch: nothing is zero-padded (padding shifts the scores
            # of group-norm WavLM), and the memory held stays at most one batch of chunks.
            if group and (chunk.size != group[0].size or chunk.size * (len(group) + 1) > self.batch_samples):
                logits.extend(self._score_group(group).tolist())
                group = []
            group.append(chunk)
        if group:
            logits.extend(self._score_group(group).tolist())
        if n_samples == 0:
            raise DetectError("no_frames: the file holds no audio frames")
        if not logits:
            raise DetectError(f"too_short: {seconds:.3f} s; at least {MIN_SAMPLES / TARGET_SR:.3f} s needed")
        if math.sqrt(sumsq / n_samples) < SILENCE_RMS:
            raise DetectError("silent: all-silent audio, nothing to score")
        score = float(np.mean(logits))
        out = {"path": path, "score": score}
        if self.calibration:
            from eval.calibration import apply_calibration

            llr = float(apply_calibration([score], self.calibration)[0])
            out["llr"] = llr
            p = _sigmoid(llr)
        else:
            p = _sigmoid(score)
        out.update({"p_spoof": p, "label": "spoof" if p >= self.threshold else "bonafide",
                    "duration": round(seconds, 6), "chunks": len(logits)})
        return out


CSV_FIELDS = ("path", "score", "p_spoof", "label", "duration", "llr", "chunks", "error")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.detect", description="Score audio files or directories "
                                 "with an exported deepfake detector; one JSON line per file.")
    ap.add_argument("--model", required=True, help="exported model directory (OUT/model)")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or directories (recursive)")
    ap.add_argument("--csv", action="store_true", help="write CSV instead of JSON lines")
    ap.add_argument("--output", "-o", help="write to this file instead of stdout")
    ap.add_argument("--threshold", type=float, default=None,
                    help="decision threshold on p_spoof (default: the model's calibrated Bayes threshold, else 0.5)")
    ap.add_argument("--chunk-seconds", type=float, default=30.0, help="longest chunk scored at once (default 30)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.chunk_seconds <= 0.1:
        ap.error("--chunk-seconds must be > 0.1")
    try:
        scorer = FileScorer(args.model, device=args.device, threshold=args.threshold, chunk_seconds=args.chunk_seconds)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    writer = None
    if args.csv:
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
    from tqdm import tqdm

    bar = tqdm(unit="file", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty())
    n_ok = n_err = 0
    try:
        for path, err in iter_inputs(args.paths):
            line = {"path": path, "error": err} if err else scorer.score_file(path)
            if "error" in line:
                n_err += 1
            else:
                n_ok += 1
            if writer is not None:
                writer.writerow(line)
            else:
                out.write(json.dumps(line) + "\n")
            out.flush()
            bar.update(1)
    finally:
        bar.close()
        if args.output:
            out.close()
    print(f"scored {n_ok} file(s), {n_err} error(s); threshold p_spoof >= {scorer.threshold:.4f} "
          f"({scorer.threshold_source})", file=sys.stderr)
    return 0 if n_ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
