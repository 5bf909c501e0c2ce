"""Re-read every shard of a build and check it against its index.json.

Checks: every indexed shard exists with the indexed size and sha256; no unindexed ``shard-*.tar`` lies beside
them; each tar holds exactly pairs ``<key>.<flac|wav>`` + ``<key>.json`` with dot-free keys, unique in the split;
the JSON has every contract field with allowed values; the audio decodes, and its 16-bit PCM hashes to
``audio_sha1`` with the stated duration and sample rate; the sample counts and totals match the index; no audio
is in two splits. Library code: returns the problems, the CLI turns them into an exit code.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from .audio import AudioError, pcm_sha1, read_audio
from .schema import ATTACK_TYPES, LABELS, SAMPLE_FIELDS, SPLITS

AUDIO_EXT = ("flac", "wav")


@dataclass
class VerifyResult:
    splits: int = 0
    shards: int = 0
    samples: int = 0
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sample(where: str, key: str, audio: Optional[tuple], meta_bytes: Optional[bytes], decode: bool,
                  problems: List[str]) -> Optional[dict]:
    if audio is None:
        problems.append(f"{where}: sample {key!r} has no .flac/.wav member")
    if meta_bytes is None:
        problems.append(f"{where}: sample {key!r} has no .json member")
        return None
    try:
        meta = json.loads(meta_bytes)
    except ValueError as exc:
        problems.append(f"{where}: {key}.json is not valid JSON ({exc})")
        return None
    missing = [f for f in SAMPLE_FIELDS if f not in meta]
    if missing:
        problems.append(f"{where}: {key}.json lacks fields {missing}")
        return meta
    if meta["key"] != key:
        problems.append(f"{where}: {key}.json names key {meta['key']!r}")
    if meta["label"] not in LABELS:
        problems.append(f"{where}: {key}: label {meta['label']!r} not in {LABELS}")
    if meta["attack_type"] not in ATTACK_TYPES:
        problems.append(f"{where}: {key}: attack_type {meta['attack_type']!r} not in {ATTACK_TYPES}")
    if audio is not None and decode:
        ext, data = audio
        try:
            pcm, sr = read_audio(io.BytesIO(data), dtype="int16")
        except AudioError as exc:
            problems.append(f"{where}: {key}.{ext} does not decode ({exc})")
            return meta
        pcm = pcm[:, 0] if pcm.shape[1] == 1 else pcm.mean(axis=1).astype("int16")
        if sr != meta["sample_rate"]:
            problems.append(f"{where}: {key}.{ext} is {sr} Hz, json says {meta['sample_rate']}")
        if pcm_sha1(pcm) != meta["audio_sha1"]:
            problems.append(f"{where}: {key}.{ext} audio does not match its audio_sha1")
        if abs(len(pcm) / sr - float(meta["duration"])) > 1e-3:
            problems.append(f"{where}: {key}.{ext} lasts {len(pcm) / sr:.3f} s, json says {meta['duration']}")
    return meta


def _read_shard(path: Path, where: str, decode: bool, problems: List[str]) -> List[dict]:
    """Stream the tar: a sample's members are adjacent, so only one sample is held in memory at a time."""
    metas: List[dict] = []
    seen = set()
    key, parts = None, {}

    def finish():
        if key is None:
            return
        audio = next(((e, parts[e]) for e in AUDIO_EXT if e in parts), None)
        meta = _check_sample(where, key, audio, parts.get("json"), decode, problems)
        if meta is not None:
            metas.append(meta)

    try:
        with tarfile.open(path, "r:") as tar:
            for ti in tar:
                if not ti.isfile():
                    problems.append(f"{where}: member {ti.name!r} is not a regular file")
                    continue
                base = ti.name.rsplit("/", 1)[-1]
                if "." not in base:
                    problems.append(f"{where}: member {ti.name!r} has no extension")
                    continue
                k, ext = base.split(".", 1)
                if ext not in AUDIO_EXT + ("json",):
                    problems.append(f"{where}: unexpected member {ti.name!r}")
                    continue
                if k != key:
                    finish()
                    if k in seen:
                        problems.append(f"{where}: members of sample {k!r} are not adjacent")
                    seen.add(k)
                    key, parts = k, {}
                if ext in parts or (ext != "json" and any(e in parts for e in AUDIO_EXT)):
                    problems.append(f"{where}: sample {k!r} has two {ext} members")
                parts[ext] = tar.extractfile(ti).read()
            finish()
    except (tarfile.TarError, OSError, EOFError) as exc:
        problems.append(f"{where}: cannot read the tar ({exc})")
    return metas


def verify_shards(root, decode: bool = True, progress: Optional[Callable[[int, int], None]] = None) -> VerifyResult:
    """Check every ``<root>/<split>/index.json`` and its shards; ``decode=False`` skips the audio hash checks."""
    root = Path(root)
    res = VerifyResult()
    split_dirs = [root / s for s in SPLITS if (root / s / "index.json").is_file()]
    if not split_dirs:
        res.problems.append(f"{root}: no <split>/index.json found (expected {', '.join(SPLITS)})")
        return res
    indexes = {}
    for d in split_dirs:
        try:
            indexes[d.name] = json.loads((d / "index.json").read_text())
        except ValueError as exc:
            res.problems.append(f"{d / 'index.json'}: not valid JSON ({exc})")
    total = sum(len(ix.get("shards", [])) for ix in indexes.values())
    done = 0
    seen_audio = {}
    for split, ix in indexes.items():
        res.splits += 1
        d = root / split
        listed = {s["name"] for s in ix.get("shards", [])}
        for extra in sorted(p.name for p in d.glob("shard-*.tar")):
            if extra not in listed:
                res.problems.append(f"{d / extra}: shard is not in index.json")
        keys = set()
        counts = {"samples": 0, "seconds": 0.0, "by_label": {}, "by_attack_type": {}, "by_corpus": {}}
        for s in ix.get("shards", []):
            path = d / s["name"]
            where = f"{split}/{s['name']}"
            res.shards += 1
            if not path.is_file():
                res.problems.append(f"{where}: missing")
                continue
            if path.stat().st_size != s["bytes"]:
                res.problems.append(f"{where}: {path.stat().st_size} bytes, index says {s['bytes']}")
            if _sha256(path) != s["sha256"]:
                res.problems.append(f"{where}: sha256 differs from index.json")
            metas = _read_shard(path, where, decode, res.problems)
            if len(metas) != s["samples"]:
                res.problems.append(f"{where}: {len(metas)} samples, index says {s['samples']}")
            for m in metas:
                res.samples += 1
                if m.get("key") in keys:
                    res.problems.append(f"{where}: key {m.get('key')!r} appears twice in split {split}")
                keys.add(m.get("key"))
                h = m.get("audio_sha1")
                if h in seen_audio and seen_audio[h][0] != split:
                    res.problems.append(f"{where}: audio of {m.get('key')!r} is also in split {seen_audio[h][0]} "
                                        f"({seen_audio[h][1]})")
                seen_audio.setdefault(h, (split, m.get("key")))
                counts["samples"] += 1
                counts["seconds"] += float(m.get("duration", 0))
                for k, f in (("by_label", "label"), ("by_attack_type", "attack_type"), ("by_corpus", "corpus")):
                    counts[k][m.get(f)] = counts[k].get(m.get(f), 0) + 1
            done += 1
            if progress:
                progress(done, total)
        totals = ix.get("totals", {})
        for k in ("samples", "by_label", "by_attack_type", "by_corpus"):
            if k in totals and totals[k] != counts[k]:
                res.problems.append(f"{split}/index.json: totals.{k} = {totals[k]}, shards hold {counts[k]}")
        if "seconds" in totals and abs(float(totals["seconds"]) - counts["seconds"]) > 0.01 + 1e-6 * counts["seconds"]:
            res.problems.append(f"{split}/index.json: totals.seconds = {totals['seconds']}, shards hold "
                                f"{counts['seconds']:.3f}")
    return res
