"""Each adapter on a tiny copy of its real layout: labels, attacks, speakers, languages, official splits."""
from collections import Counter

import numpy as np
import pytest

import kit
from shard_builder.config import CorpusEntry
from shard_builder.corpora import ADAPTERS, prepare_records


def run(make, tmp_path, **over):
    e = make(tmp_path / "c", np.random.default_rng(1))
    e.update(over)
    entry = CorpusEntry(name="x", **e)
    return prepare_records(entry, "corpora[0]")


def by_source(records):
    return {r.source: r for r in records}


def test_registry_names_match_contract():
    assert set(ADAPTERS) == {"asvspoof2019", "asvspoof2021", "for", "mailabs", "mlaad", "replaydf", "pyara",
                             "fleurs_hs", "manifest", "folders"}


def test_asvspoof2019(tmp_path):
    recs = run(kit.asvspoof2019, tmp_path)
    assert len(recs) == 8
    assert Counter(r.label for r in recs) == {"bonafide": 4, "spoof": 4}
    assert all(r.split == "train" for r in recs)  # from ASVspoof2019.LA.cm.train.trn.txt
    assert all(r.source.startswith("flac/LA_T_") for r in recs)
    assert all((r.attack is None) == (r.label == "bonafide") for r in recs)
    assert all(r.attack.startswith("A0") for r in recs if r.label == "spoof")
    assert {r.speaker for r in recs} == {"LA_0079", "LA_0080", "LA_0081", "LA_0082"}


def test_asvspoof2021_pa_key_default_location(tmp_path):
    recs = run(kit.asvspoof2021_pa, tmp_path)
    assert len(recs) == 24
    spoof = [r for r in recs if r.label == "spoof"]
    assert {r.attack for r in spoof} == {"r1-m1-s1-c4", "r1-m1-s3-c4"}
    assert all(r.attack is None for r in recs if r.label == "bonafide")
    assert all(r.split is None for r in recs)
    assert all(r.extra == {"trim": "notrim", "subset": "eval"} for r in recs)


def test_asvspoof2021_la(tmp_path):
    recs = run(kit.asvspoof2021_la, tmp_path)
    assert [(r.label, r.attack) for r in recs] == [("bonafide", None), ("spoof", "A07")] * 2
    assert recs[0].extra == {"trim": "notrim", "subset": "eval", "codec": "alaw"}


def test_asvspoof2021_cap_is_seeded_and_balanced(tmp_path):
    from shard_builder.split import cap_per_label

    recs = run(kit.asvspoof2021_pa, tmp_path)
    a, dropped = cap_per_label(recs, 5, seed=3, entry="pa")
    b, _ = cap_per_label(list(reversed(recs)), 5, seed=3, entry="pa")
    c, _ = cap_per_label(recs, 5, seed=4, entry="pa")
    assert dropped == 14 and Counter(r.label for r in a) == {"bonafide": 5, "spoof": 5}
    assert {r.source for r in a} == {r.source for r in b}  # independent of listing order
    assert {r.source for r in a} != {r.source for r in c}  # the seed matters


def test_for(tmp_path):
    recs = run(kit.for_rerec, tmp_path)
    assert len(recs) == 12
    for r in recs:
        split_dir, class_dir = r.source.split("/")[:2]
        assert r.split == {"training": "train", "validation": "val", "testing": "test"}[split_dir]
        assert r.label == {"real": "bonafide", "fake": "spoof"}[class_dir]


def test_mailabs(tmp_path):
    recs = run(kit.mailabs, tmp_path, languages=["uk"])
    assert len(recs) == 6 and {r.language for r in recs} == {"uk"}
    assert all(r.label == "bonafide" for r in recs)
    assert Counter(r.speaker for r in recs) == {"anna": 2, "ivan": 2, None: 2}  # mix/ has no speaker level
    assert all("/wavs/" in r.source for r in recs)


def test_mlaad(tmp_path):
    recs = run(kit.mlaad, tmp_path)  # kit asks for languages ru, uk; de is left out
    assert len(recs) == 8
    assert {r.language for r in recs} == {"ru", "uk"}
    assert {r.attack for r in recs} == {"xtts_v2", "vits"}
    assert all(r.label == "spoof" for r in recs)


def test_replaydf(tmp_path):
    recs = run(kit.replaydf, tmp_path)
    assert len(recs) == 8
    for r in recs:
        _, setup, cls, _ = r.source.split("/")
        assert r.label == ("spoof" if cls == "spoof" else "bonafide")
        assert r.extra == {"setup": setup}
        assert r.attack == (setup if cls == "spoof" else None)


def test_pyara(tmp_path):
    recs = by_source(run(kit.pyara, tmp_path))
    assert [recs[f"audio/p{k}.wav"].label for k in range(6)] == ["bonafide", "spoof"] * 3
    assert recs["audio/p4.wav"].speaker == "spk1" and recs["audio/p4.wav"].language == "ru"


def test_fleurs_hs(tmp_path):
    recs = run(kit.fleurs_hs, tmp_path)  # languages: [pl]
    assert len(recs) == 8 and {r.language for r in recs} == {"pl"}
    assert Counter((r.split, r.label) for r in recs) == {("train", "bonafide"): 2, ("train", "spoof"): 2,
                                                         ("test", "bonafide"): 2, ("test", "spoof"): 2}


@pytest.mark.parametrize("jsonl", [False, True])
def test_manifest(tmp_path, jsonl):
    e = kit.manifest(tmp_path / "c", np.random.default_rng(1), jsonl=jsonl)
    recs = by_source(prepare_records(CorpusEntry(name="x", **e), "corpora[0]"))
    assert [recs[f"clips/m{k}.wav"].label for k in range(6)] == ["bonafide", "spoof"] * 3
    assert recs["clips/m1.wav"].attack == "xtts" and recs["clips/m0.wav"].attack is None
    assert recs["clips/m2.wav"].speaker == "s2" and recs["clips/m2.wav"].language == "ru"


def test_folders(tmp_path):
    recs = by_source(run(kit.folders, tmp_path))
    assert len(recs) == 8  # unlabeled/u.wav is ignored
    assert recs["train/real/r0.wav"].label == "bonafide" and recs["train/real/r0.wav"].split == "train"
    assert recs["train/fake/tts_x/f1.wav"].attack == "tts_x" and recs["train/fake/tts_x/f1.wav"].label == "spoof"
    assert recs["human/h0.wav"].split is None and recs["synthetic/s0.wav"].label == "spoof"
    assert all(r.language == "ru" for r in recs.values())
