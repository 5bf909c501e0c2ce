"""Whatever soundfile reads goes in (rates, channels, sample types, codecs); FLAC or 16-bit WAV comes out."""
import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf

import kit
from conftest import read_split
from shard_builder.build import build_shards
from shard_builder.config import BuildConfig
from shard_builder.configuration import ConfigError, load_config
from shard_builder.schema import SPLITS
from shard_builder.verify import verify_shards


@pytest.fixture
def sources(tmp_path):
    rng = np.random.default_rng(3)
    d = tmp_path / "c" / "train" / "real"
    kit.write(d / "stereo_44k.wav", rng, seconds=0.5, sr=44100, channels=2)
    kit.write(d / "float_22k.wav", rng, seconds=0.5, sr=22050, subtype="FLOAT")
    kit.write(d / "int24_48k.flac", rng, seconds=0.5, sr=48000, subtype="PCM_24")
    sf.write(str(d / "vorbis.ogg"), kit.clip(rng, 0.5, 16000), 16000, format="OGG", subtype="VORBIS")
    sf.write(str(d / "lame.mp3"), kit.clip(rng, 0.5, 24000), 24000, format="MP3")
    kit.write(tmp_path / "c" / "train" / "fake" / "short_8k.wav", rng, seconds=0.1, sr=8000)
    return tmp_path


def test_wav_output_with_max_seconds(sources):
    out = sources / "out"
    entry = {"name": "mixed_inputs", "adapter": "folders", "root": str(sources / "c"), "attack_type": "digital"}
    cfg = load_config(BuildConfig, kit.write_config(sources / "cfg.yaml", out, [entry]),
                      ["audio.format=wav", "audio.max_seconds=0.25"])
    report = build_shards(cfg)
    assert report["totals"]["written"] == 6 and report["totals"]["skipped"] == 0
    samples = {m["source"]: m for m in read_split(out, "train")}
    assert {s: round(m["duration"], 3) for s, m in samples.items()} == {
        "train/real/stereo_44k.wav": 0.25, "train/real/float_22k.wav": 0.25, "train/real/int24_48k.flac": 0.25,
        "train/real/vorbis.ogg": 0.25, "train/real/lame.mp3": 0.25, "train/fake/short_8k.wav": 0.1}
    index = json.loads((out / "train" / "index.json").read_text())
    with tarfile.open(out / "train" / index["shards"][0]["name"]) as tar:
        for m in tar:
            if m.name.endswith(".wav"):
                info = sf.info(io.BytesIO(tar.extractfile(m).read()))
                assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
            else:
                assert m.name.endswith(".json")
    assert verify_shards(out).ok


def test_finished_build_of_another_config_is_not_overwritten(sources):
    out = sources / "out"
    entry = {"name": "a", "adapter": "folders", "root": str(sources / "c"), "attack_type": "digital"}
    build_shards(load_config(BuildConfig, kit.write_config(sources / "a.yaml", out, [entry])))
    before = {p: p.read_bytes() for s in SPLITS for p in (out / s).iterdir()}
    with pytest.raises(ConfigError, match="already holds a finished build"):
        build_shards(load_config(BuildConfig, kit.write_config(sources / "b.yaml", out, [entry], seed=1)))
    assert {p: p.read_bytes() for s in SPLITS for p in (out / s).iterdir()} == before


def test_shipped_reference_config_groups_the_eight_corpora():
    from pathlib import Path

    cfg_path = Path(__file__).resolve().parents[2] / "configs" / "shards.yaml"
    with pytest.raises(ConfigError, match=r"corpora\[0\]\.root"):  # roots are left for the user
        load_config(BuildConfig, cfg_path)
    cfg = load_config(BuildConfig, cfg_path, [f"corpora.{i}.root=/data/{i}" for i in range(9)]
                      + ["corpora.6.protocol=/data/keys/PA/CM/trial_metadata.txt"])
    groups = {e.name: e.attack_type for e in cfg.corpora}
    assert [n for n, g in groups.items() if g == "digital"] == [
        "mladdc", "slavic_mailabs", "slavic_mlaad", "pyara", "ru_phrases"]
    assert [n for n, g in groups.items() if g == "replay"] == [
        "replaydf", "asvspoof2021_pa", "fleurs_hs_pl", "for_rerec"]
    pa = next(e for e in cfg.corpora if e.name == "asvspoof2021_pa")
    assert pa.adapter == "asvspoof2021" and pa.max_per_label
