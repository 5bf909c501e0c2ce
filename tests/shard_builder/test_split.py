"""The seeded choices of the build: split sizes follow the fractions, nothing depends on listing order."""
import random
from collections import Counter

from shard_builder.schema import Record
from shard_builder.split import assign_splits, dedupe, mix_order, sample_key

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def records(n_speakers=50, per=4):
    return [Record(path=f"/x/{s}_{k}.wav", source=f"{s}_{k}.wav", label="spoof" if k % 2 else "bonafide",
                   speaker=f"spk{s}") for s in range(n_speakers) for k in range(per)]


def test_fractions_by_sample_count_and_no_speaker_in_two_splits():
    recs = records()
    out = assign_splits([("e", r, None) for r in recs], FRACTIONS, seed=0)
    counts = Counter(out)
    assert abs(counts["train"] - 160) <= 4 and abs(counts["val"] - 20) <= 4 and abs(counts["test"] - 20) <= 4
    by_speaker = {}
    for r, s in zip(recs, out):
        by_speaker.setdefault(r.speaker, set()).add(s)
    assert all(len(v) == 1 for v in by_speaker.values())


def test_same_assignment_whatever_the_order_and_a_new_one_per_seed():
    recs = records()
    a = dict(zip((r.source for r in recs), assign_splits([("e", r, None) for r in recs], FRACTIONS, 0)))
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    b = dict(zip((r.source for r in shuffled), assign_splits([("e", r, None) for r in shuffled], FRACTIONS, 0)))
    c = dict(zip((r.source for r in recs), assign_splits([("e", r, None) for r in recs], FRACTIONS, 1)))
    assert a == b and a != c


def test_forced_and_official_splits_win():
    recs = records(4, 2)
    recs[0].split = "test"
    out = assign_splits([("e", recs[0], None), ("e", recs[1], "val")], FRACTIONS, 0)
    assert out == ["test", "val"]


def test_speakerless_records_group_by_file_name():
    recs = [Record(path=f"/x/{setup}/{c}/u{k}.wav", source=f"wav/{setup}/{c}/u{k}.wav", label="bonafide")
            for setup in ("a", "b", "c") for c in ("spoof", "benign") for k in range(30)]
    out = assign_splits([("e", r, None) for r in recs], FRACTIONS, 0)
    by_stem = {}
    for r, s in zip(recs, out):
        by_stem.setdefault(r.source.rsplit("/", 1)[1], set()).add(s)
    assert all(len(v) == 1 for v in by_stem.values()) and len(set(out)) == 3


def test_dedupe_keeps_the_first_copy():
    assert dedupe(["a", "b", None, "a", "b", "c"]) == [None, None, None, 0, 1, None]


def test_mixing_interleaves_corpora_and_keys_have_no_dots():
    keys = [("big", f"f{k}.wav") for k in range(90)] + [("small", f"f{k}.wav") for k in range(10)]
    order = mix_order(keys, seed=0)
    first_half = Counter(keys[i][0] for i in order[:50])
    assert 2 <= first_half["small"] <= 8  # not all of one corpus first
    assert all("." not in sample_key(c, s) for c, s in keys)
    assert len({sample_key(c, s) for c, s in keys}) == 100
