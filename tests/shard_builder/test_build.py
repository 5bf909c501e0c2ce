"""A real build over every adapter's layout (2 worker processes): what lands in the shards and the report."""
import hashlib
import json
from collections import defaultdict
from pathlib import PurePosixPath

from conftest import read_split
from shard_builder.build import build_shards
from shard_builder.schema import SAMPLE_FIELDS, SPLITS


def all_samples(out):
    return {s: read_split(out, s) for s in SPLITS}


def test_output_layout_and_index(mixed):
    out = mixed["out"]
    assert (out / "build_report.json").is_file() and not (out / ".staging").exists()
    for split in SPLITS:
        index = json.loads((out / split / "index.json").read_text())
        assert index["split"] == split
        names = sorted(p.name for p in (out / split).glob("shard-*.tar"))
        assert names == [s["name"] for s in index["shards"]] == [f"shard-{i:06d}.tar" for i in range(len(names))]
        for s in index["shards"]:
            data = (out / split / s["name"]).read_bytes()
            assert s["bytes"] == len(data) and s["sha256"] == hashlib.sha256(data).hexdigest()
            assert s["samples"] <= 8  # shard.max_samples
        t = index["totals"]
        samples = read_split(out, split)
        assert t["samples"] == len(samples) == sum(s["samples"] for s in index["shards"])
        assert abs(t["seconds"] - sum(m["duration"] for m in samples)) < 1e-3
        assert sum(t["by_label"].values()) == sum(t["by_attack_type"].values()) == t["samples"]
    assert [e[0] for e in mixed["events"]][-1] == "write" and mixed["events"][-1][1] == mixed["events"][-1][2]


def test_labels_and_attack_types_end_to_end(mixed):
    samples = [m for ms in all_samples(mixed["out"]).values() for m in ms]
    by = {(m["corpus"], m["source"]): m for m in samples}
    for m in samples:
        assert set(SAMPLE_FIELDS) <= set(m)
        assert "." not in m["key"] and m["sample_rate"] == 16000
        assert abs(m["duration"] - 0.3) < 0.002  # (resampling: test_audio_options.py)
    types = {e.name: e.attack_type for e in mixed["cfg"].corpora}
    assert all(m["attack_type"] == types[m["corpus"]] for m in samples)  # bona fide samples carry it too
    # labels as the corpora's own metadata say
    proto = (mixed["root"] / "a19" / "protocols" / "ASVspoof2019.LA.cm.train.trn.txt").read_text().split("\n")
    for line in filter(None, proto):
        spk, utt, _, attack, label = line.split()
        m = by[("a19", f"flac/{utt}.flac")]
        assert (m["label"], m["speaker"], m["attack"]) == (label, spk, None if attack == "-" else attack)
    assert by[("forr", "validation/fake/file1_fake.wav")]["label"] == "spoof"
    assert by[("forr", "validation/real/file1_real.wav")]["attack_type"] == "replay"
    assert by[("rdf", "wav/setup_b/spoof/utt0_spoof.wav")]["attack"] == "setup_b"
    assert by[("rdf", "wav/setup_b/benign/utt0_benign.wav")]["setup"] == "setup_b"
    assert by[("rdf", "wav/setup_b/benign/utt0_benign.wav")]["label"] == "bonafide"
    assert by[("pyara", "audio/p3.wav")]["label"] == "spoof"
    assert by[("mlaad", "fake/uk/vits/vits_1.wav")]["attack"] == "vits"
    assert {m["language"] for m in samples if m["corpus"] == "mlaad"} == {"ru", "uk"}
    assert {m["language"] for m in samples if m["corpus"] == "fleurs"} == {"pl"}
    pa = [m for m in samples if m["corpus"] == "pa21"]
    assert sorted(m["label"] for m in pa) == ["bonafide"] * 8 + ["spoof"] * 8  # max_per_label: 8
    assert mixed["report"]["corpora"]["pa21"]["capped"] == 8


def test_splits_are_disjoint_by_speaker_and_group(mixed):
    splits_of = defaultdict(set)
    a19_splits = set()
    for split, ms in all_samples(mixed["out"]).items():
        for m in ms:
            if m["corpus"] == "a19":
                a19_splits.add(split)
            if m["corpus"] not in ("a19", "forr", "fleurs"):  # those three keep their official splits
                group = m["speaker"] or "file:" + PurePosixPath(m["source"]).stem
                splits_of[(m["corpus"], group)].add(split)
            if m["corpus"] == "forr":
                assert split == {"training": "train", "validation": "val", "testing": "test"}[m["source"].split("/")[0]]
            if m["corpus"] == "fleurs":
                assert split == m["source"].split("/")[1]
    assert all(len(s) == 1 for s in splits_of.values()), {k: v for k, v in splits_of.items() if len(v) > 1}
    assert a19_splits == {"train"}  # ASVspoof2019.LA.cm.train.trn.txt
    # the 16 PA trials of 6 speakers are spread over more than one split
    assert len({s for (c, _), v in splits_of.items() if c == "pa21" for s in v}) >= 2


def test_duplicates_removed_across_corpora_and_splits(mixed):
    rep = mixed["report"]
    assert rep["corpora"]["man"]["duplicates"] == 1 and rep["corpora"]["forr"]["duplicates"] == 1
    assert rep["corpora"]["mail"]["duplicates"] == 0
    kept = {(d["corpus"], d["source"]): (d["kept_corpus"], d["kept_source"]) for d in rep["duplicates"]}
    assert kept[("man", "clips/dup.wav")][0] == "mail"
    assert kept[("forr", "training/real/dup.wav")] == ("forr", "testing/real/file0_real.wav")
    shas = [m["audio_sha1"] for ms in all_samples(mixed["out"]).values() for m in ms]
    assert len(shas) == len(set(shas))


def test_bad_inputs_are_skipped_counted_and_listed(mixed):
    c = mixed["report"]["corpora"]["bad"]
    expected = mixed["expected_bad"]
    want = defaultdict(int)
    for reason in expected.values():
        want[reason] += 1
    assert c["skipped"] == dict(want)
    assert {f["source"]: f["reason"] for f in c["skipped_files"]} == {f"clips/{k}": r for k, r in expected.items()}
    assert c["found"] == len(expected) + 1 and c["written"] == 1  # the build went on
    assert mixed["report"]["totals"]["skipped"] == len(expected)


def test_rerunning_a_finished_build_changes_nothing(mixed):
    out = mixed["out"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    report = build_shards(mixed["cfg"])
    assert report == mixed["report"]
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after == before
