"""trainer.augment: every step is shape/dtype preserving, finite, deterministic under the per-sample rng, label-blind,
and the identity when disabled; plus one physical check per step (SNR, spectrum, pitch, decay, codec error)."""
from __future__ import annotations

import inspect
import io
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from shardkit import synth_clip
from shard_builder.configuration import ConfigError
from trainer import augment
from trainer.augment import STEPS, AugmentConfig, Augmenter, available_codecs

SR = 16000
STEP_NAMES = [name for name, _ in STEPS]
CHEAP_CODECS = ["mulaw", "alaw"]  # the lossy coders have their own parametrised test (they cost ~10-40 ms per clip)


def section(cfg: AugmentConfig, step: str):
    """The config section of a step (``lnl`` -> ``cfg.rawboost.lnl``)."""
    for part in dict(STEPS)[step].split("."):
        cfg = getattr(cfg, part)
    return cfg


def all_on(cfg: AugmentConfig) -> AugmentConfig:
    for step in STEP_NAMES:
        section(cfg, step).prob = 1.0
    return cfg


def only(step: str, prob: float = 1.0, **params) -> AugmentConfig:
    """A config with exactly one step switched on (params set on that step's section)."""
    cfg = AugmentConfig(enabled=True)
    sec = section(cfg, step)
    sec.prob = prob
    if step == "codec" and "codecs" not in params:
        params["codecs"] = CHEAP_CODECS
    for k, v in params.items():
        setattr(sec, k, v)
    return cfg


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def waves():
    g = rng(123)
    return {
        "bonafide": synth_clip(g, "bonafide", "replay", 1.5),
        "spoof": synth_clip(g, "spoof", "replay", 1.5),
    }


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = signal.welch(x, fs=SR, nperseg=1024)
    sel = (f >= lo) & (f < hi)
    return 10 * np.log10(np.mean(p[sel]) + 1e-30)


# ---------------------------------------------------------------------------------------------------------------
# The common contract, for every step
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEP_NAMES)
def test_step_keeps_shape_dtype_finite_and_changes_the_wave(step, waves):
    aug = Augmenter(only(step), SR)
    assert aug.active
    for label, x in waves.items():
        for n in (x.size, 12345, 300):  # the trainer's crop length, an odd length, a very short clip
            xin = x[:n]
            y, applied = aug.augment_with_log(xin, rng(7))
            assert y.shape == xin.shape and y.dtype == np.float32, (step, label, n)
            assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
            assert [a.split("(")[0] for a in applied] == [step]
            assert not np.allclose(y, xin, atol=1e-4), f"{step} left the {label} wave unchanged"
            assert np.array_equal(xin, x[:n]), "the input array must not be modified in place"


@pytest.mark.parametrize("step", STEP_NAMES)
def test_step_is_deterministic_under_the_rng_seed(step, waves):
    aug = Augmenter(only(step), SR)
    x = waves["spoof"]
    a = aug(x, rng(11))
    b = Augmenter(only(step), SR)(x, rng(11))  # a fresh augmenter too (as in a restarted worker)
    c = pickle.loads(pickle.dumps(aug))(x, rng(11))  # and one shipped to a spawned DataLoader worker
    assert np.array_equal(a, b) and np.array_equal(a, c)
    outs = [aug(x, rng(s)) for s in (12, 13, 14)]
    assert not all(np.array_equal(a, o) for o in outs), f"{step}: different seeds should give different output"
    assert not np.array_equal(outs[0], outs[1]) or not np.array_equal(outs[1], outs[2])


@pytest.mark.parametrize("step", STEP_NAMES)
def test_step_treats_both_classes_alike(step, waves):
    """Same seed -> the same decision and the same parameters, whatever the content: never a label cue."""
    aug = Augmenter(only(step, prob=0.5), SR)
    logs_b = [aug.augment_with_log(waves["bonafide"], rng(s))[1] for s in range(24)]
    logs_s = [aug.augment_with_log(waves["spoof"], rng(s))[1] for s in range(24)]
    assert logs_b == logs_s
    fired = sum(bool(entry) for entry in logs_b)
    assert 4 <= fired <= 20  # prob 0.5 really fires some of the time, and not always


def test_the_augmenter_never_sees_a_label():
    params = list(inspect.signature(Augmenter.__call__).parameters)
    assert params == ["self", "wave", "rng"]


def test_disabled_is_the_identity(waves):
    everything = all_on(AugmentConfig(enabled=False))
    x = waves["bonafide"]
    aug = Augmenter(everything, SR)
    assert not aug.active
    assert aug(x, rng(0)) is x
    enabled_but_zero = Augmenter(AugmentConfig(enabled=True), SR)
    assert not enabled_but_zero.active
    assert np.array_equal(enabled_but_zero(x, rng(0)), x)
    never = Augmenter(only("noise", prob=0.0), SR)
    assert np.array_equal(never(x, rng(0)), x)


def test_steps_draw_from_independent_streams(waves):
    """Switching one step on does not change what another step does to the same sample (clean recipe A/B)."""
    x = waves["spoof"]
    alone = Augmenter(only("noise", prob=0.5), SR)
    cfg = only("noise", prob=0.5)
    cfg.gain.prob = 0.5
    with_gain = Augmenter(cfg, SR)
    for s in range(12):
        a = [e for e in alone.augment_with_log(x, rng(s))[1] if e.startswith("noise")]
        b = [e for e in with_gain.augment_with_log(x, rng(s))[1] if e.startswith("noise")]
        assert a == b


def test_full_chain_and_max_ops(waves):
    cfg = all_on(AugmentConfig(enabled=True, max_ops=2))
    cfg.codec.codecs = CHEAP_CODECS
    aug = Augmenter(cfg, SR)
    x = waves["bonafide"]
    seen = set()
    for s in range(10):
        y, applied = aug.augment_with_log(x, rng(s))
        assert len(applied) == 2 and y.shape == x.shape and np.all(np.isfinite(y))
        names = [a.split("(")[0] for a in applied]
        assert names == sorted(names, key=STEP_NAMES.index)  # chain order kept
        seen.update(names)
    assert len(seen) >= 5
    cfg.max_ops = 0
    y, applied = Augmenter(cfg, SR).augment_with_log(x, rng(0))
    assert [a.split("(")[0] for a in applied] == STEP_NAMES


def test_rejects_bad_input_and_bad_config(waves):
    aug = Augmenter(only("gain"), SR)
    with pytest.raises(ValueError, match="mono"):
        aug(np.zeros((2, 100), np.float32), rng(0))
    assert aug(np.zeros(0, np.float32), rng(0)).size == 0
    silent = aug(np.zeros(1000, np.float32), rng(0))
    assert np.all(silent == 0)
    for step, key, value, match in [
        ("noise", "snr_db", [30.0, 5.0], "augment.noise.snr_db"),
        ("noise", "colors", ["purple"], "augment.noise.colors"),
        ("codec", "codecs", ["wma"], "augment.codec.codecs"),
        ("band_limit", "lowpass_hz", [2000.0, 9000.0], "augment.band_limit.lowpass_hz"),
        ("speed", "factors", [], "augment.speed.factors"),
        ("gain", "prob", 1.5, "augment.gain.prob"),
    ]:
        cfg = only(step)
        setattr(section(cfg, step), key, value)
        with pytest.raises(ConfigError, match=match.replace(".", r"\.")):
            Augmenter(cfg, SR)


# ---------------------------------------------------------------------------------------------------------------
# What each step physically does
# ---------------------------------------------------------------------------------------------------------------


def test_noise_hits_the_requested_snr_and_colour():
    x = tone(440.0, 2.0)
    for color in ("white", "pink", "brown", "blue"):
        aug = Augmenter(only("noise", snr_db=[10.0, 10.0], colors=[color]), SR)
        y = aug(x, rng(3))
        n = y.astype(np.float64) - x
        snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(n ** 2))
        assert abs(snr - 10.0) < 0.1, (color, snr)
        tilt = band_db(n, 100, 500) - band_db(n, 4000, 7000)  # low minus high band level
        expected = {"white": (-3, 3), "pink": (6, 20), "brown": (20, 45), "blue": (-20, -6)}[color]
        assert expected[0] < tilt < expected[1], (color, tilt)


def test_noise_from_a_directory_with_resampling_and_a_bad_file(tmp_path, caplog):
    g = rng(0)
    sf.write(tmp_path / "hum8k.wav", (0.2 * np.sin(2 * np.pi * 50 * np.arange(8000) / 8000)).astype(np.float32), 8000)
    sf.write(tmp_path / "babble.flac", (0.1 * g.standard_normal(3 * SR)).astype(np.float32), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not audio")
    aug = Augmenter(only("noise", noise_dir=str(tmp_path), file_prob=1.0, snr_db=[0.0, 0.0]), SR)
    x = tone(1000.0, 1.5)
    kinds = set()
    with caplog.at_level(logging.WARNING, logger="trainer.augment"):
        for s in range(12):
            y, applied = aug.augment_with_log(x, rng(s))
            assert y.shape == x.shape and np.all(np.isfinite(y))
            kinds.add(applied[0].split("(")[1].split(",")[0])
            assert np.array_equal(y, aug(x, rng(s)))  # deterministic, file reads included
    assert "file" in kinds
    assert "white" in kinds or "pink" in kinds or "brown" in kinds  # the broken file falls back to coloured noise
    assert any("broken.wav" in r.getMessage() for r in caplog.records)


def test_reverb_adds_a_decaying_tail():
    x = np.zeros(SR, np.float32)
    x[100] = 0.5
    aug = Augmenter(only("reverb", rt60=[0.4, 0.4], drr_db=[0.0, 0.0], predelay_ms=[5.0, 5.0]), SR)
    y = aug(x, rng(1)).astype(np.float64)
    assert np.argmax(np.abs(y)) == 100  # the direct path stays in place (no added delay)
    e = lambda a, b: np.sum(y[100 + int(a * SR): 100 + int(b * SR)] ** 2)  # noqa: E731
    early, late = e(0.01, 0.1), e(0.3, 0.39)
    assert early > 0 and late > 0
    # -60 dB at rt60 = 0.4 s: between the two windows (~0.29 s apart) the energy falls by ~40 dB
    drop = 10 * np.log10(early / late)
    assert 25 < drop < 60, drop
    speech = synth_clip(rng(2), "bonafide", "digital", 1.0)
    z = Augmenter(only("reverb"), SR)(speech, rng(5))
    assert abs(np.sqrt(np.mean(z ** 2)) / np.sqrt(np.mean(speech ** 2)) - 1) < 0.01  # level kept


def test_reverb_from_a_directory_of_impulse_responses(tmp_path, caplog):
    t = np.arange(int(0.3 * 8000)) / 8000
    rir = 0.05 * rng(0).standard_normal(t.size) * np.exp(-6.9 * t / 0.3)
    rir[:80] = 0.0
    rir[80] = 0.9  # the direct path after 10 ms of leading silence
    sf.write(tmp_path / "room8k.wav", rir.astype(np.float32), 8000)
    sf.write(tmp_path / "silent.flac", np.zeros(800, np.float32), SR)
    aug = Augmenter(only("reverb", rir_dir=str(tmp_path), file_prob=1.0), SR)
    x = np.zeros(SR // 2, np.float32)
    x[1000] = 0.5
    kinds = []
    with caplog.at_level(logging.WARNING, logger="trainer.augment"):
        for s in range(10):
            y, applied = aug.augment_with_log(x, rng(s))
            kinds.append(applied[0])
            assert y.shape == x.shape and np.array_equal(y, aug(x, rng(s)))
            if applied[0] == "reverb(file)":
                assert np.argmax(np.abs(y)) == 1000  # aligned on the direct path: no added delay
                assert np.sum(y[1100:3000] ** 2) > 0  # the tail
    assert "reverb(file)" in kinds and any(k.startswith("reverb(rt60=") for k in kinds)  # silent file: fallback
    assert any("silent.flac" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode,keep,cut", [
    ("lowpass", (100, 800), (2500, 7500)),
    ("highpass", (1500, 7000), (20, 120)),
    ("telephone", (500, 3000), (4500, 7800)),
])
def test_band_limit_removes_the_band(mode, keep, cut):
    x = (0.2 * rng(0).standard_normal(2 * SR)).astype(np.float32)
    aug = Augmenter(only("band_limit", modes=[mode], lowpass_hz=[1000.0, 1000.0], highpass_hz=[700.0, 700.0]), SR)
    y, applied = aug.augment_with_log(x, rng(1))
    assert applied[0].startswith(f"band_limit({mode}")
    assert band_db(y, *keep) - band_db(x, *keep) > -3
    assert band_db(y, *cut) - band_db(x, *cut) < -25


def test_speed_changes_tempo_and_pitch_and_keeps_the_length():
    x = tone(440.0, 1.0)
    for factor in (0.9, 1.1):
        y = Augmenter(only("speed", factors=[factor]), SR)(x, rng(0))
        assert y.shape == x.shape
        f, p = signal.welch(y, fs=SR, nperseg=4096)
        assert abs(f[np.argmax(p)] - 440.0 * factor) < 8, (factor, f[np.argmax(p)])
    # speeding up makes the clip shorter than the crop: it is repeat-padded, not zero-padded
    y = Augmenter(only("speed", factors=[1.1]), SR)(x, rng(0))
    assert np.sqrt(np.mean(y[-1000:] ** 2)) > 0.1


def test_gain_scales_and_never_clips():
    x = tone(300.0, 0.5, amp=0.2)
    y = Augmenter(only("gain", db=[6.0, 6.0]), SR)(x, rng(0))
    assert np.allclose(y, x * 10 ** (6 / 20), atol=1e-6)
    loud = Augmenter(only("gain", db=[20.0, 20.0]), SR)(x, rng(0))
    assert np.isclose(np.max(np.abs(loud)), 1.0, atol=1e-6)  # peak-limited rather than hard clipped


def test_every_available_codec_round_trips(waves):
    codecs = available_codecs(SR)
    # libsndfile always has G.711; the lossy coders depend on the build (this project's wheels carry them)
    assert {"mulaw", "alaw"} <= set(codecs)
    x = waves["bonafide"]
    for codec in codecs:
        aug = Augmenter(only("codec", codecs=[codec], quality=[0.5, 0.5]), SR)
        y, applied = aug.augment_with_log(x, rng(4))
        assert applied[0].startswith(f"codec({codec}")
        assert y.shape == x.shape and y.dtype == np.float32
        err = np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x ** 2))
        assert 1e-4 < err < 1.2, (codec, err)  # really coded, and still the same signal (loosely: delays exist)
        assert np.array_equal(y, aug(x, rng(4))), codec


def test_lossy_codecs_are_there_in_this_build():
    assert {"mp3", "vorbis", "opus"} <= set(available_codecs(SR)), sf.available_subtypes("OGG")


def test_unavailable_codec_is_left_out_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(augment, "_WARNED", set())
    sr = 22050  # Ogg Opus only takes 8/12/16/24/48 kHz: the probe fails for real
    cfg = only("codec", codecs=["opus", "mulaw"])
    with caplog.at_level(logging.WARNING, logger="trainer.augment"):
        aug = Augmenter(cfg, sr)
        Augmenter(cfg, sr)
    warnings = [r for r in caplog.records if "opus" in r.getMessage()]
    assert len(warnings) == 1 and "22050" in warnings[0].getMessage()
    x = tone(500.0, 0.5)
    for s in range(4):
        y, applied = aug.augment_with_log(x, rng(s))
        assert applied == ["codec(mulaw)"] and y.shape == x.shape


def test_mulaw_matches_an_independent_libsndfile_round_trip():
    x = tone(700.0, 0.5)
    y = Augmenter(only("codec", codecs=["mulaw"]), SR)(x, rng(0))
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="ULAW")
    buf.seek(0)
    ref, _ = sf.read(buf, dtype="float32")
    assert np.array_equal(y, ref)


def test_rawboost_filters_match_the_reference_formulas():
    from trainer.augment import _bandstop_fir, _centered_fir

    for taps, f1, f2 in [(11, 100.0, 300.0), (101, 7000.0, 7999.999), (51, 0.001, 500.0)]:
        ours = _bandstop_fir(taps, f1, f2, SR)
        ref = signal.firwin(taps, [f1, f2], window="hamming", fs=SR)
        assert np.allclose(ours, ref, atol=1e-10)
    g = rng(0)
    x = g.standard_normal(2000)
    for taps in (37, 38):
        b = g.standard_normal(taps)
        n = len(b) + 1  # RawBoost filterFIR: zero-pad, lfilter, drop the group delay
        ref = signal.lfilter(b, 1, np.pad(x, (0, n)))[int(n / 2):int(len(x) + n - n / 2)]
        assert np.allclose(_centered_fir(x, b)[: len(ref)], ref[: len(x)], atol=1e-9)


def test_rawboost_ssi_snr_and_isd_sparsity():
    x = tone(440.0, 1.0)
    y = Augmenter(only("ssi", snr_db=[20.0, 20.0]), SR)(x, rng(2)).astype(np.float64)
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((y - x) ** 2))
    assert abs(snr - 20.0) < 0.1
    y = Augmenter(only("isd", p=10.0), SR)(x, rng(2))
    changed = np.mean(~np.isclose(y, x, atol=1e-7))
    assert 0 < changed <= 0.10


# ---------------------------------------------------------------------------------------------------------------
# Recipe fragments (configs/recipes/*.yaml) are valid against the trainer's schema
# ---------------------------------------------------------------------------------------------------------------

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_fragments_load_onto_the_training_configs(recipe):
    from omegaconf import OmegaConf

    from shard_builder.configuration import load_config
    from trainer.config import TrainConfig

    frag = OmegaConf.load(recipe)
    demo = recipe.parents[1] / "demo" / "train.yaml"
    cfg = load_config(TrainConfig, [demo, recipe], ["output_dir=/tmp/x", "data.shards=/tmp/y"])
    aug = Augmenter(cfg.augment, cfg.data.sample_rate)  # also validates the augment section
    if frag.get("augment", {}).get("enabled"):
        assert aug.active
        x = synth_clip(rng(0), "bonafide", "replay", 1.0)
        assert aug(x, rng(1)).shape == x.shape
