"""Speech-like audio for the demo corpora: bona fide voices, vocoded spoofs and replayed recordings.

Nothing here is real speech, but each signal is built the way the real thing is, so that a detector has to learn
the artefacts a deepfake detector should learn, not a shortcut:

* ``speech``: source-filter synthesis. A glottal pulse train (Rosenberg pulse, per-speaker pitch, jitter, shimmer,
  breathiness) with an intonation contour (declination, pitch accents, drift) drives a cascade of time-varying
  formant resonators that move between vowel targets; fricatives and stop bursts are shaped noise; words are
  separated by pauses; a faint recording noise floor sits under everything.
* ``vocode_griffinlim``: the spoof of a neural-TTS front end + Griffin-Lim vocoder: the waveform is analysed into an
  80-band mel spectrogram, that spectrogram is smoothed and perturbed the way a predicted one is, and a waveform is
  re-synthesised from it with (fast) Griffin-Lim phase reconstruction.
* ``speech(..., vocoder="parametric")``: the spoof of a statistical-parametric TTS (WORLD-like): the same kind of
  parameter track rendered with an impulse excitation, a frame-quantised pitch, no jitter or shimmer, broadened
  formants and a mixed-excitation noise band.
* ``replay`` / ``make_channel``: a loudspeaker (band limit, resonance, soft saturation), a room (synthetic impulse
  response with early reflections and an exponential tail) and a microphone (band limit, noise). Bona fide takes in
  replay corpora pass through a milder *direct* channel (same kind of room and microphone, no loudspeaker), so that
  "re-recorded" is not by itself the spoof cue.

Speakers are drawn from one distribution for both classes of a corpus, so the label cannot be read from pitch or
vocal-tract length. Everything is numpy/scipy and deterministic for a given ``numpy.random.Generator``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import signal

# Male formant targets (F1..F4, Hz) of a few cardinal vowels; a speaker scales them by ``formant_scale``.
VOWELS = {
    "a": (730, 1090, 2440, 3400),
    "e": (530, 1840, 2480, 3500),
    "i": (280, 2250, 2900, 3600),
    "o": (570, 840, 2410, 3300),
    "u": (310, 870, 2240, 3300),
    "y": (400, 1500, 2300, 3400),  # a central vowel, as in Russian/Polish "y"
}
NASAL = (280, 1200, 2500, 3400)
BANDWIDTHS = (70.0, 100.0, 140.0, 200.0)
F5 = 4600.0  # fixed upper resonance that gives voiced speech some energy above 4 kHz

# Fricatives: (centre Hz, bandwidth Hz, level) of the noise spectrum; "h" is aspiration (filtered like a vowel).
FRICATIVES = {
    "s": (6200.0, 2500.0, 0.30),
    "sh": (3200.0, 1800.0, 0.30),
    "f": (4500.0, 5000.0, 0.12),
    "x": (1800.0, 1500.0, 0.18),
}


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice."""

    id: str
    gender: str  # "female" | "male"
    f0: float  # mean pitch, Hz
    formant_scale: float  # vocal-tract length factor (female ~1.17)
    jitter: float  # relative period perturbation per cycle
    shimmer: float  # relative amplitude perturbation per cycle
    breathiness: float  # aspiration noise level relative to the glottal pulse
    open_quotient: float  # fraction of the period the glottis is open
    rate: float  # speaking rate factor (1 = average)


def make_speaker(rng: np.random.Generator, speaker_id: str, gender: Optional[str] = None) -> Speaker:
    gender = gender or ("female" if rng.random() < 0.5 else "male")
    if gender == "female":
        f0 = float(np.clip(rng.normal(205.0, 22.0), 150.0, 280.0))
        scale = float(rng.uniform(1.12, 1.22))
    else:
        f0 = float(np.clip(rng.normal(115.0, 15.0), 80.0, 160.0))
        scale = float(rng.uniform(0.95, 1.05))
    return Speaker(
        id=speaker_id, gender=gender, f0=f0, formant_scale=scale,
        jitter=float(rng.uniform(0.004, 0.015)), shimmer=float(rng.uniform(0.02, 0.07)),
        breathiness=float(rng.uniform(0.02, 0.12)), open_quotient=float(rng.uniform(0.5, 0.7)),
        rate=float(rng.uniform(0.85, 1.15)),
    )


# --------------------------------------------------------------------------------------------------------------
# Utterance plan: frame-level parameter tracks


@dataclass
class _Plan:
    sr: int
    hop: int
    n: int  # samples
    f0: np.ndarray  # (frames,) Hz
    voice: np.ndarray  # (frames,) voiced amplitude
    noise: np.ndarray  # (frames,) noise amplitude
    formants: np.ndarray  # (frames, 4) Hz
    fric: np.ndarray  # (frames, 2) noise-spectrum centre / bandwidth (Hz)


def _frame_len(sr: int) -> int:
    return 1 << int(math.ceil(math.log2(0.032 * sr)))


def _plan(rng: np.random.Generator, spk: Speaker, seconds: float, sr: int) -> _Plan:
    hop = _frame_len(sr) // 2
    n = int(round(seconds * sr))
    n_frames = n // hop + 2
    frame_s = hop / sr

    # A list of segments (kind, seconds, target) covering the utterance: words of CV(C) syllables and pauses.
    segs: list = [("pause", rng.uniform(0.05, 0.3), None)]
    total = segs[0][1]
    vowel_names = list(VOWELS)
    stressed_centres = []
    while total < seconds:
        n_syll = int(rng.integers(1, 4))
        stress = int(rng.integers(0, n_syll))
        for s in range(n_syll):
            r = rng.random()
            if r < 0.3:
                segs.append(("fric", rng.uniform(0.06, 0.14) / spk.rate, rng.choice(list(FRICATIVES))))
            elif r < 0.5:
                segs.append(("stop", rng.uniform(0.04, 0.08) / spk.rate, None))
            elif r < 0.65:
                segs.append(("nasal", rng.uniform(0.05, 0.1) / spk.rate, None))
            dur = rng.uniform(0.08, 0.16) / spk.rate * (1.5 if s == stress else 1.0)
            total_before = sum(d for _, d, _ in segs)
            if s == stress:
                stressed_centres.append(total_before + dur / 2)
            segs.append(("vowel", dur, vowel_names[int(rng.integers(len(vowel_names)))]))
        if rng.random() < 0.3:
            segs.append(("fric", rng.uniform(0.05, 0.12) / spk.rate, rng.choice(list(FRICATIVES))))
        segs.append(("pause", rng.uniform(0.03, 0.08) if rng.random() < 0.6 else rng.uniform(0.15, 0.4), None))
        total = sum(d for _, d, _ in segs)

    voice = np.zeros(n_frames)
    noise = np.zeros(n_frames)
    fric = np.tile([5000.0, 3000.0], (n_frames, 1))
    anchors_t, anchors_f = [], []
    t0 = 0.0
    for kind, dur, target in segs:
        a, b = int(t0 / frame_s), max(int(t0 / frame_s) + 1, int((t0 + dur) / frame_s))
        if a >= n_frames:
            break
        b = min(b, n_frames)
        if kind == "vowel":
            voice[a:b] = rng.uniform(0.8, 1.0)
            anchors_t.append(t0 + dur / 2)
            anchors_f.append(VOWELS[target])
        elif kind == "nasal":
            voice[a:b] = 0.3
            anchors_t.append(t0 + dur / 2)
            anchors_f.append(NASAL)
        elif kind == "fric":
            c, bw, lvl = FRICATIVES[target]
            noise[a:b] = lvl * rng.uniform(0.7, 1.3)
            fric[a:b] = (c * min(spk.formant_scale, 1.1), bw)
        elif kind == "stop":
            burst = max(a, b - 1)  # closure, then a one-frame burst
            noise[burst:b] = 0.35
            fric[burst:b] = (2500.0 * spk.formant_scale, 4000.0)
        t0 += dur

    times = np.arange(n_frames) * frame_s
    if not anchors_t:
        anchors_t, anchors_f = [0.0], [VOWELS["a"]]
    anchors = np.asarray(anchors_f, dtype=np.float64) * spk.formant_scale
    formants = np.stack([np.interp(times, anchors_t, anchors[:, k]) for k in range(4)], axis=1)
    formants *= 1.0 + 0.02 * _smooth_noise(rng, (n_frames, 4), 6)

    # Intonation: declination, pitch accents on stressed syllables, slow drift, sometimes a final rise.
    dur_total = max(seconds, 1e-3)
    f0 = spk.f0 * rng.uniform(0.92, 1.08) * np.linspace(1.08, 0.9, n_frames)
    for c in stressed_centres:
        f0 *= 1.0 + rng.uniform(0.06, 0.2) * np.exp(-0.5 * ((times - c) / 0.09) ** 2)
    f0 *= 1.0 + 0.03 * _smooth_noise(rng, (n_frames,), 12)
    if rng.random() < 0.2:
        f0 *= 1.0 + 0.25 * np.clip((times - (dur_total - 0.4)) / 0.4, 0, 1)

    # Loudness: word-level variation; smoothing gives onsets/offsets ramps of ~20 ms.
    voice *= 1.0 + 0.25 * _smooth_noise(rng, (n_frames,), 20)
    voice = _smooth(voice, 2)
    noise = _smooth(noise, 1)
    return _Plan(sr=sr, hop=hop, n=n, f0=f0, voice=voice, noise=noise, formants=formants, fric=fric)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    k = np.hanning(width + 2)[1:-1]
    return np.convolve(x, k / k.sum(), mode="same")


def _smooth_noise(rng: np.random.Generator, shape, width: int) -> np.ndarray:
    """Zero-mean noise of unit-ish amplitude, low-passed along axis 0."""
    x = rng.standard_normal(shape)
    k = np.hanning(2 * width + 1)
    k /= k.sum()
    if x.ndim == 1:
        y = np.convolve(x, k, mode="same")
    else:
        y = np.stack([np.convolve(x[:, j], k, mode="same") for j in range(x.shape[1])], axis=1)
    return y / (y.std() + 1e-9) * 0.5


# --------------------------------------------------------------------------------------------------------------
# Excitation


def _glottal_source(rng: np.random.Generator, spk: Speaker, f0: np.ndarray, n: int, sr: int,
                    pulse: bool = False, quantise_hop: int = 0) -> np.ndarray:
    """Glottal flow derivative (Rosenberg pulses) following ``f0`` (per sample), with jitter and shimmer.

    ``pulse=True`` gives a vocoder's excitation instead: one impulse per period, no jitter or shimmer, and
    ``quantise_hop`` holds the pitch constant within frames of that many samples.
    """
    if quantise_hop:
        idx = (np.arange(n) // quantise_hop) * quantise_hop
        f0 = f0[np.minimum(idx, n - 1)]
    max_periods = int(n / sr * 500) + 8
    jitter = np.zeros(max_periods) if pulse else spk.jitter * rng.standard_normal(max_periods)
    shimmer = np.zeros(max_periods) if pulse else spk.shimmer * rng.standard_normal(max_periods)
    f0_list = np.maximum(f0, 40.0).tolist()
    starts, periods = [], []
    t, k = 0, 0
    while t < n:  # period boundaries only: scalar work, the pulses are drawn vectorised below
        p = max(int(round(sr / f0_list[t] * (1.0 + jitter[k]))), 4)
        starts.append(t)
        periods.append(p)
        t += p
        k += 1
    starts_a = np.asarray(starts)
    if pulse:
        out = np.zeros(n)
        out[starts_a] = 1.0
        return out
    periods_a = np.asarray(periods, dtype=np.float64)
    samples = np.arange(n)
    which = np.searchsorted(starts_a, samples, side="right") - 1
    tau = (samples - starts_a[which]).astype(np.float64)
    tp = np.maximum(np.floor(spk.open_quotient * 0.7 * periods_a), 2.0)[which]
    tn = np.maximum(np.floor(spk.open_quotient * 0.3 * periods_a), 1.0)[which]
    flow = np.where(tau < tp, 0.5 * (1.0 - np.cos(np.pi * tau / tp)),
                    np.where(tau < tp + tn, np.cos(0.5 * np.pi * (tau - tp) / tn), 0.0))
    flow *= (1.0 + shimmer[: len(starts)])[which]
    return np.diff(flow, prepend=0.0) * (sr / 16000.0) * 4.0  # lip radiation; level roughly rate-independent


# --------------------------------------------------------------------------------------------------------------
# Rendering (FFT-domain filtering with overlap-add, one filter per frame)


def _resonator_response(freqs: np.ndarray, bws: np.ndarray, sr: int, nfft: int) -> np.ndarray:
    """Complex response on rfft bins of cascaded unit-DC-gain 2-pole resonators; freqs/bws (frames, K).

    Real float32 arithmetic: 1 / (1 - c e^{-jw} + r^2 e^{-2jw}) = conj(D) / |D|^2, D = dr + j di.
    """
    om = 2 * np.pi * np.arange(nfft // 2 + 1, dtype=np.float32) / nfft
    cos1, sin1, cos2, sin2 = (np.cos(om)[None, :], np.sin(om)[None, :], np.cos(2 * om)[None, :],
                              np.sin(2 * om)[None, :])
    hr = np.ones((freqs.shape[0], om.size), dtype=np.float32)
    hi = np.zeros_like(hr)
    for k in range(freqs.shape[1]):
        f = np.minimum(freqs[:, k:k + 1], 0.45 * sr)
        r = np.exp(-np.pi * bws[:, k:k + 1] / sr).astype(np.float32)
        c = (2 * r * np.cos(2 * np.pi * f / sr)).astype(np.float32)
        r2 = r * r
        dr = 1 - c * cos1 + r2 * cos2
        di = c * sin1 - r2 * sin2
        g = (1 - c + r2) / (dr * dr + di * di)
        # h *= g * (dr - j di)
        hr, hi = g * (hr * dr + hi * di), g * (hi * dr - hr * di)
    return (hr + 1j * hi).astype(np.complex64)


def _render(plan: _Plan, voiced: np.ndarray, noise_src: np.ndarray, bw_scale: float = 1.0,
            mixed_excitation_hz: float = 0.0) -> np.ndarray:
    sr, hop, n = plan.sr, plan.hop, plan.n
    L = 2 * hop
    nfft = 2 * L  # room for the resonators' tails (L samples, >= 32 ms)
    n_frames = plan.f0.size
    pad = np.zeros(n_frames * hop + L, dtype=np.float32)
    win = np.hanning(L + 1)[:-1].astype(np.float32)  # periodic Hann: sums to 1 at 50 % overlap

    def frames(x: np.ndarray) -> np.ndarray:
        buf = pad.copy()
        buf[: x.size] = x[: buf.size]
        idx = np.arange(n_frames)[:, None] * hop + np.arange(L)[None, :]
        return buf[idx] * win

    freqs = np.concatenate([plan.formants, np.full((n_frames, 1), F5 * min(plan.formants[0, 0] / 730 + 0.5, 1.3))],
                           axis=1)
    bws = np.tile(np.asarray(BANDWIDTHS + (300.0,)), (n_frames, 1)) * bw_scale
    bws[:, :4] *= (freqs[:, :4] / np.asarray(VOWELS["a"])) ** 0.3
    h_voice = _resonator_response(freqs, bws, sr, nfft)

    bins = np.arange(nfft // 2 + 1) * sr / nfft
    c, bw = plan.fric[:, :1], plan.fric[:, 1:]
    h_noise = (np.exp(-0.5 * ((bins[None, :] - c) / (0.5 * bw)) ** 2) + 0.02).astype(np.float32)

    spec = np.fft.rfft(frames(voiced), nfft) * (h_voice * plan.voice[:, None].astype(np.float32))
    noise_gain = plan.noise[:, None].astype(np.float32) * h_noise
    if mixed_excitation_hz:
        # A vocoder's aperiodic band: above the cut-off voiced frames are noise shaped by the same envelope.
        hi = (1.0 / (1.0 + np.exp(-(bins - mixed_excitation_hz) / 300.0))).astype(np.float32)
        spec *= (1.0 - hi)[None, :]
        noise_gain = noise_gain + 0.6 * np.abs(h_voice) * plan.voice[:, None] * hi[None, :]
    spec += np.fft.rfft(frames(noise_src), nfft) * noise_gain
    out = _overlap_add(np.fft.irfft(spec, nfft), hop)  # the filter tails (nfft - L samples) are kept
    return out[:n]


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum frames (F, k*hop) placed every ``hop`` samples, with k vectorised adds instead of F."""
    n_frames, size = frames.shape
    k = size // hop
    chunks = np.zeros((n_frames + k - 1, hop), dtype=frames.dtype)
    parts = frames.reshape(n_frames, k, hop)
    for j in range(k):
        chunks[j:j + n_frames] += parts[:, j, :]
    return chunks.reshape(-1)


def _per_sample(track: np.ndarray, hop: int, n: int) -> np.ndarray:
    return np.interp(np.arange(n), np.arange(track.size) * hop + hop, track)


def normalise(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Peak-normalise to a random level (same distribution for every class)."""
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave / peak * rng.uniform(0.3, 0.9)).astype(np.float32)


def speech(rng: np.random.Generator, spk: Speaker, seconds: float, sr: int = 16000,
           vocoder: Optional[str] = None) -> np.ndarray:
    """One utterance of ``spk``, float32 mono at ``sr``, peak-normalised.

    ``vocoder=None`` is the bona fide voice (glottal source, natural perturbations). ``vocoder="parametric"``
    renders the same kind of parameter track with a WORLD-like vocoder (see the module docstring).
    """
    plan = _plan(rng, spk, seconds, sr)
    n = plan.n
    f0 = _per_sample(plan.f0, plan.hop, n)
    noise_src = rng.standard_normal(n)
    if vocoder is None:
        src = _glottal_source(rng, spk, f0, n, sr)
        # Aspiration: noise gated by the glottal cycle, stronger in breathy voices.
        asp = spk.breathiness * rng.standard_normal(n) * (0.5 + 0.5 * np.abs(src) / (np.abs(src).max() + 1e-9))
        wave = _render(plan, src + asp, noise_src)
    elif vocoder == "parametric":
        src = _glottal_source(rng, spk, f0, n, sr, pulse=True, quantise_hop=int(0.005 * sr))
        src = signal.lfilter([1.0], [1.0, -0.9], src)  # fixed spectral tilt of the vocoder's pulse
        wave = _render(plan, src, noise_src, bw_scale=1.8, mixed_excitation_hz=float(rng.uniform(3000, 4500)))
    else:
        raise ValueError(f"unknown vocoder {vocoder!r}")
    wave = _add_noise_floor(rng, wave, snr_db=float(rng.uniform(45, 60)))
    return normalise(wave, rng)


def _add_noise_floor(rng: np.random.Generator, wave: np.ndarray, snr_db: float) -> np.ndarray:
    """Faint pinkish recording noise ``snr_db`` below the speech RMS."""
    noise = signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(wave.size))
    rms_s = float(np.sqrt(np.mean(wave ** 2))) + 1e-12
    rms_n = float(np.sqrt(np.mean(noise ** 2))) + 1e-12
    return wave + noise * (rms_s / rms_n) * 10 ** (-snr_db / 20)


# --------------------------------------------------------------------------------------------------------------
# Griffin-Lim vocoder


def _stft(x: np.ndarray, nfft: int, hop: int) -> np.ndarray:
    win = np.hanning(nfft + 1)[:-1]
    pad = np.pad(x, (nfft // 2, nfft // 2 + nfft), mode="reflect" if x.size > nfft else "constant")
    n_frames = 1 + (x.size + nfft // 2 * 2 - nfft) // hop + 1
    idx = np.arange(n_frames)[:, None] * hop + np.arange(nfft)[None, :]
    return np.fft.rfft(pad[idx] * win, nfft)


def _istft(spec: np.ndarray, nfft: int, hop: int, n: int) -> np.ndarray:
    win = np.hanning(nfft + 1)[:-1]
    out = _overlap_add(np.fft.irfft(spec, nfft) * win, hop)
    norm = _overlap_add(np.tile(win ** 2, (spec.shape[0], 1)), hop)
    out /= np.maximum(norm, 1e-8)
    return out[nfft // 2:nfft // 2 + n]


def mel_filterbank(sr: int, nfft: int, n_mels: int, fmax: Optional[float] = None) -> np.ndarray:
    """HTK-style triangular mel filters, (n_mels, nfft//2+1)."""
    fmax = fmax or sr / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    pts = hz(np.linspace(mel(0.0), mel(fmax), n_mels + 2))
    bins = np.arange(nfft // 2 + 1) * sr / nfft
    fb = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        fb[m] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return fb


def vocode_griffinlim(wave: np.ndarray, sr: int, rng: np.random.Generator, n_mels: int = 80, n_iter: int = 16,
                      fmax: Optional[float] = 8000.0, model_error: float = 0.1) -> np.ndarray:
    """Mel analysis -> TTS-like perturbation of the mel -> Griffin-Lim re-synthesis (fast GL, momentum 0.99)."""
    nfft = 1 << int(math.ceil(math.log2(0.064 * sr)))
    hop = nfft // 4
    x = np.asarray(wave, dtype=np.float64)
    fb = mel_filterbank(sr, nfft, n_mels, min(fmax or sr / 2, sr / 2))
    mag = np.abs(_stft(x, nfft, hop))
    logmel = np.log(np.maximum(mag @ fb.T, 1e-5))
    # A predicted mel is smoother than an analysed one (onsets smeared over ~50 ms) and a little off.
    k = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    padded = np.pad(logmel, ((2, 2), (0, 0)), mode="edge")
    logmel = sum(k[i] * padded[i:i + logmel.shape[0]] for i in range(5))
    logmel += model_error * _smooth_noise(rng, logmel.shape, 3)
    target = np.maximum(np.exp(logmel) @ np.linalg.pinv(fb).T, 0.0)
    spec = target * np.exp(2j * np.pi * rng.random(target.shape))
    prev = np.zeros_like(spec)
    for _ in range(n_iter):
        rebuilt = _stft(_istft(spec, nfft, hop, x.size), nfft, hop)
        accel = rebuilt + 0.99 * (rebuilt - prev)
        prev = rebuilt
        spec = target * accel / np.maximum(np.abs(accel), 1e-12)
    out = _istft(spec, nfft, hop, x.size)
    return normalise(out, rng)


# --------------------------------------------------------------------------------------------------------------
# Channels: loudspeaker, room, microphone


@dataclass(frozen=True)
class Channel:
    """A recording chain. ``speaker_band`` is None for a direct (live) recording."""

    rt60: float
    speaker_band: Optional[tuple]  # (low Hz, high Hz) of the loudspeaker
    speaker_peak: float  # loudspeaker resonance, Hz
    drive: float  # soft-saturation drive of the loudspeaker (1 = clean)
    mic_band: tuple  # (low Hz, high Hz) of the microphone
    snr_db: float


def make_channel(rng: np.random.Generator, kind: str = "replay") -> Channel:
    """``replay``: loudspeaker + room + mic. ``direct``: the same kind of room and mic, a live talker, quieter room."""
    if kind == "replay":
        return Channel(
            rt60=float(rng.uniform(0.25, 0.7)),
            speaker_band=(float(rng.uniform(180, 450)), float(rng.uniform(3800, 6500))),
            speaker_peak=float(rng.uniform(900, 3000)), drive=float(rng.uniform(1.5, 4.0)),
            mic_band=(float(rng.uniform(50, 120)), float(rng.uniform(6500, 7600))),
            snr_db=float(rng.uniform(22, 32)),
        )
    if kind == "direct":
        return Channel(
            rt60=float(rng.uniform(0.12, 0.35)), speaker_band=None, speaker_peak=0.0, drive=1.0,
            mic_band=(float(rng.uniform(50, 120)), float(rng.uniform(6500, 7600))),
            snr_db=float(rng.uniform(28, 40)),
        )
    raise ValueError(f"unknown channel kind {kind!r}")


def room_impulse_response(rng: np.random.Generator, sr: int, rt60: float) -> np.ndarray:
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = signal.lfilter([0.5, 0.5], [1.0], tail)  # air absorption: highs decay faster
    tail[: int(0.004 * sr)] = 0.0
    rir = 0.25 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-9)
    rir[0] = 1.0
    for _ in range(6):  # early reflections
        d = int(rng.uniform(0.002, 0.03) * sr)
        if d < n:
            rir[d] += rng.uniform(-0.5, 0.5)
    return rir / np.sqrt(np.sum(rir ** 2))


def _sos_band(sr: int, low: float, high: float, order: int) -> np.ndarray:
    high = min(high, 0.45 * sr)
    return signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")


def replay(wave: np.ndarray, sr: int, rng: np.random.Generator, ch: Channel) -> np.ndarray:
    """Play ``wave`` through ``ch`` (loudspeaker if any -> room -> microphone + noise); peak-normalised."""
    x = np.asarray(wave, dtype=np.float64)
    if ch.speaker_band is not None:
        x = signal.sosfilt(_sos_band(sr, *ch.speaker_band, order=4), x)
        b, a = signal.iirpeak(min(ch.speaker_peak, 0.4 * sr), Q=2.0, fs=sr)
        x = x + 0.8 * signal.lfilter(b, a, x)
        peak = float(np.max(np.abs(x))) or 1.0
        x = np.tanh(ch.drive * x / peak) / np.tanh(ch.drive)
    rir = room_impulse_response(rng, sr, ch.rt60)
    x = signal.fftconvolve(x, rir)[: x.size]
    x = signal.sosfilt(_sos_band(sr, *ch.mic_band, order=2), x)
    x = _add_noise_floor(rng, x, ch.snr_db)
    return normalise(x, rng)
