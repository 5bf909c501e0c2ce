"""Evaluation data stages: list shards -> split into work units -> read tar -> decode -> chunk -> bucket -> batch.

Each stage is a plain function. The unit of work is a *window*: ``window`` consecutive samples of one shard.
Windows are dealt to ranks round-robin, and batches are formed inside a window only, so a sample is scored with
the same batch companions (hence the same padding) whatever the number of processes: a 2-process run gives the
single-process scores exactly.
"""
from __future__ import annotations

import json
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from shard_builder.audio import AudioError, decode_audio_bytes, resample
from shard_builder.schema import label_to_int

AUDIO_EXTS = ("flac", "wav", "mp3", "ogg", "opus", "sph")
#: The smallest input WavLM's convolutional front end accepts (its receptive field, 25 ms at 16 kHz).
MIN_SAMPLES = 400
_KEY_RE = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")  # webdataset's base_plus_ext: key up to the first dot


@dataclass(frozen=True)
class Unit:
    shard: str  # path of the tar
    shard_index: int
    window: int  # window index inside the shard
    n_windows: int  # windows in that shard (the last takes any samples beyond the index's count)


@dataclass
class Sample:
    key: str
    meta: dict
    wave: np.ndarray  # float32 mono at the target rate (possibly truncated to max_seconds)
    duration: float  # seconds of the full utterance as decoded
    position: int = 0  # index of the sample in its shard (tar order)


@dataclass
class Item:
    """One chunk of one sample, the thing that goes into a batch."""

    key: str
    chunk: int
    wave: np.ndarray


@dataclass
class MemberError:
    shard: str
    key: str
    reason: str

    def as_dict(self) -> dict:
        return {"shard": self.shard, "key": self.key, "reason": self.reason}


def list_shards(shards_root: str | Path, split: str) -> Tuple[List[Path], List[Optional[int]]]:
    """The split's shard files, in index order, with their sample counts (None when unknown)."""
    d = Path(shards_root) / split
    if not d.is_dir():
        raise FileNotFoundError(f"no split directory {d} (data.shards={shards_root}, data.split={split})")
    index = d / "index.json"
    if index.is_file():
        try:
            entries = json.loads(index.read_text())["shards"]
            paths = [d / e["name"] for e in entries]
            counts = [int(e["samples"]) for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{index}: not a shard index ({exc})") from exc
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{index} names shards that do not exist: {missing[:3]}")
        return paths, counts
    paths = sorted(d.glob("*.tar"))
    if not paths:
        raise FileNotFoundError(f"no shards (*.tar) and no index.json in {d}")
    return paths, [None] * len(paths)


def count_samples(path: Path) -> int:
    """Distinct keys in a tar, from its headers only (used when there is no index.json)."""
    keys = set()
    try:
        with tarfile.open(path, mode="r:") as tf:
            for m in tf:
                match = _KEY_RE.match(m.name)
                if m.isfile() and match:
                    keys.add(match.group(1))
    except (tarfile.TarError, OSError):
        pass  # the reader reports the damage
    return len(keys)


def make_units(paths: Sequence[Path], counts: Sequence[Optional[int]], window: int) -> List[Unit]:
    units = []
    for i, (p, n) in enumerate(zip(paths, counts)):
        n = count_samples(p) if n is None else n
        nw = max(1, math.ceil(n / window))
        units.extend(Unit(str(p), i, w, nw) for w in range(nw))
    return units


def units_for_rank(units: Sequence[Unit], rank: int, world: int) -> List[Unit]:
    """Round-robin deal of windows to ranks: disjoint, and together they cover every unit once."""
    return [u for j, u in enumerate(units) if j % world == rank]


def iter_tar_samples(path: str) -> Iterator[Tuple[str, dict, Optional[str]]]:
    """Yield ``(key, {ext: bytes}, error)`` per sample of a WebDataset tar, streaming.

    Members are grouped by key (consecutive members sharing the part of the name before the first dot). A tar
    damaged part-way yields one final ``(key, {}, error)`` naming the damage instead of raising.
    """
    current, parts = None, {}
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                match = _KEY_RE.match(m.name)
                if not match:
                    yield m.name, {}, f"member name {m.name!r} has no extension"
                    continue
                key, ext = match.group(1), match.group(2).lower()
                if key != current:
                    if current is not None:
                        yield current, parts, None
                    current, parts = key, {}
                f = tf.extractfile(m)
                parts[ext] = f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        if current is not None:
            yield current, parts, f"tar damaged after this member ({type(exc).__name__}: {exc})"
        else:
            yield Path(path).name, {}, f"unreadable tar ({type(exc).__name__}: {exc})"
        return
    if current is not None:
        yield current, parts, None


def decode_sample(key: str, parts: dict, sample_rate: int, max_seconds: Optional[float]) -> Sample:
    """Shard member bytes -> Sample. Raises ValueError / AudioError with a reason."""
    if "json" not in parts:
        raise ValueError("no .json metadata member")
    try:
        meta = json.loads(parts["json"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"invalid .json metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError("the .json metadata is not an object")
    if meta.get("label") is None:
        raise ValueError("metadata has no 'label'")
    label_to_int(meta["label"])  # raises on an unknown label
    ext = next((e for e in AUDIO_EXTS if e in parts), None)
    if ext is None:
        raise ValueError(f"no audio member (have: {sorted(parts)})")
    wave, sr = decode_audio_bytes(parts[ext])
    if wave.size == 0:
        raise AudioError("no_frames", "the audio member holds no frames")
    if not np.all(np.isfinite(wave)):
        raise AudioError("non_finite", "NaN or infinite samples")
    duration = wave.size / sr
    if max_seconds is not None:
        wave = wave[: int(round(max_seconds * sr))]
    wave = resample(wave, sr, sample_rate)
    if wave.size < MIN_SAMPLES:
        raise AudioError("too_short", f"{wave.size} samples; the model needs at least {MIN_SAMPLES}")
    meta.setdefault("key", key)
    return Sample(key=str(meta.get("key") or key), meta=meta, wave=wave, duration=float(duration))


def _decode_one(args) -> Tuple[Optional[Sample], List[str]]:
    i, key, parts, err, sample_rate, max_seconds = args
    problems = []
    sample = None
    if err is not None and not parts:
        return None, [err]
    try:
        sample = decode_sample(key, parts, sample_rate, max_seconds)
        sample.position = i
    except (AudioError, ValueError) as exc:
        problems.append(str(exc))
    if err is not None:
        problems.append(err)
    return sample, problems


def iter_unit_samples(
    shard: str,
    windows: Sequence[Unit],
    window_size: int,
    sample_rate: int,
    max_seconds: Optional[float],
    errors: List[MemberError],
    pool=None,
) -> Iterator[Tuple[int, List[Sample]]]:
    """Stream one shard and yield ``(window, samples)`` for the requested windows (others are skipped undecoded).

    Sample ``i`` of the shard (in tar order) belongs to window ``min(i // window_size, n_windows - 1)``. A window's
    members are decoded together, on ``pool`` (a ``concurrent.futures`` executor) when given; the order of
    samples and errors does not depend on it. Bad members are appended to ``errors`` and skipped.
    """
    wanted = {u.window for u in windows}
    if not wanted:
        return
    n_windows = windows[0].n_windows
    shard_name = Path(shard).name

    def decode(w, raw):
        jobs = [(i, key, parts, err, sample_rate, max_seconds) for i, key, parts, err in raw]
        out = []
        for (i, key, _, _), (sample, problems) in zip(raw, (pool.map if pool else map)(_decode_one, jobs)):
            errors.extend(MemberError(shard_name, key, p) for p in problems)
            if sample is not None:
                out.append(sample)
        return w, out

    raw: list = []
    cur_w = None
    for i, (key, parts, err) in enumerate(iter_tar_samples(shard)):
        w = min(i // window_size, n_windows - 1)
        if w != cur_w:
            if cur_w in wanted and raw:
                yield decode(cur_w, raw)
            raw, cur_w = [], w
        if w in wanted:
            raw.append((i, key, parts, err))
    if cur_w in wanted and raw:
        yield decode(cur_w, raw)


def prefetch(iterable, depth: int):
    """Run ``iterable`` in a background thread, ``depth`` items ahead (decoding overlaps scoring; libsndfile and
    torch release the GIL). Exceptions are re-raised in the consumer. ``depth <= 0``: no thread."""
    if depth <= 0:
        yield from iterable
        return
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for x in iterable:
                if stop.is_set():
                    return
                q.put((x, None))
        except BaseException as exc:  # handed to the consumer
            q.put((None, exc))
            return
        q.put((done, None))

    th = threading.Thread(target=work, name="eval-prefetch", daemon=True)
    th.start()
    try:
        while True:
            x, exc = q.get()
            if exc is not None:
                raise exc
            if x is done:
                return
            yield x
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(timeout=0.05)


def chunk_sample(sample: Sample, chunk_samples: int) -> List[Item]:
    """Split a wave into ``ceil(T / chunk_samples)`` near-equal chunks (lengths differ by at most one sample)."""
    t = sample.wave.size
    n = max(1, math.ceil(t / chunk_samples))
    bounds = [round(i * t / n) for i in range(n + 1)]
    return [Item(sample.key, j, sample.wave[bounds[j]:bounds[j + 1]]) for j in range(n)]


def make_batches(
    items: List[Item], batch_samples: int, max_batch_size: int, bucketing: bool, padding: str = "zero"
) -> List[List[Item]]:
    """Group items into batches of at most ``batch_samples`` padded samples and ``max_batch_size`` items.

    ``padding="none"``: a batch only holds items of exactly the same length, so no item is padded and its score
    cannot depend on its companions (group-norm WavLM, run without an attention mask, sees zero padding).
    ``padding="zero"``: items of different lengths share a batch, zero-padded to the longest; with ``bucketing``
    they are first sorted by length (longest first, ties in arrival order), without it they stay in arrival
    order (the naive baseline).
    """
    if padding not in ("none", "zero"):
        raise ValueError(f"padding={padding!r}: expected 'none' or 'zero'")
    if bucketing or padding == "none":
        items = sorted(items, key=lambda it: -it.wave.size)  # stable: ties keep arrival order
    batches: List[List[Item]] = []
    cur: List[Item] = []
    cur_max = 0
    for it in items:
        new_max = max(cur_max, it.wave.size)
        if cur and (
            len(cur) + 1 > max_batch_size
            or new_max * (len(cur) + 1) > batch_samples
            or (padding == "none" and it.wave.size != cur_max)
        ):
            batches.append(cur)
            cur, new_max = [], it.wave.size
        cur.append(it)
        cur_max = new_max
    if cur:
        batches.append(cur)
    return batches


def collate(batch: List[Item]) -> Tuple[np.ndarray, np.ndarray]:
    """Zero-padded ``[B, T_max]`` float32 array and ``[B]`` lengths."""
    lengths = np.array([it.wave.size for it in batch], dtype=np.int64)
    out = np.zeros((len(batch), int(lengths.max())), dtype=np.float32)
    for i, it in enumerate(batch):
        out[i, : it.wave.size] = it.wave
    return out, lengths
