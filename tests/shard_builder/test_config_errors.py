"""Config and corpus-description errors stop the build before anything is written, naming the key or file:line;
a malformed protocol line among good ones is skipped, logged and counted in the build report instead."""
import subprocess
import sys

import numpy as np
import pytest

import kit
from shard_builder.build import build_shards
from shard_builder.config import BuildConfig, CorpusEntry
from shard_builder.configuration import ConfigError, load_config
from shard_builder.corpora import prepare_records
from shard_builder.corpora.common import LineProblems


def build(tmp_path, entries, **top):
    out = tmp_path / "out"
    cfg_path = kit.write_config(tmp_path / "cfg.yaml", out, entries, **top)
    cfg = load_config(BuildConfig, cfg_path)
    return build_shards(cfg)


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


def _sources(e):
    return {r.source for r in prepare_records(CorpusEntry(**e), "corpora[0]")}


@pytest.mark.parametrize("make, proto, lineno, line, needle", [
    (kit.asvspoof2019, "protocols/ASVspoof2019.LA.cm.train.trn.txt", 3, "LA_0080 LA_T_1000002 - bonafide",
     "expected 5 columns"),
    (kit.asvspoof2019, "protocols/ASVspoof2019.LA.cm.train.trn.txt", 2, "LA_0080 LA_T_1000002 - - genuine",
     "'bonafide' or 'spoof'"),
    (kit.asvspoof2021_pa, "keys/PA/CM/trial_metadata.txt", 5, "PA_0001 PA_E_1000004 R1 M2 d1 - - - - maybe notrim",
     "column 10"),
    (kit.asvspoof2021_la, "keys/LA/CM/trial_metadata.txt", 2, "LA_0001 LA_E_9000001 alaw", "at least 6 columns"),
    (kit.asvspoof2021_la, "keys/LA/CM/trial_metadata.txt", 3, "LA_0002 XX_E_9000002 alaw ita_tx - bonafide x y",
     "not an LA_/PA_/DF_ trial"),
    (kit.pyara, "pyara.tsv", 4, "audio/p2.wav\t2\tspk2", "'fake' must be 0 or 1"),
    (kit.pyara, "pyara.tsv", 3, "audio/p1.wav\t1", "expected 3 tab-separated fields"),
    (kit.pyara, "pyara.tsv", 5, "\t1\tspk0", "empty 'path'"),
    (kit.manifest, "manifest.csv", 4, "clips/m2.wav,maybe,s2,ru,", "neither bona fide nor spoof"),
    (kit.manifest, "manifest.csv", 2, "clips/m0.wav,real", "expected 5 fields"),
    (kit.manifest, "manifest.csv", 3, ",real,s1,ru,", "missing 'path'"),
    (kit.mailabs, "ru_RU/by_book/female/anna/book1/metadata.csv", 2, "|Some text.|some text",
     "expected 'id|text|normalized'"),
])
def test_malformed_protocol_line_is_skipped_and_reported(tmp_path, make, proto, lineno, line, needle):
    e = corpus(make, tmp_path)
    path = tmp_path / "c" / proto
    before = _sources(e)
    _break_line(path, lineno, line)
    after = _sources(e)
    assert len(after) == len(before) - 1 and after < before  # only the broken line's record is gone
    report = build(tmp_path, [e])
    c = report["corpora"]["x"]
    assert c["bad_protocol_lines"] == 1 and report["totals"]["bad_protocol_lines"] == 1
    [bad] = c["bad_protocol_line_list"]
    assert (bad["file"], bad["line"]) == (str(path), lineno) and needle in bad["reason"]
    assert c["found"] == c["written"] == len(after)  # every other record made it into the shards


def test_malformed_jsonl_manifest_line_is_skipped_and_the_report_is_reproducible(tmp_path):
    e = kit.manifest(tmp_path / "c", np.random.default_rng(0), jsonl=True)
    e["name"] = "x"
    path = tmp_path / "c" / "manifest.jsonl"
    _break_line(path, 3, '{"path": "clips/m2.wav", "label": ')
    _break_line(path, 5, '["clips/m4.wav", "fake"]')
    _break_line(path, 6, '{"path": "clips/m5.wav", "label": "fake", "split": "holdout"}')
    report = build(tmp_path, [e])
    c = report["corpora"]["x"]
    assert [(b["file"], b["line"]) for b in c["bad_protocol_line_list"]] == [(str(path), n) for n in (3, 5, 6)]
    assert c["bad_protocol_line_list"][0]["reason"].startswith("not a JSON object (")
    assert c["bad_protocol_line_list"][2]["reason"] == "split 'holdout' is not one of train/val/test (or dev/eval)"
    assert c["bad_protocol_lines"] == 3 and c["written"] == 3
    # the same inputs built again from scratch give the same report
    (tmp_path / "out" / "build_report.json").unlink()
    assert build(tmp_path, [e]) == report


def test_non_utf8_lines_are_skipped_and_reported(tmp_path):
    a19 = corpus(kit.asvspoof2019, tmp_path / "a")
    man = dict(kit.manifest(tmp_path / "m" / "c", np.random.default_rng(1)), name="m")  # rng 1: no duplicates
    p19 = tmp_path / "a" / "c" / "protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    pman = tmp_path / "m" / "c" / "manifest.csv"
    for p, lineno in ((p19, 2), (pman, 3)):
        lines = p.read_bytes().split(b"\n")
        lines[lineno - 1] = lines[lineno - 1].replace(b"LA_T", b"LA_\xff").replace(b"clips", b"cl\xe9ps")
        p.write_bytes(b"\n".join(lines))
    report = build(tmp_path, [a19, man])
    for name, p, lineno, written in (("x", p19, 2, 7), ("m", pman, 3, 5)):
        c = report["corpora"][name]
        assert c["bad_protocol_line_list"] == [{"file": str(p), "line": lineno, "reason": "line is not valid UTF-8",
                                                "text": c["bad_protocol_line_list"][0]["text"]}]
        assert "\\x" in c["bad_protocol_line_list"][0]["text"]  # the bad bytes are shown, escaped
        assert c["written"] == written
    assert report["totals"]["bad_protocol_lines"] == 2


def test_listed_bad_lines_are_capped_but_counted_exactly(tmp_path):
    e = corpus(kit.manifest, tmp_path)
    path = tmp_path / "c" / "manifest.csv"
    with open(path, "a") as fh:
        fh.write("".join(f"clips/m{k % 6}.wav,maybe,s0,ru,\n" for k in range(LineProblems.LIST_CAP + 50)))
    problems = LineProblems("x")
    records = prepare_records(CorpusEntry(**e), "corpora[0]", problems)
    assert len(records) == 6
    assert problems.count == LineProblems.LIST_CAP + 50 and len(problems.items) == LineProblems.LIST_CAP
    assert [i["line"] for i in problems.items] == list(range(8, 8 + LineProblems.LIST_CAP))


@pytest.mark.parametrize("make, proto, first, bad", [
    (kit.asvspoof2019, "protocols/ASVspoof2019.LA.cm.train.trn.txt", 1, "LA_0079 LA_T_1000000 bonafide"),
    (kit.asvspoof2021_la, "keys/LA/CM/trial_metadata.txt", 1, "LA_0001 LA_T_1000000 - - bonafide"),
    (kit.pyara, "pyara.tsv", 2, "audio/p0.wav,0,spk0"),
    (kit.manifest, "manifest.csv", 2, "clips/m0.wav\tfake\ts0\tru\t"),
])
def test_a_protocol_with_no_usable_line_is_a_config_error(tmp_path, make, proto, first, bad):
    """Every line malformed is the wrong file or the wrong adapter, not a few damaged lines: stop before writing."""
    e = corpus(make, tmp_path)
    path = tmp_path / "c" / proto
    lines = path.read_text().rstrip("\n").split("\n")
    path.write_text("\n".join(lines[:first - 1] + [bad] * (len(lines) - first + 1)) + "\n")
    with pytest.raises(ConfigError, match="every data line is malformed") as exc:
        build(tmp_path, [e])
    assert f"{path}:{first}: " in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_mailabs_with_no_usable_metadata_line_is_a_config_error(tmp_path):
    e = corpus(kit.mailabs, tmp_path)
    metas = sorted((tmp_path / "c").rglob("metadata.csv"))
    for m in metas:
        m.write_text("not a metadata line/at all\n")
    with pytest.raises(ConfigError, match="every data line is malformed") as exc:
        build(tmp_path, [e])
    assert f"{metas[0]}:1: " in str(exc.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, proto, text, needle", [
    (kit.manifest, "manifest.csv", "", "empty manifest"),
    (kit.manifest, "manifest.csv", "file,label\nclips/m0.wav,real\n", "header has no 'path' column"),
    (kit.pyara, "pyara.tsv", "path\tlabel\naudio/p0.wav\t0\n", "header has no 'fake' column"),
])
def test_file_level_protocol_problems_stay_fatal(tmp_path, make, proto, text, needle):
    e = corpus(make, tmp_path)
    path = tmp_path / "c" / proto
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle) as exc:
        build(tmp_path, [e])
    assert f"{path}:1: " in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_cli_summary_names_the_skipped_line(tmp_path):
    e = corpus(kit.pyara, tmp_path)
    path = tmp_path / "c" / "pyara.tsv"
    _break_line(path, 4, "audio/p2.wav\tmaybe\tspk2")
    cfg = kit.write_config(tmp_path / "cfg.yaml", tmp_path / "out", [e])
    proc = subprocess.run([sys.executable, "-m", "shard_builder", "build", "--config", str(cfg)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "malformed protocol lines skipped 1" in proc.stdout
    assert f"x: skipped 1 malformed protocol line(s), the first {path}:4: 'fake' must be 0 or 1" in proc.stdout
    assert f"{path}:4: 'fake' must be 0 or 1, got 'maybe'" in proc.stderr  # the warning, once
    assert proc.stderr.count(f"{path}:4:") == 1


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
