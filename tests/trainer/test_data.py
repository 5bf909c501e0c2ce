"""The data stream: exactly-once assignment, exact mid-epoch resume without decoding, corrupt members, mix weights."""
from __future__ import annotations

import collections
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import trainer.data as data
from shardkit import write_shards
from trainer.data import (CorruptDataError, ResumeMismatch, ShardStream, StreamOptions, TrainStream, list_shards,
                          random_crop)


def opts(**kw):
    base = dict(seed=3, batch_size=3, crop_samples=8000, world=1, rank=0, num_workers=0)
    base.update(kw)
    return StreamOptions(**base)


def all_keys(shards):
    keys = []
    for s in shards:
        with tarfile.open(s.path) as tf:
            keys += sorted({m.name.split(".")[0] for m in tf.getmembers()})
    return keys


def test_every_sample_read_by_exactly_one_rank_and_worker(shards):
    infos = list_shards(shards, "train")
    reader = collections.defaultdict(set)
    for rank in range(2):
        for worker in range(2):
            ds = ShardStream(infos, opts(world=2, rank=rank, num_workers=2, train=False), epoch=1)
            for b in ds._batches(worker, ds.plan[rank][worker], (0, 0, 0)):
                for k in b["keys"]:
                    reader[k].add((rank, worker))
    assert sorted(reader) == sorted(all_keys(infos))
    assert all(len(v) == 1 for v in reader.values())


def test_shard_order_depends_on_seed_and_epoch(shards):
    infos = list_shards(shards, "train")
    a = data.assign_shards(infos, 0, 0, 1, 1)
    assert a == data.assign_shards(infos, 0, 0, 1, 1)
    assert a != data.assign_shards(infos, 0, 1, 1, 1) or a != data.assign_shards(infos, 1, 0, 1, 1)


def consume(stream, n=None):
    out = []
    while n is None or len(out) < n:
        got = stream.fetch(1)
        if got is None:
            break
        out.append((got[0]["keys"], got[0]["wave"].numpy().copy()))  # valid until commit
        stream.commit(got[0])
    return out


def test_mid_epoch_resume_with_workers_continues_the_same_sequence(shards):
    infos = list_shards(shards, "train")
    o = opts(num_workers=2, weights={"attack_type:replay": 1.5})
    full = consume(TrainStream(infos, o))
    first = TrainStream(infos, o)
    head = consume(first, 5)
    state = json.loads(json.dumps(first.state_dict()))  # as stored in the checkpoint
    first.close()
    resumed = TrainStream(infos, o)
    resumed.load_state_dict(state)
    tail = consume(resumed)
    assert [k for k, _ in head + tail] == [k for k, _ in full]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(head + tail, full))  # same crops too


def test_resume_skips_without_decoding(shards, monkeypatch):
    infos = list_shards(shards, "train")[:1]
    decoded = []
    real = data.decode_member
    monkeypatch.setattr(data, "decode_member", lambda *a, **k: decoded.append(1) or real(*a, **k))
    stream = TrainStream(infos, opts(batch_size=1))
    stream.load_state_dict({"epoch": 0, "rotation": 0, "positions": {"0": [0, 6, 0]}, "world": 1,
                            "num_workers": 0})
    left = consume(stream)
    assert len(left) == 2 and len(decoded) == 2  # the 6 samples before the position were never decoded


def test_resume_with_other_layout_mid_epoch_needs_every_rank(shards):
    infos = list_shards(shards, "train")
    s = TrainStream(infos, opts(num_workers=0))
    consume(s, 2)
    state = s.state_dict()
    other = TrainStream(infos, opts(world=2, rank=0))
    with pytest.raises(ResumeMismatch, match="data states of all 1 ranks"):
        other.load_state_dict(state)
    with pytest.raises(ResumeMismatch, match="incomplete"):
        other.load_state_dict(state, [dict(state, rank=1)])


def keys_read(streams, limits):
    """Consume up to limits[i] batches (None: all) from stream i; the keys read and each stream's state after."""
    keys = collections.Counter()
    for s, n in zip(streams, limits):
        for k, _ in consume(s, n):
            keys.update(k)
    return keys, [s.state_dict() for s in streams]


@pytest.mark.parametrize("layouts", [[(2, 2), (1, 1)], [(2, 2), (3, 1), (1, 2)], [(1, 3), (2, 0)]])
def test_mid_epoch_resume_on_another_layout_reads_the_rest_exactly_once(shards, layouts):
    infos = list_shards(shards, "train")
    # batch 1: no partial batch to drop, so the epoch's samples (with the extra copies of the mix weights) are
    # read exactly once whatever the layouts and wherever they change
    o = dict(batch_size=1, weights={"attack_type:replay": 1.5})
    full, _ = keys_read([TrainStream(infos, opts(num_workers=0, **o))], [None])
    assert sum(full.values()) > 44  # some replay samples are read twice
    read, states = collections.Counter(), None
    for n, (world, workers) in enumerate(layouts):
        streams = [TrainStream(infos, opts(world=world, rank=r, num_workers=workers, **o)) for r in range(world)]
        if states is not None:
            for r, s in enumerate(streams):
                s.load_state_dict(json.loads(json.dumps(states[min(r, len(states) - 1)])),
                                  json.loads(json.dumps(states)))
        last = n == len(layouts) - 1
        got, states = keys_read(streams, [None if last else 3 + 2 * r for r in range(world)])
        read += got
        if not last:
            assert any(st["positions"] for st in states)  # really interrupted mid-epoch
    assert read == full


def test_another_layout_continues_ranks_that_moved_while_rank0_did_not(shards):
    infos = list_shards(shards, "train")
    o = dict(batch_size=1)
    full, _ = keys_read([TrainStream(infos, opts(num_workers=0, **o))], [None])
    ranks = [TrainStream(infos, opts(world=2, rank=r, num_workers=1, **o)) for r in range(2)]
    before, states = keys_read(ranks, [0, 2])
    assert not states[0]["positions"] and states[1]["positions"]
    one = TrainStream(infos, opts(num_workers=2, **o))
    one.load_state_dict(states[0], states)
    after, _ = keys_read([one], [None])
    assert before + after == full


def test_another_layout_with_other_mix_weights_is_refused(shards):
    infos = list_shards(shards, "train")
    ranks = [TrainStream(infos, opts(world=2, rank=r, num_workers=0, batch_size=1)) for r in range(2)]
    _, states = keys_read(ranks, [2, 2])
    other = TrainStream(infos, opts(num_workers=0, batch_size=1, weights={"attack_type:replay": 2.0}))
    with pytest.raises(ResumeMismatch, match="other mix weights"):
        other.load_state_dict(states[0], states)


def test_a_committed_batch_releases_its_buffer_once(shards):
    infos = list_shards(shards, "train")
    s = TrainStream(infos, opts(num_workers=1))
    b = s.fetch(1)[0]
    assert b["slot"] is not None
    busy, slot = b["busy"], b["slot"]
    s.commit(b)
    assert busy[slot] == 0 and b["slot"] is None and b["wave"] is None  # the views are gone with the buffer
    s.close()


def test_exit_leaves_other_multiprocessing_children_to_multiprocessing(tmp_path):
    # the exit hook stops loader workers only: an open multiprocessing.Pool still shuts down normally
    script = tmp_path / "pool.py"
    script.write_text("import multiprocessing as mp\nimport trainer.data\npool = mp.Pool(2)\n"
                      "assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]\n")
    env = dict(os.environ, PYTHONPATH=str(Path(data.__file__).resolve().parents[1]))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr


def test_window_decode_equals_crop_of_full_decode(shards):
    from shard_builder.audio import decode_audio_bytes

    infos = list_shards(shards, "train")
    samples, _ = data.index_tar(infos[0].path)
    with open(infos[0].path, "rb") as f:
        for s in samples[:3]:  # 1.0, 2.5 and 4.5 s clips around a 2 s crop
            off, size = s.members["flac"]
            f.seek(off)
            raw = f.read(size)
            full, _ = decode_audio_bytes(raw)
            a = data.decode_member(raw, 16000, 32000, np.random.default_rng(7))
            b = random_crop(full, 32000, np.random.default_rng(7))
            assert np.array_equal(a, b)


def wav_bytes(pcm16, sr=16000, subtype="PCM_16", **kw):
    buf = io.BytesIO()
    sf.write(buf, pcm16, sr, format="WAV", subtype=subtype, **kw)
    return buf.getvalue()


def test_wav_fast_path_equals_libsndfile(monkeypatch):
    from shard_builder.audio import SLOW_PATHS_ENV

    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, 40000).astype(np.int16)
    pcm[:2] = (-32768, 32767)
    cases = {"canonical": wav_bytes(pcm), "short": wav_bytes(pcm[:5000]), "empty": wav_bytes(pcm[:0])}
    buf = io.BytesIO()
    sf.write(buf, pcm, 16000, format="WAVEX", subtype="PCM_16")  # WAVE_FORMAT_EXTENSIBLE header
    cases["extensible"] = buf.getvalue()
    canon = cases["canonical"]  # a LIST chunk before the data chunk, as many tools write
    listed = (canon[:36] + b"LIST" + (16).to_bytes(4, "little") + b"INFOISFT" + (4).to_bytes(4, "little") + b"abc\x00"
              + canon[36:])
    cases["list_chunk"] = listed[:4] + (len(listed) - 8).to_bytes(4, "little") + listed[8:]
    for name, raw in cases.items():
        assert data.wav_pcm16_layout(raw) is not None, name
        for length, seed in ((16000, 1), (16000, 2), (64000, 3), (40000, 4)):
            fast = [data.decode_member(raw, 16000, length, np.random.default_rng(seed)),
                    data.decode_member(raw, 16000, length)]
            with monkeypatch.context() as m:
                m.setenv(SLOW_PATHS_ENV, "1")
                slow = [data.decode_member(raw, 16000, length, np.random.default_rng(seed)),
                        data.decode_member(raw, 16000, length)]
            for a, b in zip(fast, slow):
                assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b), (name, length)


def test_wav_fast_path_leaves_other_encodings_to_libsndfile():
    pcm = np.zeros(1600, np.int16)
    assert data.wav_pcm16_layout(wav_bytes(pcm, subtype="PCM_24")) is None
    assert data.wav_pcm16_layout(wav_bytes(np.zeros((1600, 2), np.int16))) is None
    truncated = wav_bytes(pcm)[:-10]
    assert data.wav_pcm16_layout(truncated) is None
    with pytest.raises(ValueError, match="sample rate"):
        data.decode_member(wav_bytes(pcm, sr=8000), 16000, 800)
    assert data.decode_member(wav_bytes(pcm, subtype="PCM_24"), 16000, 800).size == 800


def snapshot(stream):
    """Every batch of the epoch as plain copies (the tensors are valid only until commit)."""
    out = []
    while (got := stream.fetch(1)) is not None:
        b = got[0]
        out.append({"keys": b["keys"], **{k: b[k].numpy().copy() for k in ("wave", "lengths", "labels")}})
        stream.commit(b)
    return out


def same_batches(a, b):
    return len(a) == len(b) and all(x["keys"] == y["keys"] and all(np.array_equal(x[k], y[k]) for k in
                                                                  ("wave", "lengths", "labels")) for x, y in zip(a, b))


def test_shared_batch_buffers_deliver_the_same_batches(shards):
    infos = list_shards(shards, "train")
    plain = snapshot(TrainStream(infos, opts(num_workers=2, shared_buffers=0)))
    assert len(plain) == 14 and same_batches(snapshot(TrainStream(infos, opts(num_workers=2))), plain)
    # the trainer holds more batches than a worker has buffers (grad_accum): the extra ones travel the usual way
    held = TrainStream(infos, opts(num_workers=2, shared_buffers=2))
    batches = held.fetch(len(plain))
    assert sum(b["slot"] is not None for b in batches) == 4  # 2 buffers x 2 workers
    copies = [{"keys": b["keys"], **{k: b[k].numpy().copy() for k in ("wave", "lengths", "labels")}} for b in batches]
    assert same_batches(copies, plain)
    for b in batches:
        held.commit(b)
    assert held.fetch(1) is None


def test_an_exception_with_live_workers_exits_promptly(shards, tmp_path):
    # Data workers ignore SIGTERM (preemption is the trainer's business); an uncaught exception must still end the
    # process instead of leaving it waiting for them forever.
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys\n"
        "from trainer.data import StreamOptions, TrainStream, list_shards\n"
        f"s = TrainStream(list_shards({str(shards)!r}, 'train'), StreamOptions(seed=0, batch_size=2, "
        "crop_samples=8000, num_workers=2))\n"
        "assert s.fetch(1)\n"
        "raise RuntimeError('boom')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(data.__file__).resolve().parents[1]))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1 and "RuntimeError: boom" in p.stderr
    assert "killed by signal" not in p.stderr


def test_random_crop_repeat_pads_short_clips():
    rng = np.random.default_rng(0)
    x = np.arange(5, dtype=np.float32)
    assert random_crop(x, 12, rng).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    y = random_crop(np.arange(100, dtype=np.float32), 10, rng)
    assert y.size == 10 and np.all(np.diff(y) == 1)


@pytest.fixture()
def corrupt_shards(tmp_path):
    root = write_shards(tmp_path, "train", n_samples=16, samples_per_shard=8, seed=5)
    shard0 = tmp_path / "train" / "shard-000000.tar"
    # garble the audio bytes of the first sample (same size, so the tar stays valid)
    with tarfile.open(shard0) as tf:
        m = next(m for m in tf.getmembers() if m.name.endswith(".flac"))
        off, size = m.offset_data, m.size
    raw = bytearray(shard0.read_bytes())
    raw[off:off + size] = b"\x00" * size
    shard0.write_bytes(bytes(raw))
    # truncate the second shard in the middle of its last sample
    shard1 = tmp_path / "train" / "shard-000001.tar"
    shard1.write_bytes(shard1.read_bytes()[: int(shard1.stat().st_size * 0.8)])
    return root


def test_corrupt_members_are_skipped_counted_and_named(corrupt_shards, caplog):
    infos = list_shards(corrupt_shards, "train")
    s = TrainStream(infos, opts(batch_size=1))
    got = consume(s)
    assert s.problems_total >= 2
    assert 10 <= len(got) <= 14  # 16 minus the garbled one and the truncated tail
    assert "shard-000000.tar" in caplog.text and "shard-000001.tar" in caplog.text


def test_corrupt_member_stops_the_run_when_configured(corrupt_shards):
    infos = list_shards(corrupt_shards, "train")
    s = TrainStream(infos, opts(batch_size=1, on_corrupt="fail"))
    with pytest.raises(CorruptDataError, match=r"shard-00000\d\.tar.*on_corrupt=fail"):
        consume(s)


def test_mix_weights_change_the_share(shards):
    infos = list_shards(shards, "train")

    def replay_share(weights):
        s = TrainStream(infos, opts(batch_size=1, weights=weights))
        s.fetch(1)
        corp = collections.Counter()
        while True:
            got = s.fetch(1)
            if got is None:
                break
            corp.update(got[0]["attack_types"])
        return corp["replay"] / sum(corp.values())

    assert replay_share({"attack_type:replay": 3.0}) > replay_share({}) + 0.2
    assert replay_share({"attack_type:replay": 0.0}) == 0.0
