"""`python -m eval.detect` on the inputs users actually have: odd rates, channels, lengths, broken files, trees."""
import csv
import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from eval import detect


def tone(seconds, sr, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x


def run(args, capsys):
    rc = detect.main(["--quiet", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    (root / "a" / "b").mkdir(parents=True)
    sf.write(root / "stereo_44k.wav", tone(2.0, 44100, channels=2), 44100)
    sf.write(root / "a" / "short_0.1s.flac", tone(0.1, 16000), 16000)
    sf.write(root / "a" / "b" / "six_ch_22k.flac", tone(1.0, 22050, channels=6), 22050, subtype="PCM_24")
    sf.write(root / "a" / "b" / "float_8k.wav", tone(1.5, 8000).astype(np.float32), 8000, subtype="FLOAT")
    sf.write(root / "a" / "b" / "vorbis_48k.ogg", tone(1.2, 48000), 48000, format="OGG", subtype="VORBIS")
    sf.write(root / "a" / "b" / "mono_24k.mp3", tone(1.1, 24000), 24000, format="MP3", subtype="MPEG_LAYER_III")
    (root / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (root / "a" / "notes.txt").write_text("not audio, not picked up when walking a directory")
    return root


def test_directory_recursion_and_odd_inputs(tiny_model, tree, capsys):
    rc, out, err = run(["--model", tiny_model, tree], capsys)
    assert rc == 0
    lines = {json.loads(x)["path"].replace(str(tree) + "/", ""): json.loads(x) for x in out.splitlines()}
    assert set(lines) == {"stereo_44k.wav", "a/short_0.1s.flac", "a/b/six_ch_22k.flac", "a/b/float_8k.wav",
                          "a/b/vorbis_48k.ogg", "a/b/mono_24k.mp3", "a/broken.wav"}
    assert "unreadable" in lines["a/broken.wav"]["error"] and "score" not in lines["a/broken.wav"]
    for name, dur in (("stereo_44k.wav", 2.0), ("a/short_0.1s.flac", 0.1), ("a/b/six_ch_22k.flac", 1.0),
                      ("a/b/float_8k.wav", 1.5), ("a/b/vorbis_48k.ogg", 1.2), ("a/b/mono_24k.mp3", 1.1)):
        line = lines[name]
        assert set(line) >= {"path", "score", "p_spoof", "label", "duration"}, line
        assert math.isfinite(line["score"]) and 0.0 <= line["p_spoof"] <= 1.0
        assert line["p_spoof"] == pytest.approx(1 / (1 + math.exp(-line["score"])))
        assert line["label"] == ("spoof" if line["p_spoof"] >= 0.5 else "bonafide")
        assert line["duration"] == pytest.approx(dur, abs=1e-3)
    assert "1 error" in err


def test_score_matches_the_model_on_the_same_wave(tiny_model, tmp_path, capsys):
    """A 16 kHz mono file is scored exactly as the model scores its samples (no hidden preprocessing)."""
    import torch

    from trainer.model import Detector

    x = tone(1.3, 16000, seed=3).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    rc, out, _ = run(["--model", tiny_model, tmp_path / "x.wav"], capsys)
    model = Detector.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        ref = float(model(torch.from_numpy(x)[None], torch.tensor([x.size]))[0])
    assert json.loads(out)["score"] == pytest.approx(ref, abs=1e-5)


def test_long_file_is_chunked_with_bounded_reads(tiny_model, tmp_path, capsys, monkeypatch):
    sr = 8000
    with sf.SoundFile(tmp_path / "long.flac", "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for i in range(12):  # 120 s written a block at a time
            f.write(tone(10.0, sr, channels=2, seed=i))
    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *a, **k):
        reads.append(frames)
        return real_read(self, frames, *a, **k)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    rc, out, _ = run(["--model", tiny_model, "--chunk-seconds", "20", tmp_path / "long.flac"], capsys)
    line = json.loads(out)
    assert rc == 0 and line["chunks"] == 6 and line["duration"] == pytest.approx(120.0)
    assert reads and all(0 < r <= 20 * sr for r in reads)  # never the whole file at once


def test_exit_status_only_fails_when_nothing_was_scored(tiny_model, tmp_path, capsys):
    (tmp_path / "bad.flac").write_bytes(b"fLaC\x00 nope")
    sf.write(tmp_path / "silent.wav", np.zeros(8000), 16000)
    sf.write(tmp_path / "too_short.wav", tone(0.01, 16000), 16000)
    rc, out, _ = run(["--model", tiny_model, tmp_path / "bad.flac", tmp_path / "silent.wav",
                      tmp_path / "too_short.wav", tmp_path / "missing.wav"], capsys)
    errs = [json.loads(x)["error"] for x in out.splitlines()]
    assert rc == 1 and len(errs) == 4
    assert errs[0].startswith("unreadable") and errs[1].startswith("silent") and errs[2].startswith("too_short")
    assert "no such file" in errs[3]
    sf.write(tmp_path / "ok.wav", tone(0.5, 16000), 16000)
    rc, _, _ = run(["--model", tiny_model, tmp_path / "bad.flac", tmp_path / "ok.wav"], capsys)
    assert rc == 0
    rc, out, err = run(["--model", tmp_path, tmp_path / "ok.wav"], capsys)  # not a model: nothing can be scored
    assert rc != 0 and out == "" and "config.json" in err


def test_calibrated_threshold_csv_and_override(tmp_path, capsys):
    import torch

    from eval.calibration import fit_calibration
    from trainer.model import Detector, DetectorConfig

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    cal = fit_calibration(rng.normal(size=200) + y, y, p_spoof=0.05, c_miss=1.0, c_fa=10.0)
    torch.manual_seed(0)
    Detector(DetectorConfig(backbone="tiny")).save_pretrained(tmp_path / "m", extra={"calibration": cal})
    sf.write(tmp_path / "x.wav", tone(0.6, 16000), 16000)
    rc, out, err = run(["--model", tmp_path / "m", "--csv", tmp_path / "x.wav"], capsys)
    row = next(csv.DictReader(io.StringIO(out)))
    llr = cal["a"] * float(row["score"]) + cal["b"]
    assert float(row["llr"]) == pytest.approx(llr) and float(row["p_spoof"]) == pytest.approx(1 / (1 + math.exp(-llr)))
    assert "calibrated Bayes threshold" in err and f"{1 / (1 + 1 / 190):.4f}" in err
    rc, out, err = run(["--model", tmp_path / "m", "--threshold", "0.0", tmp_path / "x.wav"], capsys)
    assert json.loads(out)["label"] == "spoof" and "--threshold" in err
