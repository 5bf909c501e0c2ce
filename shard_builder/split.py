"""Seeded, order-independent choices of the build: per-label caps, dedup, leak-free splits, shard mixing.

Every choice is a sort by a hash of (seed, stable names), never by position or completion order, so the result
does not depend on the number of workers, the file system's listing order or an interruption.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import PurePosixPath
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .schema import SPLITS


def stable_hash(*parts) -> int:
    h = hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def cap_per_label(records: Sequence, cap: Optional[int], seed: int, entry: str) -> Tuple[list, int]:
    """Keep at most ``cap`` records per label, a seeded choice; the kept ones stay in their original order."""
    if not cap:
        return list(records), 0
    keep = set()
    by_label: Dict[str, list] = {}
    for i, r in enumerate(records):
        by_label.setdefault(r.label, []).append(i)
    for label, idx in by_label.items():
        idx.sort(key=lambda i: stable_hash(seed, "cap", entry, records[i].source))
        keep.update(idx[:cap])
    kept = [r for i, r in enumerate(records) if i in keep]
    return kept, len(records) - len(kept)


def group_of(record) -> str:
    """The unit that must not straddle splits: the speaker, else the source file name without extension (so the
    replays / synthetic counterparts of one utterance that share its file name stay together)."""
    if record.speaker:
        return "speaker:" + str(record.speaker)
    return "file:" + PurePosixPath(record.source).stem


def assign_splits(items: List[Tuple[str, object, Optional[str]]], fractions: Dict[str, float], seed: int) -> List[str]:
    """Split of each item ``(entry_name, record, forced_split)``.

    Forced split (the entry's ``split``) wins, then the corpus's official split; the rest of each entry is cut by
    groups (:func:`group_of`) taken in a seeded order, so the split sizes follow ``fractions`` by sample count and
    no group is in two splits.
    """
    out: List[Optional[str]] = [None] * len(items)
    groups: Dict[str, "OrderedDict[str, List[int]]"] = {}
    for i, (entry, rec, forced) in enumerate(items):
        if forced:
            out[i] = forced
        elif rec.split:
            out[i] = rec.split
        else:
            groups.setdefault(entry, OrderedDict()).setdefault(group_of(rec), []).append(i)
    bounds = []
    acc = 0.0
    for s in SPLITS:
        acc += fractions[s]
        bounds.append((acc, s))
    for entry, g in groups.items():
        n = sum(len(v) for v in g.values())
        done = 0
        for key in sorted(g, key=lambda k: (stable_hash(seed, "split", entry, k), k)):
            members = g[key]
            pos = (done + len(members) / 2.0) / n
            split = next((s for b, s in bounds if pos < b and fractions[s] > 0), None)
            if split is None:
                split = [s for s in SPLITS if fractions[s] > 0][-1]
            for i in members:
                out[i] = split
            done += len(members)
    return out  # type: ignore[return-value]


def dedupe(sha1s: Iterable[Optional[str]]) -> List[Optional[int]]:
    """For each item, None if it is the first with its hash (kept), else the index of the kept copy."""
    first: Dict[str, int] = {}
    out: List[Optional[int]] = []
    for i, h in enumerate(sha1s):
        if h is None:
            out.append(None)
        elif h in first:
            out.append(first[h])
        else:
            first[h] = i
            out.append(None)
    return out


def mix_order(keys: Sequence[Tuple[str, str]], seed: int) -> List[int]:
    """Indices of ``(entry, source)`` pairs in a seeded shuffle: every shard is a fair sample of its split."""
    return sorted(range(len(keys)), key=lambda i: (stable_hash(seed, "mix", *keys[i]), keys[i]))


def sample_key(entry: str, source: str) -> str:
    """Unique, dot-free, short (tar names stay under 100 bytes) key of a sample."""
    digest = hashlib.sha1(f"{entry}\x1f{source}".encode("utf-8")).hexdigest()[:20]
    return f"{entry[:60]}_{digest}"
