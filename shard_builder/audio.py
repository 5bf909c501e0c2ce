"""Audio decoding and encoding, defined once for the whole project.

``load_audio`` turns whatever soundfile reads into float32 mono at the target rate (torchaudio resampling).
``encode_audio`` / ``decode_audio_bytes`` are the shard codecs (FLAC or 16-bit WAV).
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
from functools import lru_cache
from typing import Tuple

import numpy as np
import soundfile as sf

TARGET_SR = 16000
#: RMS (full scale = 1.0) below which :func:`check_wave` calls a wave silent
SILENCE_RMS = 1e-5
#: set to 1 to switch off the byte-identical fast paths (WAV header writer here, int16 decoding in
#: shard_builder.decode); only for benchmarks and equivalence tests
SLOW_PATHS_ENV = "SHARD_BUILDER_SLOW_PATHS"


def slow_paths() -> bool:
    return os.environ.get(SLOW_PATHS_ENV, "") not in ("", "0")


class AudioError(Exception):
    """A file that cannot be used as audio; ``reason`` is a short machine-friendly tag for reports."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@lru_cache(maxsize=32)
def _resampler(orig_sr: int, new_sr: int):
    import torchaudio.transforms as T

    return T.Resample(orig_sr, new_sr, dtype=__import__("torch").float32)


def resample(wave: np.ndarray, orig_sr: int, new_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a mono float32 array with torchaudio's windowed-sinc filter."""
    if orig_sr == new_sr:
        return wave
    import torch

    with torch.no_grad():
        out = _resampler(int(orig_sr), int(new_sr))(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    return out.numpy()


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,) float32, by averaging channels."""
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32)


def check_wave(wave: np.ndarray, *, min_rms: float = SILENCE_RMS) -> None:
    """Raise AudioError for waves that carry nothing useful (no frames, NaN/inf, digital silence)."""
    if wave.size == 0:
        raise AudioError("no_frames", "the file holds no audio frames")
    if not np.all(np.isfinite(wave)):
        raise AudioError("non_finite", "NaN or infinite samples")
    if float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < min_rms:
        raise AudioError("silent", "all-silent audio")


def read_audio(source, *, dtype: str = "float32") -> Tuple[np.ndarray, int]:
    """Read a path or file-like with soundfile; any failure becomes AudioError('unreadable')."""
    try:
        data, sr = sf.read(source, dtype=dtype, always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudioError("unreadable", msg) from exc
    return data, int(sr)


def load_audio(source, sample_rate: int = TARGET_SR, max_seconds: float | None = None) -> np.ndarray:
    """Decode any soundfile-readable source to float32 mono at ``sample_rate``, validated."""
    data, sr = read_audio(source)
    wave = to_mono(data)
    if wave.size == 0:
        raise AudioError("no_frames", "the file holds no audio frames")
    if not np.all(np.isfinite(wave)):
        raise AudioError("non_finite", "NaN or infinite samples")
    if max_seconds is not None and max_seconds > 0:
        wave = wave[: int(round(max_seconds * sr))]
    wave = resample(wave, sr, sample_rate)
    check_wave(wave)
    return wave


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    return (np.clip(wave, -1.0, 1.0 - 1.0 / 32768) * 32768.0).round().astype(np.int16)


def pcm_sha1(pcm16: np.ndarray) -> str:
    """sha1 of the decoded 16-bit PCM (little-endian): the dedup key and the shard's ``audio_sha1``."""
    return hashlib.sha1(np.ascontiguousarray(pcm16, dtype="<i2").tobytes()).hexdigest()


def encode_audio(pcm16: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """16-bit PCM -> FLAC or WAV bytes."""
    if fmt not in ("flac", "wav"):
        raise ValueError(f"audio format {fmt!r}: expected 'flac' or 'wav'")
    if (fmt == "wav" and isinstance(pcm16, np.ndarray) and pcm16.ndim == 1 and pcm16.dtype == np.int16
            and pcm16.size < _WAV_FAST_MAX_FRAMES and not slow_paths()):
        return _wav_pcm16_mono(pcm16, sample_rate)
    buf = io.BytesIO()
    sf.write(buf, pcm16, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


_WAV_FAST_MAX_FRAMES = 1 << 29  # 1 GiB of data: far from the 4 GiB RIFF limit, where libsndfile might differ


def _wav_pcm16_mono(pcm16: np.ndarray, sample_rate: int) -> bytes:
    """The 44-byte canonical header + little-endian samples: what libsndfile writes for mono PCM-16 WAV
    (tests/shard_builder/test_decode_fastpath.py compares the two byte for byte), without its I/O callbacks."""
    data = np.ascontiguousarray(pcm16, dtype="<i2").tobytes()
    sr = int(sample_rate)
    head = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, sr, 2 * sr, 2, 16,
                       b"data", len(data))
    return head + data


def wav_pcm16_layout(buf: bytes) -> Tuple[int, int, int] | None:
    """(sample_rate, data_offset, frames) of a mono 16-bit PCM RIFF/WAVE file held in ``buf`` (the layout the shard
    builder writes), or None for anything else (other formats, encodings, channel counts, damaged or truncated
    headers), which is then left to libsndfile. Samples are ``buf[data_offset:data_offset + 2 * frames]``."""
    if len(buf) < 12 or buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        return None
    pos, fmt_ok, sr = 12, False, 0
    while pos + 8 <= len(buf):
        cid, size = buf[pos:pos + 4], struct.unpack_from("<I", buf, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(buf):
                return None
            tag, channels, sr, _, _, bits = struct.unpack_from("<HHIIHH", buf, body)
            if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the real format is the sub-format GUID's first 2 bytes
                if size < 40:
                    return None
                tag = struct.unpack_from("<H", buf, body + 24)[0]
            fmt_ok = tag == 1 and channels == 1 and bits == 16 and sr > 0
        elif cid == b"data":
            if not fmt_ok or size % 2 or body + size > len(buf):
                return None
            return sr, body, size // 2
        pos = body + size + (size & 1)
    return None


def pcm16_to_float(raw: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1): x / 32768, bit-identical to libsndfile's float read of PCM-16."""
    return np.multiply(raw, np.float32(1.0 / 32768.0), dtype=np.float32)


def decode_audio_bytes(data: bytes) -> Tuple[np.ndarray, int]:
    """Shard member bytes (FLAC/WAV/...) -> (float32 mono, sample_rate). Raises AudioError on corrupt data."""
    arr, sr = read_audio(io.BytesIO(data))
    return to_mono(arr), sr
