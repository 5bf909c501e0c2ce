"""The training data stream: WebDataset shards -> (rank, worker) assignment -> decode -> crop/augment -> batch.

Stages, each a plain function (STYLE.md):

1. ``list_shards``: the shards of a split, with their sample counts from ``index.json``.
2. ``assign_shards``: a deterministic shard order per (seed, epoch); shards are dealt to ranks and then to the
   DataLoader workers of each rank, balancing sample counts, so every sample of the epoch belongs to exactly one
   (rank, worker).
3. ``index_tar``: the members of one shard, grouped by key, found by reading the 512-byte tar headers only
   (``tarfile`` seeks over the data). This is what makes mid-epoch resume cheap: a worker skips to its position
   without decoding anything, so resume time does not depend on the position in the epoch.
4. ``ShardStream``: per worker, samples in a per-(seed, epoch, shard) permuted order, decoded, mixed by
   ``data.weights``, randomly cropped (short clips repeat-padded), augmented, batched. Every random choice comes
   from a generator seeded by (seed, epoch, key, copy), never from a global RNG.
5. ``TrainStream`` (main process): one DataLoader per epoch, the position of every worker as of the last batch
   the trainer consumed, and the state that goes into checkpoints.

Why the loader never goes through ``accelerator.prepare``: accelerate would re-shard or dispatch an iterable
stream (FACTS.md); the split across ranks is done here.

Position of a worker: ``(shard_slot, sample_index, copy)``: the next thing it will emit. Batches carry the position
*after* themselves and their (logical) worker id; the trainer records it when it has trained on the batch.
The DataLoader serves workers round-robin (skipping exhausted ones); on resume the worker ids are rotated so the
round-robin continues with the worker after the one that produced the last consumed batch. Result: the resumed
batch sequence is identical to the uninterrupted one.

End of epoch (same number of batches on every rank): each worker drops its last partial batch; the trainer ends
the epoch for all ranks at the first step where any rank has no full batch left (ranks agree with one all-reduce).
The samples still unread on the other ranks are dropped for this epoch (the shard order is reshuffled each epoch, so
it is a different set each time); shards are dealt by sample count to keep that remainder small.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import math
import multiprocessing.util  # noqa: F401 (its exit handler must be registered before ours)
import os
import signal
import tarfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from shard_builder.audio import pcm16_to_float, slow_paths, to_mono, wav_pcm16_layout
from shard_builder.schema import label_to_int

log = logging.getLogger(__name__)

AUDIO_EXTS = ("flac", "wav", "mp3", "ogg", "opus", "m4a")


class DataError(RuntimeError):
    """A problem with the training data that stops the run (the CLI prints it and exits 1)."""


class CorruptDataError(DataError):
    """A shard member could not be read and ``data.on_corrupt=fail``."""


class ShardsNotFound(DataError, FileNotFoundError):
    """``data.shards`` / the split has no shards."""


# -- 1. shards ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardInfo:
    path: str
    samples: int  # from index.json (used for balancing only; the tar is the truth)


def list_shards(root: str | os.PathLike, split: str) -> List[ShardInfo]:
    """Shards of ``root/split`` in name order, with sample counts from ``index.json`` when there is one."""
    d = Path(root) / split
    if not d.is_dir():
        raise ShardsNotFound(f"no split directory {d} (data.shards={root}, split={split})")
    counts: Dict[str, int] = {}
    index = d / "index.json"
    if index.is_file():
        for s in json.loads(index.read_text()).get("shards", []):
            counts[s["name"]] = int(s.get("samples", 0))
    paths = sorted(d.glob("*.tar"))
    if not paths:
        raise ShardsNotFound(f"no .tar shards in {d}")
    # Without an index, the file size is a fair proxy for the sample count when balancing.
    return [ShardInfo(str(p), counts.get(p.name, max(1, p.stat().st_size // 100_000))) for p in paths]


def class_balance_weights(root: str | os.PathLike, split: str, weights: Dict[str, float]) -> Dict[str, float]:
    """``weights`` plus ``label:*`` factors that equalise the expected per-epoch reads of bona fide and spoof.

    Counts come from ``index.json`` (``totals.by_corpus_label`` is not stored, so the mix weights of corpora and
    attack types are assumed independent of the label): the minority class is up-weighted to the majority's count.
    """
    index = Path(root) / split / "index.json"
    if not index.is_file():
        raise ShardsNotFound(f"data.balance_classes needs {index} (its totals.by_label)")
    by_label = json.loads(index.read_text()).get("totals", {}).get("by_label", {})
    counts = {lab: float(by_label.get(lab, 0)) * weights.get(f"label:{lab}", 1.0) for lab in ("bonafide", "spoof")}
    if min(counts.values()) <= 0:
        raise ShardsNotFound(f"data.balance_classes: {index} has no samples of one class: {by_label}")
    top = max(counts.values())
    out = dict(weights)
    for lab, n in counts.items():
        out[f"label:{lab}"] = weights.get(f"label:{lab}", 1.0) * top / n
    return out


# -- 2. assignment -------------------------------------------------------------------------------------------------
def _deal(items: List[int], sizes: List[int], n: int) -> List[List[int]]:
    """Deal ``items`` (in order) to ``n`` bins, each to the bin with the fewest samples so far (ties: lowest bin)."""
    bins: List[List[int]] = [[] for _ in range(n)]
    load = [0] * n
    for i in items:
        b = min(range(n), key=lambda j: (load[j], j))
        bins[b].append(i)
        load[b] += sizes[i]
    return bins


def assign_shards(shards: List[ShardInfo], seed: int, epoch: int, world: int, workers: int,
                  shuffle: bool = True) -> List[List[List[int]]]:
    """``[rank][worker] -> shard indices`` for one epoch: a permutation seeded by (seed, epoch), dealt by size."""
    n = len(shards)
    order = list(np.random.default_rng([seed, epoch, 0x5A4D]).permutation(n)) if shuffle else list(range(n))
    sizes = [s.samples for s in shards]
    return [_deal(r, sizes, max(1, workers)) for r in _deal(order, sizes, world)]


#: [rank][worker] -> the shards a worker reads this epoch, each as (shard index, first sample, first copy)
Plan = List[List[List[Tuple[int, int, int]]]]


def standard_plan(shards: List[ShardInfo], seed: int, epoch: int, world: int, workers: int,
                  shuffle: bool = True) -> Plan:
    assignment = assign_shards(shards, seed, epoch, world, workers, shuffle)
    return [[[(int(i), 0, 0) for i in w] for w in r] for r in assignment]


def replan(shards: List[ShardInfo], states: List[dict], seed: int, world: int, workers: int) -> Plan:
    """The rest of an epoch that was interrupted under another (processes x workers) layout, dealt to this one.

    ``states``: the data state of every rank of the interrupted run. Each old worker's position says which of its
    shards are done, where it stopped in the current one (the in-shard order depends only on the seed, the epoch and
    the shard, and crops on the sample, so that position means the same under any layout) and which are untouched.
    What is left is dealt by remaining size to the new ranks and workers. No sample of the epoch is read twice or
    skipped, apart from what every epoch end drops (each worker's last partial batch, the ranks' remainder).
    """
    old_world, old_workers, epoch = states[0]["world"], states[0]["num_workers"], states[0]["epoch"]
    ranks = sorted(int(st["rank"]) for st in states)
    if ranks != list(range(old_world)) or any(st["epoch"] != epoch for st in states):
        epochs = sorted({st["epoch"] for st in states})
        raise ResumeMismatch(f"the checkpoint holds data states of ranks {ranks} (epochs {epochs}) of a "
                             f"{old_world}-process run: it is incomplete")
    old_plan = states[0].get("plan") or standard_plan(shards, seed, epoch, old_world, old_workers)
    left: List[Tuple[int, int, int]] = []
    for st in states:
        for w, items in enumerate(old_plan[int(st["rank"])]):
            items = [tuple(int(v) for v in x) for x in items]
            pos = st["positions"].get(str(w))
            if pos is None:
                left += items
            elif pos[0] < len(items):
                left += [(items[pos[0]][0], int(pos[1]), int(pos[2]))] + items[pos[0] + 1:]
    sizes = [max(0, shards[i].samples - k) for i, k, _ in left]
    return [[[left[j] for j in w] for w in _deal(r, sizes, max(1, workers))]
            for r in _deal(list(range(len(left))), sizes, world)]


def check_same_data(state: dict, data_id: str) -> None:
    if state.get("data_id", data_id) != data_id:
        raise ResumeMismatch("the checkpoint's epoch was interrupted with another seed, other shards or other mix "
                             "weights (data.weights); its positions cannot be re-dealt: restore them, or start a new "
                             "output_dir")


# -- 3. tar index --------------------------------------------------------------------------------------------------
@dataclass
class TarSample:
    key: str
    members: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # ext -> (data offset, size)
    problem: Optional[str] = None


def _split_name(name: str) -> Tuple[str, str]:
    """WebDataset convention: the key is the path up to the first dot of the file name."""
    d, base = os.path.split(name)
    key, _, ext = base.partition(".")
    return (os.path.join(d, key) if d else key), ext


def _members_fast(path: str, size: int) -> Optional[Tuple[List[Tuple[str, int, int]], bool]]:
    """(name, data offset, size) of the regular members, from raw 512-byte headers (ustar, GNU long names, pax
    paths), and whether the end-of-archive block was found. None when the archive has something this reader does
    not handle (then ``tarfile`` does it)."""
    out: List[Tuple[str, int, int]] = []
    long_name = None
    off = 0
    with open(path, "rb") as f:
        while off + 512 <= size:
            f.seek(off)
            hdr = f.read(512)
            if not any(hdr):
                return out, True  # end-of-archive block
            try:
                chk = int(hdr[148:156].replace(b"\0", b" ").strip() or b"0", 8)
                if chk != sum(hdr[:148]) + 256 + sum(hdr[156:]):
                    return None
                if hdr[124] & 0x80:
                    return None  # base-256 size (> 8 GiB member)
                msize = int(hdr[124:136].replace(b"\0", b" ").strip() or b"0", 8)
            except ValueError:
                return None
            kind = hdr[156:157]
            name = hdr[0:100].split(b"\0", 1)[0]
            if hdr[257:262] == b"ustar" and hdr[345:500].strip(b"\0"):
                name = hdr[345:500].split(b"\0", 1)[0] + b"/" + name
            data_off = off + 512
            if kind == b"L":  # GNU long name
                f.seek(data_off)
                long_name = f.read(msize).split(b"\0", 1)[0]
            elif kind == b"x":  # pax header: only the path matters here
                f.seek(data_off)
                for rec in f.read(msize).split(b"\n"):
                    if b" path=" in rec:
                        long_name = rec.split(b" path=", 1)[1]
            elif kind in (b"0", b"\0", b"7"):
                out.append(((long_name or name).decode("utf-8", "replace"), data_off, msize))
                long_name = None
            elif kind not in (b"5", b"g", b"1", b"2"):
                return None
            off = data_off + (msize + 511) // 512 * 512
    return out, False  # ran off the end of a truncated file


def _members_tarfile(path: str) -> Tuple[List[Tuple[str, int, int]], Optional[str]]:
    out, problem = [], None
    try:
        with tarfile.open(path, mode="r:") as tf:
            while True:
                try:
                    info = tf.next()
                except (tarfile.TarError, EOFError, OSError) as exc:
                    problem = f"unreadable tar after {len(out)} members: {exc}"
                    break
                if info is None:
                    break
                if info.isfile():
                    out.append((info.name, info.offset_data, info.size))
    except (tarfile.TarError, EOFError, OSError) as exc:
        return [], f"cannot open tar: {exc}"
    return out, problem


def index_tar(path: str) -> Tuple[List[TarSample], Optional[str]]:
    """Members of a shard grouped by key, from headers only. Returns (samples, problem with the tar or None)."""
    size = os.path.getsize(path)
    fast = _members_fast(path, size)
    if fast is not None:
        members, complete = fast
        problem = None if complete else "truncated: no end-of-archive block"
    else:
        members, problem = _members_tarfile(path)
    samples: List[TarSample] = []
    for name, off, msize in members:
        key, ext = _split_name(name)
        if not samples or samples[-1].key != key:
            samples.append(TarSample(key))
        if off + msize > size:
            samples[-1].problem = f"member {name} truncated"
            problem = f"truncated at member {name}"
            break
        samples[-1].members[ext] = (off, msize)
    return samples, problem


# -- 4. per-worker stream ------------------------------------------------------------------------------------------
def key_seed(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` samples; shorter clips are repeated end to end first (repeat-padding)."""
    if wave.size == 0:
        return np.zeros(length, dtype=np.float32)
    if wave.size < length:
        wave = np.tile(wave, int(math.ceil(length / wave.size)))
        return wave[:length].astype(np.float32, copy=False)
    start = int(rng.integers(0, wave.size - length + 1))
    return wave[start:start + length].astype(np.float32, copy=False)


def decode_member(data: bytes, sample_rate: int, length: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Audio member bytes -> float32 mono, decoding only what is used.

    With ``rng``: a random window of ``length`` samples (the same window :func:`random_crop` would pick), read by
    seeking inside the FLAC/WAV stream, so a 4 s crop of a 20 s clip decodes 4 s; short clips are repeat-padded.
    Without: the first ``length`` samples (validation). Raises ValueError on unreadable audio.
    Mono 16-bit WAV (what the shard builder writes) is sliced straight out of the bytes, bit-identical to libsndfile.
    """
    layout = wav_pcm16_layout(data) if data[:4] == b"RIFF" and not slow_paths() else None
    if layout is not None:
        sr, offset, n = layout
        if sr != sample_rate:
            raise ValueError(f"sample rate {sr} != data.sample_rate={sample_rate}")
        if rng is None:
            start, count = 0, min(n, length)
        elif n < length:
            return random_crop(pcm16_to_float(np.frombuffer(data, "<i2", n, offset)), length, rng)
        else:
            start, count = int(rng.integers(0, n - length + 1)), length
        return pcm16_to_float(np.frombuffer(data, "<i2", count, offset + 2 * start))
    try:
        with sf.SoundFile(io.BytesIO(data)) as snd:
            if snd.samplerate != sample_rate:
                raise ValueError(f"sample rate {snd.samplerate} != data.sample_rate={sample_rate}")
            n = snd.frames
            if rng is None:
                return to_mono(snd.read(min(n, length) if 0 < n < 2**40 else length, dtype="float32", always_2d=True))
            if not 0 < n < 2**40 or not snd.seekable():  # unknown length: decode everything
                return random_crop(to_mono(snd.read(dtype="float32", always_2d=True)), length, rng)
            if n < length:
                wave = to_mono(snd.read(dtype="float32", always_2d=True))
                if wave.size != n:
                    raise ValueError(f"decoded {wave.size} of {n} frames")
                return random_crop(wave, length, rng)
            start = int(rng.integers(0, n - length + 1))
            snd.seek(start)
            wave = to_mono(snd.read(length, dtype="float32", always_2d=True))
            if wave.size != length:
                raise ValueError(f"decoded {wave.size} of {length} frames at offset {start}")
            return wave
    except sf.LibsndfileError as exc:
        raise ValueError(f"unreadable audio: {exc}") from exc
    except RuntimeError as exc:
        raise ValueError(f"unreadable audio: {exc}") from exc


@dataclass
class StreamOptions:
    seed: int
    batch_size: int
    sample_rate: int = 16000
    train: bool = True  # False: no shuffle within shards, no mix weights, no crop/augment, keep the last batch
    crop_samples: int = 64000
    max_samples: int = 128000  # evaluation: truncate clips to this
    weights: Dict[str, float] = field(default_factory=dict)
    on_corrupt: str = "skip"
    world: int = 1
    rank: int = 0
    num_workers: int = 0
    shared_buffers: int = 8  # per DataLoader worker, training batches reused in shared memory (0: off)


class ShardStream(IterableDataset):
    """Yields collated batches (dicts). One instance per epoch, copied into every DataLoader worker."""

    def __init__(self, shards: List[ShardInfo], opts: StreamOptions, augmenter=None, epoch: int = 0,
                 positions: Optional[Dict[int, Tuple[int, int, int]]] = None, rotation: int = 0,
                 plan: Optional[Plan] = None):
        self.shards, self.opts, self.augmenter = shards, opts, augmenter
        self.epoch, self.rotation = epoch, rotation
        self.positions = dict(positions or {})
        self.buffers: Optional[SharedBatches] = None  # set in each worker
        self.plan = plan or standard_plan(shards, opts.seed, epoch, opts.world, opts.num_workers, shuffle=opts.train)

    # which shards a logical worker reads, for tests and docs
    def worker_shards(self, logical: int) -> List[int]:
        return [i for i, _, _ in self.plan[self.opts.rank][logical]]

    def copies(self, meta: dict, key: str) -> int:
        """How many times a sample is emitted this epoch under ``data.weights`` (floor + Bernoulli remainder)."""
        if not self.opts.train or not self.opts.weights:
            return 1
        w = 1.0
        w *= self.opts.weights.get(f"corpus:{meta.get('corpus')}", 1.0)
        w *= self.opts.weights.get(f"attack_type:{meta.get('attack_type')}", 1.0)
        w *= self.opts.weights.get(f"label:{meta.get('label')}", 1.0)
        base = int(math.floor(w))
        u = np.random.default_rng([self.opts.seed, self.epoch, key_seed(key), 0x313]).random()
        return base + int(u < w - base)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        n_workers = max(1, self.opts.num_workers)
        physical = info.id if info is not None else 0
        logical = (physical + self.rotation) % n_workers
        items = [tuple(x) for x in self.plan[self.opts.rank][logical]]
        self.buffers = None
        if info is not None and self.opts.train and self.opts.shared_buffers > 0:
            self.buffers = SharedBatches.create(self.opts.shared_buffers, self.opts.batch_size, self.opts.crop_samples)
        start = self.positions.get(logical) or ((0, items[0][1], items[0][2]) if items else (0, 0, 0))
        yield from self._batches(logical, items, start)

    def _problem(self, where: str, why: str) -> dict:
        msg = f"corrupt shard data: {where}: {why}"
        if self.opts.on_corrupt == "fail":
            raise CorruptDataError(msg + " (data.on_corrupt=fail; use data.on_corrupt=skip to skip such members)")
        log.warning("%s (skipped)", msg)
        return {"where": where, "why": why}

    def _read(self, f, s: TarSample) -> Tuple[dict, bytes]:
        """The sample's metadata and audio bytes (nothing decoded yet)."""
        if s.problem:
            raise ValueError(s.problem)
        if "json" not in s.members:
            raise ValueError("no .json member")
        audio_ext = next((e for e in AUDIO_EXTS if e in s.members), None)
        if audio_ext is None:
            raise ValueError(f"no audio member (have {sorted(s.members)})")
        off, size = s.members["json"]
        f.seek(off)
        meta = json.loads(f.read(size).decode("utf-8"))
        label_to_int(meta["label"])  # validates the label
        off, size = s.members[audio_ext]
        f.seek(off)
        data = f.read(size)
        if len(data) != size:
            raise ValueError(f"{audio_ext} member truncated")
        return meta, data

    def _example(self, meta: dict, data: bytes, key: str, copy: int) -> dict:
        o = self.opts
        if o.train:
            rng = np.random.default_rng([o.seed, self.epoch, key_seed(key), copy])
            x = decode_member(data, o.sample_rate, o.crop_samples, rng)
            if self.augmenter is not None and self.augmenter.active:
                x = np.asarray(self.augmenter(x, rng), dtype=np.float32)
                x = x[:o.crop_samples] if x.size >= o.crop_samples else random_crop(x, o.crop_samples, rng)
        else:
            x = decode_member(data, o.sample_rate, o.max_samples)
        return {"wave": x, "label": label_to_int(meta["label"]), "key": key,
                "attack_type": meta.get("attack_type"), "corpus": meta.get("corpus")}

    def _batches(self, logical: int, items: List[Tuple[int, int, int]], start: Tuple[int, int, int]) -> Iterator[dict]:
        o = self.opts
        slot, k, c = start
        buf: List[dict] = []
        problems: List[dict] = []
        while slot < len(items):
            path = self.shards[items[slot][0]].path
            samples, tar_problem = index_tar(path)
            order = (np.random.default_rng([o.seed, self.epoch, key_seed(os.path.basename(path))]).permutation(len(samples))
                     if o.train else np.arange(len(samples)))
            with open(path, "rb") as f:
                while k < len(order):
                    s = samples[order[k]]
                    try:
                        meta, data = self._read(f, s)
                        n = self.copies(meta, s.key)
                        examples = [self._example(meta, data, s.key, copy) for copy in range(c, n)]
                    except CorruptDataError:
                        raise
                    except Exception as exc:  # a bad member never stops the stream unless on_corrupt=fail
                        problems.append(self._problem(f"{path}:{s.key}", str(exc) or type(exc).__name__))
                        k, c = k + 1, 0
                        continue
                    for ex in examples:
                        buf.append(ex)
                        c += 1
                        if len(buf) == o.batch_size:
                            after = (slot, k, c) if c < n else (slot, k + 1, 0)
                            yield collate(buf, logical, after, problems, self.buffers)
                            buf, problems = [], []
                    k, c = k + 1, 0
            if tar_problem:
                problems.append(self._problem(path, tar_problem))
            slot += 1
            k, c = items[slot][1:] if slot < len(items) else (0, 0)
        if buf and not o.train:
            yield collate(buf, logical, (slot, 0, 0), problems)


class SharedBatches:
    """A DataLoader worker's few batch-sized buffers in shared memory, reused from batch to batch.

    A tensor returned by a worker normally travels in a new shared-memory segment that the worker allocates and the
    trainer maps, batch after batch: ~3 ms for a 2 MB batch here, as long as decoding it from WAV. Instead the worker
    writes the batch's tensors into a free buffer and sends only its index; the buffers themselves travel once, with
    the first batch that uses them. ``busy[i]`` is set by the worker when it fills buffer i and cleared by
    :meth:`TrainStream.commit` once the trainer has stepped on the batch. With every buffer busy (the trainer holds
    many batches) a batch travels the usual way, so a worker never waits for the trainer.
    """

    FIELDS = ("wave", "lengths", "labels")

    def __init__(self, tensors: Dict[str, torch.Tensor], busy: torch.Tensor):
        self.tensors, self.busy, self.announced = tensors, busy, False

    @classmethod
    def create(cls, n: int, batch_size: int, length: int) -> Optional["SharedBatches"]:
        try:
            tensors = {"wave": torch.zeros((n, batch_size, length)),
                       "lengths": torch.zeros((n, batch_size), dtype=torch.long),
                       "labels": torch.zeros((n, batch_size))}
            busy = torch.zeros(n, dtype=torch.uint8).share_memory_()
            return cls({k: t.share_memory_() for k, t in tensors.items()}, busy)
        except RuntimeError as exc:  # e.g. a small /dev/shm: fall back to one segment per batch
            log.warning("no shared batch buffers (%s); set data.shared_buffers=0 to silence this", exc)
            return None

    def take(self, batch_size: int, length: int) -> Optional[int]:
        """A free buffer for a full batch of ``length``-sample rows, marked busy; None if there is none."""
        if tuple(self.tensors["wave"].shape[1:]) != (batch_size, length):
            return None
        free = (self.busy == 0).nonzero()
        if free.numel() == 0:
            return None
        i = int(free[0, 0])
        self.busy[i] = 1
        return i


def collate(examples: List[dict], worker: int, position: Tuple[int, int, int], problems: List[dict],
            shared: Optional[SharedBatches] = None) -> dict:
    """Zero-pad to the longest clip; ``lengths`` holds the valid samples of each row. With ``shared`` (training in a
    DataLoader worker) the tensors go into a shared buffer: the batch carries its ``slot`` instead of them, and
    :meth:`TrainStream.fetch` puts them back."""
    lengths = [e["wave"].size for e in examples]
    labels = [e["label"] for e in examples]
    slot = None
    if shared is not None and min(lengths) == max(lengths):
        slot = shared.take(len(examples), max(lengths))
    if slot is None:
        wave = np.zeros((len(examples), max(lengths)), dtype=np.float32)
    else:
        wave = shared.tensors["wave"][slot].numpy()
        shared.tensors["lengths"][slot] = torch.tensor(lengths)
        shared.tensors["labels"][slot] = torch.tensor(labels, dtype=torch.float32)
    for i, e in enumerate(examples):
        wave[i, :lengths[i]] = e["wave"]
    buffers = None
    if slot is not None and not shared.announced:
        buffers, shared.announced = (shared.tensors, shared.busy), True
    tensors = ({"wave": None, "lengths": None, "labels": None} if slot is not None else
               {"wave": torch.from_numpy(wave), "lengths": torch.tensor(lengths, dtype=torch.long),
                "labels": torch.tensor(labels, dtype=torch.float32)})
    return {
        **tensors,
        "slot": slot,
        "buffers": buffers,
        "keys": [e["key"] for e in examples],
        "attack_types": [e["attack_type"] for e in examples],
        "corpora": [e["corpus"] for e in examples],
        "worker": worker,
        "position": position,
        "problems": problems,
    }


_LIVE_ITERATORS: "weakref.WeakSet" = weakref.WeakSet()


@atexit.register
def _stop_workers_at_exit() -> None:
    """Data workers ignore SIGTERM (below), so multiprocessing's own exit handler, which sends SIGTERM to daemonic
    children and then joins them, would wait forever when an uncaught exception leaves a loader alive. This runs
    first (atexit is last-in, first-out; ``multiprocessing.util``, imported above, registered its handler before)
    and shuts the live loaders down the normal way; a worker of theirs still alive is killed. Other children (a
    ``multiprocessing.Pool``...) are left to multiprocessing."""
    for it in list(_LIVE_ITERATORS):
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        for worker in getattr(it, "_workers", []):
            if worker.is_alive():
                worker.kill()


def _worker_init(_: int) -> None:
    # Preemption signals are for the trainer process; workers keep serving until it shuts them down.
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    torch.set_num_threads(1)


def make_loader(dataset: ShardStream, num_workers: int, seed: int) -> DataLoader:
    # A private generator: creating a loader must not consume the global torch RNG (exact resume).
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, worker_init_fn=_worker_init,
                      generator=torch.Generator().manual_seed(seed), prefetch_factor=4 if num_workers else None,
                      persistent_workers=False)


# -- 5. the trainer's view -----------------------------------------------------------------------------------------
class ResumeMismatch(DataError):
    pass


class TrainStream:
    """Batches of one rank, epoch after epoch, with a checkpointable position."""

    def __init__(self, shards: List[ShardInfo], opts: StreamOptions, augmenter=None):
        self.shards, self.opts, self.augmenter = shards, opts, augmenter
        self.epoch = 0
        self.positions: Dict[int, Tuple[int, int, int]] = {}
        self.rotation = 0
        self.batches_in_epoch = 0
        self.problems_total = 0
        self.plan: Optional[Plan] = None  # set when this epoch continues one interrupted under another layout
        self._it = None
        self._buffers: Dict[int, Tuple[Dict[str, torch.Tensor], torch.Tensor]] = {}

    def _iterator(self):
        if self._it is None:
            ds = ShardStream(self.shards, self.opts, self.augmenter, self.epoch, self.positions, self.rotation,
                             self.plan)
            self._it = iter(make_loader(ds, self.opts.num_workers, self.opts.seed))
            _LIVE_ITERATORS.add(self._it)
        return self._it

    def fetch(self, n: int) -> Optional[List[dict]]:
        """The next ``n`` batches of this epoch, or None when this rank has fewer than ``n`` left.

        The tensors of a batch may be views of a worker's shared buffer (:class:`SharedBatches`): they are valid
        until ``commit(batch)``; copy them to keep them longer."""
        out = []
        for _ in range(n):
            try:
                batch = next(self._iterator())
            except StopIteration:
                return None
            if batch["buffers"] is not None:  # a worker's buffers arrive with the first batch that uses them
                self._buffers[batch["worker"]] = batch["buffers"]
            if batch["slot"] is not None:
                tensors, busy = self._buffers[batch["worker"]]
                batch.update({k: tensors[k][batch["slot"]] for k in SharedBatches.FIELDS}, busy=busy)
            out.append(batch)
        return out

    def commit(self, batch: dict) -> List[dict]:
        """The trainer has trained on ``batch``: advance the checkpointable position. Returns its data problems."""
        if batch["slot"] is not None:  # the worker may refill it now (the flag of this batch's own loader)
            batch["busy"][batch["slot"]] = 0
            batch.update(dict.fromkeys(SharedBatches.FIELDS), slot=None, busy=None)
        self.positions[batch["worker"]] = tuple(batch["position"])
        self.rotation = (batch["worker"] + 1) % max(1, self.opts.num_workers)
        self.batches_in_epoch += 1
        self.problems_total += len(batch["problems"])
        return batch["problems"]

    def next_epoch(self) -> None:
        self.close()
        self.epoch += 1
        self.positions, self.rotation, self.batches_in_epoch, self.plan = {}, 0, 0, None

    def close(self) -> None:
        self._it = None  # the DataLoader iterator shuts its workers down when collected
        self._buffers = {}

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch, "rotation": self.rotation, "batches_in_epoch": self.batches_in_epoch,
            "positions": {str(k): list(v) for k, v in sorted(self.positions.items())},
            "world": self.opts.world, "rank": self.opts.rank, "num_workers": self.opts.num_workers,
            "problems_total": self.problems_total, "data_id": self.data_id(),
            **({"plan": self.plan} if self.plan is not None else {}),
        }

    def data_id(self) -> str:
        """What positions are relative to: the seed, the shards (names and sizes) and the mix weights."""
        what = [self.opts.seed, [(os.path.basename(s.path), s.samples) for s in self.shards],
                sorted(self.opts.weights.items())]
        return hashlib.sha1(json.dumps(what).encode()).hexdigest()[:16]

    def load_state_dict(self, state: dict, all_ranks: Optional[List[dict]] = None) -> None:
        """Continue from a checkpoint's data state. A checkpoint written mid-epoch by another number of processes or
        workers needs the states of all its ranks (``all_ranks``): the rest of the epoch is then re-dealt to this
        layout (:func:`replan`); without them it is refused."""
        same_layout = state["world"] == self.opts.world and state["num_workers"] == self.opts.num_workers
        states = all_ranks if all_ranks and not same_layout else [state]  # any rank may be the one mid-epoch
        mid_epoch = any(st["positions"] or "plan" in st for st in states)
        if mid_epoch and not same_layout and all_ranks is None:
            raise ResumeMismatch(
                f"the checkpoint was written mid-epoch by {state['world']} process(es) x {state['num_workers']} "
                f"data worker(s); this run has {self.opts.world} x {self.opts.num_workers}, and continuing the epoch "
                f"on another layout needs the data states of all {state['world']} ranks.")
        self.close()
        self.epoch = int(state["epoch"])
        self.batches_in_epoch = int(state.get("batches_in_epoch", 0))
        if mid_epoch and not same_layout:
            check_same_data(all_ranks[0], self.data_id())
            self.plan = replan(self.shards, all_ranks, self.opts.seed, self.opts.world, self.opts.num_workers)
            self.positions, self.rotation = {}, 0
            old_total = sum(int(st.get("problems_total", 0)) for st in all_ranks)
            self.problems_total = old_total if self.opts.rank == 0 else 0
            log.info("the checkpoint's epoch %d was interrupted under %d x %d (processes x workers): its remaining "
                     "shards are re-dealt to %d x %d", self.epoch, state["world"], state["num_workers"],
                     self.opts.world, self.opts.num_workers)
            return
        self.rotation = int(state["rotation"]) if mid_epoch else 0
        self.positions = {int(k): tuple(v) for k, v in state["positions"].items()}
        self.plan = [[[tuple(x) for x in w] for w in r] for r in state["plan"]] if state.get("plan") else None
        self.problems_total = int(state.get("problems_total", 0))
