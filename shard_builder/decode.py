"""One source file -> the bytes a shard stores, or the reason it cannot be used.

Runs in the build's worker processes. Every failure becomes :class:`AudioError` with one of the reasons counted in
``build_report.json``: ``missing``, ``empty`` (0 bytes), ``not_audio`` (no format soundfile recognises),
``truncated`` (WAV data chunk shorter than its header says; FLAC/MP3 decoder losing sync), ``unreadable`` (other
decode errors), ``no_frames``, ``non_finite`` (NaN/inf samples), ``silent`` (all-silent).

Fast path: a mono PCM-16 WAV/FLAC already at the target rate is read once as int16 and encoded as it is, with no
float round trip (``load_audio`` -> ``to_pcm16`` would give back exactly the same integers). It only takes files it
can vouch for (complete read, clearly not silent); anything else (including every file that ends up rejected) goes
through the general path, so the stored bytes, hashes and rejection reasons are the same either way.
"""
from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import SILENCE_RMS, AudioError, encode_audio, load_audio, pcm_sha1, slow_paths, to_pcm16


@dataclass
class Decoded:
    data: bytes  # encoded FLAC/WAV
    sha1: str  # of the 16-bit PCM
    frames: int


def wav_truncation(path: str) -> str | None:
    """For RIFF/WAVE files: a message when the data chunk is shorter than the header declares, else None.

    libsndfile silently reads what is there, so a half-copied WAV would otherwise pass as a shorter clip.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            endian = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk = fh.read(8)
                cid, csize = chunk[:4], struct.unpack(endian + "I", chunk[4:8])[0]
                if cid == b"data":
                    if csize == 0xFFFFFFFF:  # streamed WAV with unknown length
                        return None
                    have = size - pos - 8
                    if have < csize:
                        return f"data chunk declares {csize} bytes, file holds {have}"
                    return None
                pos += 8 + csize + (csize & 1)
            return "no data chunk before end of file"
    except OSError:
        return None


def _declared_frames(path: str):
    """(frames, rate) that a FLAC header (STREAMINFO) promises, or None (WAV lengths: wav_truncation)."""
    try:
        info = sf.info(path)
    except Exception:
        return None
    if info.format != "FLAC":
        return None
    return int(info.frames), int(info.samplerate)


def classify_read_error(exc: AudioError) -> AudioError:
    if exc.reason != "unreadable":
        return exc
    msg = exc.detail.lower()
    if "format not recognised" in msg or "format not recognized" in msg:
        return AudioError("not_audio", exc.detail)
    if any(w in msg for w in ("lost sync", "truncat", "unexpected end", "end of file", "premature")):
        return AudioError("truncated", exc.detail)
    return exc


#: containers whose PCM_16 int16 reads equal their float reads * 32768 (checked for every sample value by
#: tests/shard_builder/test_decode_fastpath.py)
_FAST_FORMATS = frozenset({"WAV", "WAVEX", "FLAC"})
#: the fast path takes a clip only when its mean square is at least this (in int16 units squared): 4x the
#: general path's silence threshold, so rounding never decides between "encoded" and "silent"
_FAST_MIN_MEAN_SQUARE = (2 * SILENCE_RMS * 32768.0) ** 2


def _decode_pcm16_fast(path: str, sample_rate: int, fmt: str, max_seconds: float | None) -> Decoded | None:
    """The general path's result for a clean mono PCM-16 file at ``sample_rate``, or None (then use the general path).

    Equivalence, step by step: soundfile's float32 read of PCM-16 is int16 / 32768 exactly; ``to_mono`` of one
    channel, the ``max_seconds`` cut and the (no-op) resample keep the values; ints are finite; ``to_pcm16`` maps
    i / 32768 back to i. So the PCM, its sha1 and the encoded bytes are identical.
    """
    try:
        with sf.SoundFile(path) as f:
            if (f.format not in _FAST_FORMATS or f.subtype != "PCM_16" or f.channels != 1
                    or f.samplerate != sample_rate):
                return None
            declared = int(f.frames)
            pcm = f.read(dtype="int16", always_2d=False)
    except Exception:  # whatever went wrong, the general path names it
        return None
    if pcm.ndim != 1 or pcm.shape[0] != declared or declared == 0:
        return None  # short read (truncated stream) or no frames
    if max_seconds is not None and max_seconds > 0:
        pcm = pcm[: int(round(max_seconds * sample_rate))]
    n = int(pcm.shape[0])
    if n == 0:
        return None
    x = pcm.astype(np.float64)
    if float(np.dot(x, x)) / n < _FAST_MIN_MEAN_SQUARE:
        return None  # silent or close to it: check_wave decides
    pcm = np.ascontiguousarray(pcm)
    return Decoded(data=encode_audio(pcm, sample_rate, fmt), sha1=pcm_sha1(pcm), frames=n)


def decode_file(path: str, sample_rate: int, fmt: str, max_seconds: float | None) -> Decoded:
    """Decode, downmix, resample, validate and re-encode one file; raises AudioError(reason, detail)."""
    if not os.path.isfile(path):
        raise AudioError("missing", "file not found")
    if os.path.getsize(path) == 0:
        raise AudioError("empty", "0 bytes")
    trunc = wav_truncation(path)
    if trunc is not None:
        raise AudioError("truncated", trunc)
    fast = None if slow_paths() else _decode_pcm16_fast(path, sample_rate, fmt, max_seconds)
    if fast is not None:
        return fast
    return _decode_general(path, sample_rate, fmt, max_seconds)


def _decode_general(path: str, sample_rate: int, fmt: str, max_seconds: float | None) -> Decoded:
    """The general path of :func:`decode_file` (after the missing/empty/WAV-truncation checks): float decode,
    downmix, resample, validate, quantise, encode. Any input; the reference the fast path must match."""
    declared = _declared_frames(path)
    try:
        wave = load_audio(path, sample_rate, max_seconds)
    except AudioError as exc:
        exc = classify_read_error(exc)
        if exc.reason == "unreadable" and declared is not None and declared[0] > 0:
            # the header parsed and promised audio, the stream did not deliver it: cut short or corrupt
            raise AudioError("truncated", f"valid header, broken audio stream ({exc.detail})") from None
        raise exc from None
    if declared is not None and declared[0] > 0 and max_seconds is None:
        expected = int(declared[0] * sample_rate / declared[1])
        if wave.shape[0] + 2 < expected:
            raise AudioError("truncated", f"header declares {declared[0]} frames, "
                                          f"stream holds about {wave.shape[0] * declared[1] // sample_rate}")
    pcm = to_pcm16(wave)
    if not np.any(pcm):
        raise AudioError("silent", "all-silent after 16-bit quantisation")
    return Decoded(data=encode_audio(pcm, sample_rate, fmt), sha1=pcm_sha1(pcm), frames=int(pcm.shape[0]))


# ------------------------------------------------------------------------------ build worker side (build.py's pool)
#: seconds to sleep after each committed batch / shard; only for the interruption tests
_TEST_DELAY_ENV = "SHARD_BUILDER_TEST_DELAY"


def _atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _test_delay() -> None:
    delay = float(os.environ.get(_TEST_DELAY_ENV, "0") or 0)
    if delay > 0:
        time.sleep(delay)


def _init_worker(parent_pid: int) -> None:
    # one thread per worker process; torch (imported only when a file needs resampling) reads this at import
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    # a builder killed with -9 cannot stop its pool: its workers would wait on the task queue forever
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _decode_batch(task) -> tuple:
    """Worker: decode one batch and commit it to staging. Returns (batch index, number of records)."""
    b, paths, sample_rate, fmt, max_seconds, stage_dir = task
    stage_dir = Path(stage_dir)
    buf = io.BytesIO()
    metas = []
    for path in paths:
        try:
            d = decode_file(path, sample_rate, fmt, max_seconds)
        except AudioError as exc:
            metas.append({"ok": False, "reason": exc.reason, "detail": exc.detail})
            continue
        except Exception as exc:  # an unexpected decoder failure must not stop the build
            metas.append({"ok": False, "reason": "unreadable", "detail": f"{type(exc).__name__}: {exc}"})
            continue
        metas.append({"ok": True, "offset": buf.tell(), "length": len(d.data), "sha1": d.sha1, "frames": d.frames})
        buf.write(d.data)
    # No fsync: staging guards against killed processes (kill -9, preemption), whose writes the kernel keeps;
    # the recorded size catches a batch torn by a machine crash, and `verify` re-hashes every sample's audio.
    _atomic_write(stage_dir / f"batch-{b:06d}.bin", buf.getvalue(), fsync=False)
    commit = {"bin_bytes": buf.tell(), "records": metas}
    _atomic_write(stage_dir / f"batch-{b:06d}.json", json.dumps(commit).encode(), fsync=False)  # commit marker
    _test_delay()
    return b, len(paths)
