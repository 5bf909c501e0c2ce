"""Config and corpus-description errors stop the build before anything is written, naming the key or file:line."""
import subprocess
import sys

import numpy as np
import pytest

import kit
from shard_builder.build import build_shards
from shard_builder.config import BuildConfig
from shard_builder.configuration import ConfigError, load_config


def build(tmp_path, entries, **top):
    out = tmp_path / "out"
    cfg_path = kit.write_config(tmp_path / "cfg.yaml", out, entries, **top)
    cfg = load_config(BuildConfig, cfg_path)
    build_shards(cfg)


def corpus(make, tmp_path, **over):
    e = make(tmp_path / "c", np.random.default_rng(0))
    e["name"] = "x"
    e.update(over)
    return e


@pytest.mark.parametrize("top, needle", [
    ({"workerz": 2}, "workerz"),
    ({"workers": "many"}, "workers"),
    ({"audio": {"format": "mp3"}}, "audio.format"),
    ({"shard": {"max_byts": 5}}, "max_byts"),
    ({"splits": {"train": 0.5, "val": 0.1, "test": 0.1}}, "splits"),
])
def test_bad_top_level_keys(tmp_path, top, needle):
    e = corpus(kit.pyara, tmp_path)
    with pytest.raises(ConfigError, match=needle):
        build(tmp_path, [e], **top)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("over, needle", [
    ({"protocl": "x.tsv"}, "protocl"),
    ({"adapter": "pyarra"}, r"corpora\[0\]\.adapter"),
    ({"attack_type": "physical"}, r"corpora\[0\]\.attack_type"),
    ({"split": "dev"}, r"corpora\[0\]\.split"),
    ({"name": "with.dot"}, r"corpora\[0\]\.name"),
    ({"root": "/nonexistent/corpus"}, r"corpora\[0\]\.root.*/nonexistent/corpus"),
    ({"protocol": "missing.tsv"}, r"corpora\[0\]\.protocol.*missing\.tsv"),
])
def test_bad_corpus_entries(tmp_path, over, needle):
    e = corpus(kit.pyara, tmp_path, **over)
    with pytest.raises(ConfigError, match=needle):
        build(tmp_path, [e])
    assert not (tmp_path / "out").exists()


def test_missing_protocol_for_an_adapter_that_needs_one(tmp_path):
    e = corpus(kit.asvspoof2019, tmp_path)
    del e["protocol"]
    with pytest.raises(ConfigError, match=r"corpora\[0\]\.protocol.*needs a protocol"):
        build(tmp_path, [e])


def test_duplicate_entry_names(tmp_path):
    e = corpus(kit.pyara, tmp_path)
    with pytest.raises(ConfigError, match=r"corpora\[1\]\.name.*twice"):
        build(tmp_path, [e, dict(e)])


def _break_line(path, lineno, new):
    lines = path.read_text().split("\n")
    lines[lineno - 1] = new
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("make, proto, lineno, line, needle", [
    (kit.asvspoof2019, "protocols/ASVspoof2019.LA.cm.train.trn.txt", 3, "LA_0080 LA_T_1000002 - bonafide",
     "expected 5 columns"),
    (kit.asvspoof2019, "protocols/ASVspoof2019.LA.cm.train.trn.txt", 2, "LA_0080 LA_T_1000002 - - genuine",
     "'bonafide' or 'spoof'"),
    (kit.asvspoof2021_pa, "keys/PA/CM/trial_metadata.txt", 5, "PA_0001 PA_E_1000004 R1 M2 d1 - - - - maybe notrim",
     "column 10"),
    (kit.asvspoof2021_la, "keys/LA/CM/trial_metadata.txt", 2, "LA_0001 LA_E_9000001 alaw", "at least 6 columns"),
    (kit.pyara, "pyara.tsv", 4, "audio/p2.wav\t2\tspk2", "'fake' must be 0 or 1"),
    (kit.pyara, "pyara.tsv", 3, "audio/p1.wav\t1", "expected 3 tab-separated fields"),
    (kit.manifest, "manifest.csv", 4, "clips/m2.wav,maybe,s2,ru,", "neither bona fide nor spoof"),
    (kit.manifest, "manifest.csv", 2, "clips/m0.wav,real", "expected 5 fields"),
])
def test_malformed_protocol_line_names_file_and_line(tmp_path, make, proto, lineno, line, needle):
    e = corpus(make, tmp_path)
    path = tmp_path / "c" / proto
    _break_line(path, lineno, line)
    with pytest.raises(ConfigError, match=needle) as exc:
        build(tmp_path, [e])
    assert f"{path}:{lineno}" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_malformed_jsonl_manifest_line(tmp_path):
    e = kit.manifest(tmp_path / "c", np.random.default_rng(0), jsonl=True)
    e["name"] = "x"
    path = tmp_path / "c" / "manifest.jsonl"
    _break_line(path, 3, '{"path": "clips/m2.wav", "label": ')
    with pytest.raises(ConfigError, match=f"{path}:3: not a JSON object"):
        build(tmp_path, [e])


def test_error_in_a_later_entry_writes_nothing(tmp_path):
    good = corpus(kit.pyara, tmp_path)
    bad = dict(good, name="y", root=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"corpora\[1\]\.root"):
        build(tmp_path, [good, bad])
    assert not (tmp_path / "out").exists()


def test_cli_reports_config_errors_with_exit_code_2(tmp_path):
    e = corpus(kit.pyara, tmp_path)
    cfg = kit.write_config(tmp_path / "cfg.yaml", tmp_path / "out", [e])
    proc = subprocess.run([sys.executable, "-m", "shard_builder", "build", "--config", str(cfg), "corpora.0.bogus=1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "bogus" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
