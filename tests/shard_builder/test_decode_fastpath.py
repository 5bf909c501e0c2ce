"""The int16 fast path of decode_file stores exactly what the general (float) path stores, and rejects the same files.

Shard bytes must not depend on which path decoded a file: resumed builds and rebuilds are byte-identical, and the
sha1 is the dedup key. Each case is decoded twice, once normally and once with the fast path switched off.
"""
import struct

import numpy as np
import pytest
import soundfile as sf

import kit
from shard_builder import decode
from shard_builder.audio import SLOW_PATHS_ENV
from shard_builder.decode import decode_file

SR = 16000


def outcome(path, fmt="flac", max_seconds=None, sr=SR):
    try:
        d = decode_file(str(path), sr, fmt, max_seconds)
    except decode.AudioError as exc:
        return ("error", exc.reason, exc.detail)
    return ("ok", d.data, d.sha1, d.frames)


def both(path, monkeypatch, **kw):
    """(outcome with the fast path, outcome with the general path only)."""
    fast = outcome(path, **kw)
    with monkeypatch.context() as m:
        m.setenv(SLOW_PATHS_ENV, "1")
        slow = outcome(path, **kw)
    return fast, slow


def write_pcm(path, pcm16, sr=SR, fmt=None):
    sf.write(str(path), np.asarray(pcm16, dtype=np.int16), sr, format=fmt or path.suffix[1:].upper(),
             subtype="PCM_16")
    return path


def all_values(rng):
    """Every int16 value once, shuffled, with full-scale and zero runs at the edges."""
    v = rng.permutation(np.arange(-32768, 32768, dtype=np.int32)).astype(np.int16)
    return np.concatenate([np.full(50, -32768, np.int16), v, np.full(50, 32767, np.int16), np.zeros(7, np.int16)])


@pytest.mark.parametrize("container", ["wav", "flac", "wavex"])
def test_every_int16_value_reads_identically_and_encodes_identically(tmp_path, monkeypatch, container):
    rng = np.random.default_rng(0)
    pcm = all_values(rng)
    suffix = "wav" if container == "wavex" else container
    path = write_pcm(tmp_path / f"all.{suffix}", pcm, fmt=container.upper())
    # the premise: soundfile's float read of PCM-16 is int16 / 32768, exactly, for every value
    as_float, _ = sf.read(str(path), dtype="float32")
    as_int, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(as_int, pcm)
    assert np.array_equal(as_float * np.float32(32768), as_int.astype(np.float32))
    # the fast path takes this file (otherwise the comparison below proves nothing)
    assert decode._decode_pcm16_fast(str(path), SR, "flac", None) is not None
    for fmt in ("flac", "wav"):
        for max_seconds in (None, 1.5, 0.0):
            fast, slow = both(path, monkeypatch, fmt=fmt, max_seconds=max_seconds)
            assert fast[0] == "ok" and fast == slow, (fmt, max_seconds)


@pytest.mark.parametrize("seconds", [1 / SR, 0.0101, 0.3, 2.0])
@pytest.mark.parametrize("src", ["wav", "flac"])
def test_speech_like_clips_identical(tmp_path, monkeypatch, seconds, src):
    rng = np.random.default_rng(int(seconds * 1000))
    path = tmp_path / f"c.{src}"
    sf.write(str(path), kit.clip(rng, seconds=max(seconds, 1 / SR)), SR, subtype="PCM_16")
    assert decode._decode_pcm16_fast(str(path), SR, "wav", None) is not None
    for fmt in ("flac", "wav"):
        fast, slow = both(path, monkeypatch, fmt=fmt)
        assert fast[0] == "ok" and fast == slow


def test_near_silence_threshold_same_decision(tmp_path, monkeypatch):
    """Around check_wave's RMS threshold the fast path defers; both paths agree on every clip."""
    n = 16000
    seen = set()
    for k, amp in enumerate([0, 1, 2, 3, 4]):
        for density in (1, 10, 100, 1000, 16000):
            pcm = np.zeros(n, np.int16)
            pcm[np.linspace(0, n - 1, density).astype(int)] = amp * (-1) ** np.arange(density)
            path = write_pcm(tmp_path / f"q{amp}_{density}.wav", pcm)
            for fmt in ("flac", "wav"):
                fast, slow = both(path, monkeypatch, fmt=fmt)
                assert fast == slow, (amp, density)
                seen.add(fast[:2] if fast[0] == "error" else "ok")
    assert ("error", "silent") in seen and "ok" in seen  # the grid spans both sides of the threshold


def test_bad_inputs_same_reasons(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    expected = kit.bad_files(tmp_path, rng)
    # more PCM-16 mono 16 kHz files that look like fast-path candidates but must be rejected
    write_pcm(tmp_path / "silent.flac", np.zeros(8000, np.int16))
    expected["silent.flac"] = "silent"
    write_pcm(tmp_path / "noframes.flac", np.zeros(0, np.int16))
    good = write_pcm(tmp_path / "_good.flac", (kit.clip(rng, 1.0) * 32767).astype(np.int16)).read_bytes()
    (tmp_path / "tail_cut.flac").write_bytes(good[: len(good) - 1000])  # loses only the last frames
    expected["tail_cut.flac"] = "truncated"
    wav = write_pcm(tmp_path / "_good.wav", (kit.clip(rng, 1.0) * 32767).astype(np.int16)).read_bytes()
    (tmp_path / "short_by_one.wav").write_bytes(wav[:-1])
    expected["short_by_one.wav"] = "truncated"
    lied = bytearray(wav)  # data chunk says fewer bytes than it holds: a valid, shorter clip for both paths
    pos = wav.index(b"data")
    lied[pos + 4:pos + 8] = struct.pack("<I", 2000)
    (tmp_path / "short_header.wav").write_bytes(bytes(lied))
    for name, reason in expected.items():
        for fmt in ("flac", "wav"):
            fast, slow = both(tmp_path / name, monkeypatch, fmt=fmt)
            assert fast == slow, name
            assert fast[:2] == ("error", reason), (name, fast[:3])
    for name in ("noframes.flac", "short_header.wav"):
        fast, slow = both(tmp_path / name, monkeypatch, fmt="wav")
        assert fast == slow, name


@pytest.mark.parametrize("case", ["stereo", "44k", "pcm24", "float"])
def test_other_sources_take_general_path(tmp_path, monkeypatch, case):
    """Files outside the fast path (not mono PCM-16 at the target rate) decode as before."""
    rng = np.random.default_rng(5)
    kw = {"stereo": dict(channels=2), "44k": dict(sr=44100), "pcm24": dict(subtype="PCM_24"),
          "float": dict(subtype="FLOAT")}[case]
    path = kit.write(tmp_path / "x.wav", rng, **kw)
    assert decode._decode_pcm16_fast(str(path), SR, "flac", None) is None
    if case == "44k":
        return  # resampling imports torch (slow); the fallback itself is what this case checks
    fast, slow = both(path, monkeypatch, fmt="flac")
    assert fast[0] == "ok" and fast == slow


def test_wav_encoder_matches_libsndfile(monkeypatch):
    """encode_audio's own WAV header writer gives libsndfile's bytes (any length, rate, sample values)."""
    from shard_builder.audio import SLOW_PATHS_ENV, encode_audio

    rng = np.random.default_rng(9)
    for n in (0, 1, 2, 3, 1001, 64000, 65537):
        for sr in (8000, 16000, 22050, 44100, 48000):
            pcm = rng.integers(-32768, 32768, n).astype(np.int16)
            fast = encode_audio(pcm, sr, "wav")
            with monkeypatch.context() as m:
                m.setenv(SLOW_PATHS_ENV, "1")
                slow = encode_audio(pcm, sr, "wav")
            assert fast == slow, (n, sr)
    pcm = all_values(rng)
    with monkeypatch.context() as m:
        m.setenv(SLOW_PATHS_ENV, "1")
        slow = encode_audio(pcm, SR, "wav")
    assert encode_audio(pcm, SR, "wav") == slow


def test_worker_side_stays_light(tmp_path):
    """A build worker (decode.py) imports neither torch (16 kHz sources need no resampling) nor the builder's config
    stack: each spawned worker would pay for it in CPU seconds."""
    import subprocess
    import sys
    from pathlib import Path

    path = kit.write(tmp_path / "a.wav", np.random.default_rng(1))
    code = ("import sys; from shard_builder.decode import _decode_batch; "
            f"_decode_batch((0, [{str(path)!r}], 16000, 'flac', None, {str(tmp_path)!r})); "
            "print(sorted(m for m in ('torch', 'torchaudio', 'omegaconf', 'shard_builder.build') if m in sys.modules))")
    repo = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    assert (tmp_path / "batch-000000.json").exists()
