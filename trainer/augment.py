"""On-the-fly waveform augmentation for the training loader (issue 7, "recipe options").

Interface used by the data stream: ``Augmenter(cfg, sample_rate)(wave, rng) -> wave`` where ``wave`` is a float32
mono crop and ``rng`` a ``numpy.random.Generator`` seeded per sample from (seed, epoch, key). Every random choice
comes from ``rng`` (no global RNG), so augmentation is deterministic and resume stays exact. The augmenter never
sees the label: bona fide and spoof samples go through the same distribution of transforms, so an augmentation
can never become a label cue. The output has the input's length and dtype (float32).

Chain (fixed order, each step applied with its own probability):
``speed -> rawboost.lnl -> rawboost.isd -> rawboost.ssi -> reverb -> noise -> band_limit -> codec -> gain``
(source -> device -> room -> environment -> channel -> transmission -> level).

How the randomness is laid out: per call, ``rng`` first draws one uniform per step (does it fire?), one 63-bit
seed per step and one ordering key per step, always the same number of draws. Each step that fires gets its own
``Generator`` from its seed. So switching one step on or off, or changing its parameters, leaves the decisions and
parameters of every other step unchanged for the same sample - recipe comparisons differ in one thing only.

Costs (audio-seconds per second per core on 4 s clips) are measured by ``tests/bench/bench_augment.py`` and listed
in ``docs/recipes.md``. Codec round-trips (libsndfile: LAME/mpg123, Vorbis, Opus) are the expensive ones.
"""
from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from shard_builder.configuration import ConfigError


def _signal():
    """scipy.signal, imported on first use: it costs seconds at start-up in every training process."""
    from scipy import signal

    return signal

log = logging.getLogger(__name__)

__all__ = [
    "AugmentConfig", "SpeedConfig", "NotchFilterConfig", "LnLConfig", "ISDConfig", "SSIConfig", "RawBoostConfig",
    "ReverbConfig", "NoiseConfig", "BandLimitConfig", "CodecConfig", "GainConfig", "Augmenter", "STEPS",
    "CODECS", "available_codecs",
]

# ----------------------------------------------------------------------------------------------------------------
# Configuration (OmegaConf structured-config compatible: simple types, lists, nested dataclasses)
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class SpeedConfig:
    """Resampling-based speed perturbation (tempo and pitch change together, as in Kaldi's speed perturbation)."""

    prob: float = 0.0
    factors: List[float] = field(default_factory=lambda: [0.9, 0.95, 1.05, 1.1])  # >1 = faster / shorter


@dataclass
class NotchFilterConfig:
    """RawBoost's random multi-band notch filter (``genNotchCoeffs``); defaults are the RawBoost paper's."""

    n_bands: int = 5
    min_f: float = 20.0
    max_f: float = 8000.0
    min_bw: float = 100.0
    max_bw: float = 1000.0
    min_coeff: int = 10
    max_coeff: int = 100
    min_g: float = 0.0
    max_g: float = 0.0


@dataclass
class LnLConfig:
    """RawBoost 1: linear and non-linear convolutive noise (sum of notch-filtered powers x, x^2, ... x^n_f)."""

    prob: float = 0.0
    n_f: int = 5
    min_bias_lin_nonlin: float = 5.0
    max_bias_lin_nonlin: float = 20.0
    notch: NotchFilterConfig = field(default_factory=NotchFilterConfig)


@dataclass
class ISDConfig:
    """RawBoost 2: impulsive signal-dependent noise on up to ``p`` percent of the samples."""

    prob: float = 0.0
    p: float = 10.0
    g_sd: float = 2.0


@dataclass
class SSIConfig:
    """RawBoost 3: stationary signal-independent (notch-filtered, coloured) noise at a random SNR."""

    prob: float = 0.0
    snr_db: List[float] = field(default_factory=lambda: [10.0, 40.0])
    notch: NotchFilterConfig = field(default_factory=NotchFilterConfig)


@dataclass
class RawBoostConfig:
    lnl: LnLConfig = field(default_factory=LnLConfig)
    isd: ISDConfig = field(default_factory=ISDConfig)
    ssi: SSIConfig = field(default_factory=SSIConfig)


@dataclass
class ReverbConfig:
    """Simulated room: a direct path plus an exponentially decaying Gaussian tail with random RT60 and DRR."""

    prob: float = 0.0
    rt60: List[float] = field(default_factory=lambda: [0.2, 1.0])  # seconds, uniform
    drr_db: List[float] = field(default_factory=lambda: [0.0, 15.0])  # direct-to-reverberant energy ratio
    predelay_ms: List[float] = field(default_factory=lambda: [1.0, 20.0])  # direct path -> first reflection
    max_rir_seconds: float = 1.0
    rir_dir: Optional[str] = None  # measured / simulated RIR files (wav/flac...), searched recursively
    file_prob: float = 0.5  # with rir_dir: share of reverb draws that use a file instead of the synthetic RIR


@dataclass
class NoiseConfig:
    """Additive noise at a random SNR: coloured noise made on the fly, or segments of files under ``noise_dir``."""

    prob: float = 0.0
    snr_db: List[float] = field(default_factory=lambda: [5.0, 30.0])
    colors: List[str] = field(default_factory=lambda: ["white", "pink", "brown", "blue", "violet"])
    noise_dir: Optional[str] = None  # wav/flac/ogg/mp3 files, searched recursively
    file_prob: float = 0.5  # with noise_dir: share of noise draws taken from the files


@dataclass
class BandLimitConfig:
    """Random Butterworth low-pass / high-pass / band-pass, or the telephone band."""

    prob: float = 0.0
    modes: List[str] = field(default_factory=lambda: ["lowpass", "highpass", "bandpass", "telephone"])
    lowpass_hz: List[float] = field(default_factory=lambda: [2000.0, 7000.0])
    highpass_hz: List[float] = field(default_factory=lambda: [50.0, 500.0])
    telephone_hz: List[float] = field(default_factory=lambda: [300.0, 3400.0])
    order: int = 6


@dataclass
class CodecConfig:
    """Encode + decode round-trip through libsndfile, codec drawn from ``codecs`` (weighted by ``weights``)."""

    prob: float = 0.0
    codecs: List[str] = field(default_factory=lambda: ["mp3", "vorbis", "opus", "mulaw", "alaw"])
    weights: List[float] = field(default_factory=list)  # empty = uniform
    quality: List[float] = field(default_factory=lambda: [0.0, 0.9])  # libsndfile compression level, 1 = smallest


@dataclass
class GainConfig:
    prob: float = 0.0
    db: List[float] = field(default_factory=lambda: [-12.0, 6.0])


@dataclass
class AugmentConfig:
    """``enabled: false`` (the default) or every ``prob`` at 0 makes the augmenter the identity."""

    enabled: bool = False
    max_ops: int = 0  # at most this many steps per sample (a random subset of those that fired); 0 = no limit
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    rawboost: RawBoostConfig = field(default_factory=RawBoostConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    band_limit: BandLimitConfig = field(default_factory=BandLimitConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    gain: GainConfig = field(default_factory=GainConfig)

    def validate(self, sample_rate: int = 16000, prefix: str = "augment") -> None:
        _validate(self, sample_rate, prefix)


# The chain, in order: (name, dotted path of its config inside AugmentConfig).
STEPS: Tuple[Tuple[str, str], ...] = (
    ("speed", "speed"),
    ("lnl", "rawboost.lnl"),
    ("isd", "rawboost.isd"),
    ("ssi", "rawboost.ssi"),
    ("reverb", "reverb"),
    ("noise", "noise"),
    ("band_limit", "band_limit"),
    ("codec", "codec"),
    ("gain", "gain"),
)

# codec name -> (libsndfile format, subtype, takes a compression level)
CODECS: Dict[str, Tuple[str, str, bool]] = {
    "mp3": ("MP3", "MPEG_LAYER_III", True),
    "vorbis": ("OGG", "VORBIS", True),
    "opus": ("OGG", "OPUS", True),
    "mulaw": ("WAV", "ULAW", False),
    "alaw": ("WAV", "ALAW", False),
    "gsm": ("WAV", "GSM610", False),
    "g721": ("WAV", "G721_32", False),
    "adpcm": ("WAV", "IMA_ADPCM", False),
}

NOISE_COLORS: Dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0, "violet": -2.0}
BAND_MODES = ("lowpass", "highpass", "bandpass", "telephone")
AUDIO_FILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus")


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _validate(cfg: AugmentConfig, sr: int, prefix: str) -> None:
    def fail(key: str, msg: str):
        raise ConfigError(f"config key '{prefix}.{key}': {msg}")

    def check_range(key: str, values, lo=-math.inf, hi=math.inf):
        values = list(values)
        if len(values) != 2:
            fail(key, f"expected [min, max], got {values}")
        a, b = float(values[0]), float(values[1])
        if not (lo <= a <= b <= hi):
            fail(key, f"expected {lo} <= min <= max <= {hi}, got {values}")

    if cfg.max_ops < 0:
        fail("max_ops", "must be >= 0")
    for _, path in STEPS:
        p = _get(cfg, path).prob
        if not 0.0 <= float(p) <= 1.0:
            fail(f"{path}.prob", f"must be in [0, 1], got {p}")
    nyq = sr / 2
    if not cfg.speed.factors or any(not 0.5 <= float(f) <= 2.0 for f in cfg.speed.factors):
        fail("speed.factors", f"expected a non-empty list of factors in [0.5, 2], got {list(cfg.speed.factors)}")
    for path in ("rawboost.lnl.notch", "rawboost.ssi.notch"):
        n = _get(cfg, path)
        if n.n_bands < 1:
            fail(f"{path}.n_bands", "must be >= 1")
        check_range(f"{path}.min_f..max_f", [n.min_f, n.max_f], 0.0, nyq)
        check_range(f"{path}.min_bw..max_bw", [n.min_bw, n.max_bw], 0.0)
        if not 1 <= n.min_coeff <= n.max_coeff:
            fail(f"{path}.min_coeff", "expected 1 <= min_coeff <= max_coeff")
    if cfg.rawboost.lnl.n_f < 1:
        fail("rawboost.lnl.n_f", "must be >= 1")
    if not 0.0 <= cfg.rawboost.isd.p <= 100.0:
        fail("rawboost.isd.p", "a percentage in [0, 100]")
    check_range("rawboost.ssi.snr_db", cfg.rawboost.ssi.snr_db)
    check_range("reverb.rt60", cfg.reverb.rt60, 0.01, 10.0)
    check_range("reverb.drr_db", cfg.reverb.drr_db)
    check_range("reverb.predelay_ms", cfg.reverb.predelay_ms, 0.0, 1000.0)
    if cfg.reverb.max_rir_seconds <= 0:
        fail("reverb.max_rir_seconds", "must be > 0")
    if not 0.0 <= cfg.reverb.file_prob <= 1.0:
        fail("reverb.file_prob", "must be in [0, 1]")
    if cfg.reverb.rir_dir and not Path(cfg.reverb.rir_dir).is_dir():
        fail("reverb.rir_dir", f"not a directory: {cfg.reverb.rir_dir}")
    check_range("noise.snr_db", cfg.noise.snr_db)
    for c in cfg.noise.colors:
        if c not in NOISE_COLORS:
            fail("noise.colors", f"unknown colour {c!r}; choose from {sorted(NOISE_COLORS)}")
    if not cfg.noise.colors and not cfg.noise.noise_dir:
        fail("noise.colors", "empty, and no noise_dir: nothing to draw noise from")
    if not 0.0 <= cfg.noise.file_prob <= 1.0:
        fail("noise.file_prob", "must be in [0, 1]")
    if cfg.noise.noise_dir and not Path(cfg.noise.noise_dir).is_dir():
        fail("noise.noise_dir", f"not a directory: {cfg.noise.noise_dir}")
    bl = cfg.band_limit
    if not bl.modes:
        fail("band_limit.modes", "empty")
    for m in bl.modes:
        if m not in BAND_MODES:
            fail("band_limit.modes", f"unknown mode {m!r}; choose from {list(BAND_MODES)}")
    check_range("band_limit.lowpass_hz", bl.lowpass_hz, 1.0, nyq * 0.999)
    check_range("band_limit.highpass_hz", bl.highpass_hz, 1.0, nyq * 0.999)
    check_range("band_limit.telephone_hz", bl.telephone_hz, 1.0, nyq * 0.999)
    if not 1 <= bl.order <= 16:
        fail("band_limit.order", "must be in [1, 16]")
    cc = cfg.codec
    if not cc.codecs:
        fail("codec.codecs", "empty")
    for c in cc.codecs:
        if c not in CODECS:
            fail("codec.codecs", f"unknown codec {c!r}; choose from {sorted(CODECS)}")
    if cc.weights and (len(cc.weights) != len(cc.codecs) or any(w < 0 for w in cc.weights) or sum(cc.weights) <= 0):
        fail("codec.weights", "expected one non-negative weight per codec (or an empty list)")
    check_range("codec.quality", cc.quality, 0.0, 1.0)
    check_range("gain.db", cfg.gain.db, -60.0, 40.0)


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------

_WARNED: set = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(msg)


def _between(rng: np.random.Generator, a: float, b: float) -> float:
    """Uniform between ``a`` and ``b`` in either order (RawBoost's gain bias makes low > high)."""
    return float(a) + (float(b) - float(a)) * float(rng.random())


def _uniform(rng: np.random.Generator, bounds) -> float:
    return _between(rng, bounds[0], bounds[1])


def _fit_length(y: np.ndarray, n: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Return exactly ``n`` samples: crop (at a random offset when ``rng`` is given) or repeat-pad."""
    m = len(y)
    if m == n:
        return y
    if m > n:
        start = int(rng.integers(0, m - n + 1)) if rng is not None else 0
        return y[start:start + n]
    if m == 0:
        return np.zeros(n, dtype=y.dtype)
    return np.tile(y, -(-n // m))[:n]


def _peak_limit(y: np.ndarray) -> np.ndarray:
    """Scale down only when the peak exceeds full scale (RawBoost's ``normWav(x, 0)``)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y / peak if peak > 1.0 else y


def _power(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.dot(x, x)) / x.size if x.size else 0.0


_MIN_POWER = 1e-10  # SNRs are relative to max(signal power, this): digital silence still gets a quiet floor


def _bandstop_fir(numtaps: int, f1: float, f2: float, fs: float) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, [f1, f2], window="hamming", fs=fs)`` (a band-stop, DC-normalised FIR),
    written out because firwin's per-call overhead dominated RawBoost's cost (checked equal in the tests)."""
    nyq = fs / 2.0
    c1, c2 = f1 / nyq, f2 / nyq
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = c1 * np.sinc(c1 * m) + np.sinc(m) - c2 * np.sinc(c2 * m)
    if numtaps > 1:
        h *= 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(numtaps) / (numtaps - 1))
    return h / np.sum(h)


def _fir_sum(signals: List[np.ndarray], filters: List[np.ndarray]) -> np.ndarray:
    """``sum_k filterFIR(signals[k], filters[k])`` with RawBoost's delay compensation, by one FFT pass.

    ``filterFIR`` is a zero-padded ``lfilter`` trimmed by ``(len(b) + 1) // 2`` at the front; here each filter is
    circularly advanced by that delay, so one inverse FFT yields the sum directly (no wrap-around: nfft is at least
    the full convolution length)."""
    n = signals[0].size
    nfft = _next_fast_len(n + max(len(b) for b in filters))
    acc = None
    for x, b in zip(signals, filters):
        d = (len(b) + 1) // 2
        shifted = np.zeros(nfft)
        shifted[: len(b) - d] = b[d:]
        shifted[nfft - d:] = b[:d]
        term = np.fft.rfft(x, nfft) * np.fft.rfft(shifted)
        acc = term if acc is None else acc + term
    return np.fft.irfft(acc, nfft)[:n]


def _next_fast_len(n: int) -> int:
    from scipy.fft import next_fast_len

    return next_fast_len(int(n), real=True)


def _centered_fir(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RawBoost's ``filterFIR``: zero-padded lfilter, delay-compensated, same length as ``x``."""
    return _fir_sum([x], [b]) if len(x) else x


def _notch_coeffs(rng: np.random.Generator, n: NotchFilterConfig, min_g: float, max_g: float, fs: int) -> np.ndarray:
    """RawBoost ``genNotchCoeffs``: a cascade of random band-stop FIRs, normalised to a random gain."""
    b = np.ones(1)
    nyq = fs / 2
    for _ in range(int(n.n_bands)):
        fc = _between(rng, n.min_f, n.max_f)
        bw = _between(rng, n.min_bw, n.max_bw)
        c = int(_between(rng, n.min_coeff, n.max_coeff))
        if c % 2 == 0:
            c += 1
        f1 = max(fc - bw / 2, 1e-3)
        f2 = min(fc + bw / 2, nyq - 1e-3)
        if f2 <= f1:  # degenerate band from an extreme config: skip it
            continue
        b = np.convolve(_bandstop_fir(c, f1, f2, fs), b)
    g = _between(rng, min_g, max_g)
    h = np.fft.rfft(b, 1024)[:512]  # = scipy.signal.freqz(b, 1, worN=512)
    return (10.0 ** (g / 20.0)) * b / max(float(np.max(np.abs(h))), 1e-12)


def _codec_roundtrip(x: np.ndarray, sr: int, codec: str, quality: Optional[float]) -> np.ndarray:
    import soundfile as sf

    fmt, subtype, lossy_level = CODECS[codec]
    buf = io.BytesIO()
    kwargs = {}
    if lossy_level and quality is not None:
        kwargs["compression_level"] = min(float(quality), 0.99)  # LAME rejects 1.0
    sf.write(buf, np.clip(x, -1.0, 1.0).astype(np.float32, copy=False), sr, format=fmt, subtype=subtype, **kwargs)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32", always_2d=False)
    if y.ndim == 2:
        y = y.mean(axis=1)
    return y


_CODEC_PROBES: Dict[Tuple[str, int], Optional[str]] = {}


def _probe_codec(codec: str, sr: int) -> Optional[str]:
    """None when ``codec`` round-trips at ``sr`` in this libsndfile build, else the reason it does not."""
    key = (codec, sr)
    if key not in _CODEC_PROBES:
        import soundfile as sf

        fmt, subtype, _ = CODECS[codec]
        reason = None
        if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
            reason = f"libsndfile {getattr(sf, '__libsndfile_version__', '?')} has no {fmt}/{subtype}"
        else:
            t = np.arange(sr // 10) / sr
            probe = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            try:
                out = _codec_roundtrip(probe, sr, codec, 0.5)
                if out.size == 0 or not np.all(np.isfinite(out)):
                    reason = "round-trip returned no usable audio"
            except Exception as exc:  # LibsndfileError, RuntimeError...
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        _CODEC_PROBES[key] = reason
    return _CODEC_PROBES[key]


def available_codecs(sample_rate: int = 16000) -> List[str]:
    """Codec names from :data:`CODECS` that round-trip at ``sample_rate`` with this libsndfile."""
    return [c for c in CODECS if _probe_codec(c, sample_rate) is None]


class _AudioFiles:
    """The audio files under a directory (noise recordings, room impulse responses), read lazily and seeking.

    A file that cannot be read is logged once (with its path), remembered, and the caller falls back to the
    synthetic source; nothing is preloaded, so a large noise corpus costs no memory in each loader worker."""

    def __init__(self, root: str, sample_rate: int, what: str):
        self.sr, self.what = sample_rate, what
        self.paths = sorted(
            str(p) for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_FILE_EXTENSIONS
        )
        self._info: Dict[str, Tuple[int, int]] = {}
        self.bad: Dict[str, str] = {}
        if not self.paths:
            _warn_once(f"{what}:{root}", f"{what} {root}: no audio files; using the synthetic source instead")

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rng: np.random.Generator, n: Optional[int]) -> Optional[np.ndarray]:
        """A random file's segment of ``n`` samples at a random offset (repeat-padded), or, with ``n=None``, the
        whole file; mono, at the working rate. None when that file is unreadable."""
        import soundfile as sf

        path = self.paths[int(rng.integers(len(self.paths)))]
        offset_u = float(rng.random())  # drawn before any I/O, so the stream never depends on file outcomes
        if path in self.bad:
            return None
        try:
            if path not in self._info:
                info = sf.info(path)
                self._info[path] = (int(info.frames), int(info.samplerate))
            frames, src_sr = self._info[path]
            need = frames if n is None else min(frames, int(math.ceil(n * src_sr / self.sr)) + 1)
            start = int(offset_u * (frames - need))
            data, _ = sf.read(path, start=start, frames=need, dtype="float32", always_2d=True)
            seg = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if src_sr != self.sr:
                g = math.gcd(src_sr, self.sr)
                seg = _signal().resample_poly(seg, self.sr // g, src_sr // g)
            if seg.size == 0 or not np.all(np.isfinite(seg)) or not np.any(seg):
                raise ValueError("no usable audio frames (empty, silent or non-finite)")
        except Exception as exc:
            self.bad[path] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("augment: skipping unreadable %s file %s (%s)", self.what, path, self.bad[path])
            return None
        return seg if n is None else _fit_length(seg, n)


# ----------------------------------------------------------------------------------------------------------------
# The augmenter
# ----------------------------------------------------------------------------------------------------------------


class Augmenter:
    """Applies the configured chain to one float32 mono wave; deterministic given ``rng``; label-blind."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int = 16000):
        self.cfg = cfg
        self.sample_rate = int(sample_rate)
        cfg.validate(self.sample_rate)
        self._probs = np.array([float(_get(cfg, path).prob) for _, path in STEPS])
        self._active = bool(cfg.enabled) and bool(np.any(self._probs > 0))  # asked per sample: computed once
        self._ops: List[Callable] = [getattr(self, f"_{name}") for name, _ in STEPS]
        self._band_cache: Dict[Tuple, np.ndarray] = {}
        self._noise_shape_cache: Dict[Tuple[int, float], np.ndarray] = {}
        # Speed: one polyphase anti-aliasing filter per factor, designed once.
        self._speed_filters = []
        for f in cfg.speed.factors:
            ratio = Fraction(1.0 / float(f)).limit_denominator(100)  # output/input length
            up, down = ratio.numerator, ratio.denominator
            if up == down:
                self._speed_filters.append((float(f), 1, 1, None))
                continue
            max_rate = max(up, down)
            h = _signal().firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
            self._speed_filters.append((float(f), up, down, h))
        # Codecs: keep the ones this libsndfile build can round-trip; a one-time warning for the others.
        self._codecs: List[str] = []
        self._codec_weights: List[float] = []
        if self.active and cfg.codec.prob > 0:
            weights = list(cfg.codec.weights) or [1.0] * len(cfg.codec.codecs)
            for c, w in zip(cfg.codec.codecs, weights):
                reason = _probe_codec(c, self.sample_rate)
                if reason is None:
                    self._codecs.append(c)
                    self._codec_weights.append(float(w))
                else:
                    _warn_once(f"codec:{c}:{self.sample_rate}",
                               f"augment.codec: '{c}' is unavailable at {self.sample_rate} Hz ({reason}); "
                               "it is left out of the codec draw")
            if not self._codecs or sum(self._codec_weights) <= 0:
                _warn_once("codec:none", "augment.codec: no configured codec is available; codec step disabled")
        self._noise_files = (_AudioFiles(cfg.noise.noise_dir, self.sample_rate, "noise")
                             if self.active and cfg.noise.prob > 0 and cfg.noise.noise_dir else None)
        self._rir_files = (_AudioFiles(cfg.reverb.rir_dir, self.sample_rate, "room impulse response")
                           if self.active and cfg.reverb.prob > 0 and cfg.reverb.rir_dir else None)

    @property
    def active(self) -> bool:
        return self._active

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.augment_with_log(wave, rng)[0]

    def augment_with_log(self, wave: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, List[str]]:
        """Like ``__call__``, also returning what was applied (``"name(param=value,...)"``), for tests and logs."""
        if not self.active:
            return wave, []
        x = np.asarray(wave, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"Augmenter expects a mono 1-D wave, got shape {x.shape}")
        n_steps = len(STEPS)
        fire = rng.random(n_steps) < self._probs
        seeds = rng.integers(0, 2 ** 63, size=n_steps)
        order_keys = rng.random(n_steps)
        if x.size == 0 or not fire.any():
            return x, []
        idx = np.flatnonzero(fire)
        if self.cfg.max_ops and len(idx) > self.cfg.max_ops:
            idx = np.sort(idx[np.argsort(order_keys[idx], kind="stable")[: self.cfg.max_ops]])
        n = x.size
        y = x.astype(np.float64)
        applied: List[str] = []
        for i in idx:
            out = self._ops[i](y, np.random.default_rng(int(seeds[i])))
            if out is None:  # step skipped (e.g. no codec available)
                continue
            y, desc = out
            y = _fit_length(np.asarray(y, dtype=np.float64), n)
            applied.append(f"{STEPS[i][0]}({desc})")
        y = _peak_limit(y)
        if not np.all(np.isfinite(y)):  # never hand the model NaNs; should not happen, but be safe
            _warn_once("nonfinite", "augment: a step produced non-finite samples; returning the clean wave")
            return x, []
        return y.astype(np.float32), applied

    # -- steps: each takes (float64 wave, its own rng) and returns (wave, description) or None ------------------

    def _speed(self, x: np.ndarray, rng: np.random.Generator):
        f, up, down, h = self._speed_filters[int(rng.integers(len(self._speed_filters)))]
        if h is None:
            return x, f"factor={f:g}"
        y = _signal().resample_poly(x, up, down, window=h)
        return _fit_length(y, x.size, rng), f"factor={f:g}"

    def _lnl(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.rawboost.lnl
        min_g, max_g = c.notch.min_g, c.notch.max_g
        powers, filters = [], []
        xp = np.ones_like(x)
        for i in range(int(c.n_f)):
            if i == 1:  # RawBoost: the non-linear terms are attenuated by a random bias
                min_g, max_g = min_g - c.min_bias_lin_nonlin, max_g - c.max_bias_lin_nonlin
            xp = xp * x
            powers.append(xp)
            filters.append(_notch_coeffs(rng, c.notch, min_g, max_g, self.sample_rate))
        y = _fir_sum(powers, filters)
        y -= y.mean()
        return _peak_limit(y), f"n_f={c.n_f}"

    def _isd(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.rawboost.isd
        beta = _between(rng, 0.0, c.p)
        k = int(x.size * beta / 100.0)
        y = x.copy()
        if k > 0:
            pos = rng.choice(x.size, size=k, replace=False)
            f_r = (2 * rng.random(k) - 1) * (2 * rng.random(k) - 1)
            y[pos] = x[pos] + c.g_sd * x[pos] * f_r
        return _peak_limit(y), f"percent={beta:.2f}"

    def _ssi(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.rawboost.ssi
        noise = rng.standard_normal(x.size)
        noise = _centered_fir(noise, _notch_coeffs(rng, c.notch, c.notch.min_g, c.notch.max_g, self.sample_rate))
        snr = _uniform(rng, c.snr_db)
        norm_n = float(np.linalg.norm(noise))
        norm_x = math.sqrt(max(_power(x), _MIN_POWER) * x.size)
        if norm_n > 0:
            x = x + noise * (norm_x / norm_n / 10.0 ** (0.05 * snr))
        return x, f"snr={snr:.1f}"

    def _synthetic_rir(self, rng: np.random.Generator) -> Tuple[np.ndarray, str]:
        c, sr = self.cfg.reverb, self.sample_rate
        rt60 = _uniform(rng, c.rt60)
        drr = _uniform(rng, c.drr_db)
        pre = int(_uniform(rng, c.predelay_ms) * sr / 1000.0)
        tail_len = max(1, int(min(rt60, c.max_rir_seconds) * sr))
        t = np.arange(tail_len) / sr
        tail = rng.standard_normal(tail_len) * np.exp(-6.907755 * t / rt60)  # -60 dB at t = rt60
        tail *= math.sqrt(10.0 ** (-drr / 10.0) / max(float(np.dot(tail, tail)), 1e-12))  # direct path energy 1
        rir = np.zeros(pre + 1 + tail_len)
        rir[0] = 1.0
        rir[pre + 1:] = tail
        return rir, f"rt60={rt60:.2f},drr={drr:.1f}"

    def _reverb(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.reverb
        rir = None
        if self._rir_files is not None and len(self._rir_files) > 0 and rng.random() < c.file_prob:
            rir = self._rir_files.read(rng, None)
            if rir is not None:  # start at the direct path (no added delay), cut to max_rir_seconds
                rir = rir[int(np.argmax(np.abs(rir))):][: max(1, int(c.max_rir_seconds * self.sample_rate))]
                desc = "file"
        if rir is None:
            rir, desc = self._synthetic_rir(rng)
        y = _signal().oaconvolve(x, rir)[: x.size]
        py = _power(y)
        if py > 0:  # keep the level of the dry signal
            y *= math.sqrt(_power(x) / py)
        return y, desc

    def _coloured_noise(self, rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
        key = (n, beta)
        shape = self._noise_shape_cache.get(key)
        if shape is None:
            f = np.arange(n // 2 + 1, dtype=np.float64)
            f[0] = 1.0
            shape = f ** (-beta / 2.0)
            shape[0] = 0.0  # no DC
            shape /= math.sqrt(float(np.mean(shape ** 2)))
            if len(self._noise_shape_cache) > 64:
                self._noise_shape_cache.clear()
            self._noise_shape_cache[key] = shape
        spec = rng.standard_normal(2 * shape.size).view(np.complex128)  # re/im pairs, no temporaries
        spec *= shape
        return np.fft.irfft(spec, n)

    def _noise(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.noise
        snr = _uniform(rng, c.snr_db)
        use_file = self._noise_files is not None and len(self._noise_files) > 0 and (
            not c.colors or rng.random() < c.file_prob)
        noise, kind = None, None
        if use_file:
            noise = self._noise_files.read(rng, x.size)
            kind = "file"
        if noise is None:
            if not c.colors:
                return None
            color = c.colors[int(rng.integers(len(c.colors)))]
            noise = self._coloured_noise(rng, x.size, NOISE_COLORS[color])
            kind = color
        pn = _power(noise)
        if pn <= 0:
            return None
        gain = math.sqrt(max(_power(x), _MIN_POWER) / (pn * 10.0 ** (snr / 10.0)))
        return x + gain * noise, f"{kind},snr={snr:.1f}"

    def _band_sos(self, mode: str, lo: float, hi: float) -> np.ndarray:
        key = (mode, round(lo, -1), round(hi, -1))  # 10 Hz grid: a bounded cache of designed filters
        sos = self._band_cache.get(key)
        if sos is None:
            o, sr = self.cfg.band_limit.order, self.sample_rate
            if mode == "lowpass":
                sos = _signal().butter(o, key[2], btype="lowpass", fs=sr, output="sos")
            elif mode == "highpass":
                sos = _signal().butter(o, key[1], btype="highpass", fs=sr, output="sos")
            else:
                sos = _signal().butter(o, [key[1], key[2]], btype="bandpass", fs=sr, output="sos")  # o per edge
            if len(self._band_cache) > 4096:
                self._band_cache.clear()
            self._band_cache[key] = sos
        return sos

    def _band_limit(self, x: np.ndarray, rng: np.random.Generator):
        c = self.cfg.band_limit
        mode = c.modes[int(rng.integers(len(c.modes)))]
        lo = _uniform(rng, c.highpass_hz)
        hi = _uniform(rng, c.lowpass_hz)
        if mode == "telephone":
            lo, hi = float(c.telephone_hz[0]), float(c.telephone_hz[1])
        if mode == "bandpass" and lo >= hi:
            return x, f"bandpass=skip({lo:.0f}>={hi:.0f})"
        y = _signal().sosfilt(self._band_sos(mode, lo, hi), x)
        desc = {"lowpass": f"lowpass={hi:.0f}", "highpass": f"highpass={lo:.0f}"}.get(mode, f"{mode}={lo:.0f}-{hi:.0f}")
        return y, desc

    def _codec(self, x: np.ndarray, rng: np.random.Generator):
        if not self._codecs:
            return None
        w = np.asarray(self._codec_weights, dtype=np.float64)
        codec = self._codecs[int(rng.choice(len(self._codecs), p=w / w.sum()))]
        quality = _uniform(rng, self.cfg.codec.quality)
        try:
            y = _codec_roundtrip(_peak_limit(x), self.sample_rate, codec, quality)
        except Exception as exc:  # a libsndfile failure on one clip: leave the clip as it is, say so once
            _warn_once(f"codec-fail:{codec}", f"augment.codec: {codec} round-trip failed ({exc}); clip left as is")
            return None
        return y, f"{codec},q={quality:.2f}" if CODECS[codec][2] else codec

    def _gain(self, x: np.ndarray, rng: np.random.Generator):
        g = _uniform(rng, self.cfg.gain.db)
        return x * 10.0 ** (g / 20.0), f"db={g:.1f}"
