"""One source file -> the bytes a shard stores, or the reason it cannot be used.

Runs in the build's worker processes. Every failure becomes :class:`AudioError` with one of the reasons counted in
``build_report.json``: ``missing``, ``empty`` (0 bytes), ``not_audio`` (no format soundfile recognises),
``truncated`` (WAV data chunk shorter than its header says; FLAC/MP3 decoder losing sync), ``unreadable`` (other
decode errors), ``no_frames``, ``non_finite`` (NaN/inf samples), ``silent`` (all-silent).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .audio import AudioError, encode_audio, load_audio, pcm_sha1, to_pcm16


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


def decode_file(path: str, sample_rate: int, fmt: str, max_seconds: float | None) -> Decoded:
    """Decode, downmix, resample, validate and re-encode one file; raises AudioError(reason, detail)."""
    if not os.path.isfile(path):
        raise AudioError("missing", "file not found")
    if os.path.getsize(path) == 0:
        raise AudioError("empty", "0 bytes")
    trunc = wav_truncation(path)
    if trunc is not None:
        raise AudioError("truncated", trunc)
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
