"""corpora -> adapters (records) -> decode/resample in worker processes -> dedupe + split -> shard writer -> index.

Resumability (kill -9 included) comes from two idempotent stages under ``OUT/.staging/``:

1. **decode**: records are cut into fixed batches (their size depends only on the record count); a worker decodes a
   batch into ``decoded/batch-NNNNNN.bin`` (encoded audio, concatenated) and commits it by renaming
   ``batch-NNNNNN.json`` (per record: offset/length/sha1/frames, or the skip reason; the .bin's size) into place.
   A restarted build decodes only the batches without a committed ``.json`` whose .bin has the recorded size.
2. **write**: dedup, splits, mixing order and the cut into shards are pure functions of the committed results and the
   seed, so a restarted build plans exactly the same shards. Each shard is written to a hidden temporary name,
   fsynced and renamed; a sidecar in ``.staging/shards/`` records its sha256 and size, and a complete shard is
   reused as it is. Tar members carry fixed metadata (mtime 0, uid 0, mode 0644), so shards are byte-identical
   between runs.

``build_report.json`` is written last and carries the build's fingerprint (config minus ``workers`` + the record
listing): running a finished build again returns its report and writes nothing. Staging is removed at the end.
Malformed protocol lines are skipped when the corpora are scanned (before any of this) and only reported; the
listing holds the records that were kept, so the same inputs always give the same fingerprint and report.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
import shutil
import tarfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .config import BuildConfig
from .configuration import ConfigError, to_dict
from .corpora import prepare_records
from .corpora.common import LineProblems
# the worker side lives in decode.py, so spawned workers import only numpy + soundfile (not OmegaConf, adapters...)
from .decode import _TEST_DELAY_ENV, _atomic_write, _decode_batch, _init_worker, _test_delay  # noqa: F401
from .schema import SPLITS, SampleMeta
from .split import assign_splits, cap_per_label, dedupe, mix_order, sample_key

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total); stages: "decode" (records), "write" (samples)

STAGING = ".staging"
REPORT = "build_report.json"
INDEX = "index.json"
TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK


# ----------------------------------------------------------------------------------------------------------- helpers
def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _batch_size(n_records: int) -> int:
    """Depends on the record count only (never on ``workers``), so a resumed build sees the same batches."""
    return max(8, min(256, n_records // 64))


@contextmanager
def _build_lock(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / ".build.lock", "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise RuntimeError(f"another build is running in {out} (lock {out / '.build.lock'})") from None
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


# ------------------------------------------------------------------------------------------------- decode stage
def _run_decode(tasks: list, workers: int, progress: Optional[Progress], done: int, total: int) -> None:
    def tick(n):
        nonlocal done
        done += n
        if progress:
            progress("decode", done, total)

    if progress:
        progress("decode", done, total)
    if not tasks:
        return
    if workers <= 1:
        for t in tasks:
            tick(_decode_batch(t)[1])
        return
    # spawn: no inherited threads or torch state; a worker that dies (OOM killer...) raises BrokenProcessPool
    # instead of hanging the build, and everything committed so far is kept for the next run.
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=ctx, initializer=_init_worker,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_decode_batch, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                tick(fut.result()[1])
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# -------------------------------------------------------------------------------------------------- tar writing
def _tar_member_size(n: int) -> int:
    return TAR_BLOCK + (n + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK


def _tar_size(member_bytes: int) -> int:
    """Size of a tar holding members totalling ``member_bytes`` (headers included): end blocks + record padding."""
    raw = member_bytes + 2 * TAR_BLOCK
    return (raw + TAR_RECORD - 1) // TAR_RECORD * TAR_RECORD


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


class _Staged:
    """Random access to the encoded audio in the staging batches (a few open files at a time)."""

    def __init__(self, stage_dir: Path):
        self.dir = stage_dir
        self.files: "OrderedDict[int, object]" = OrderedDict()

    def read(self, batch: int, offset: int, length: int) -> bytes:
        fh = self.files.pop(batch, None)
        if fh is None:
            fh = open(self.dir / f"batch-{batch:06d}.bin", "rb")
            if len(self.files) >= 64:
                self.files.popitem(last=False)[1].close()
        self.files[batch] = fh
        fh.seek(offset)
        data = fh.read(length)
        if len(data) != length:
            raise RuntimeError(f"staging batch {batch} is shorter than its index says; delete {self.dir} and rebuild")
        return data

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.files.clear()


def _write_shard(path: Path, members: List[tuple], staged: _Staged) -> tuple:
    """members: (name, json bytes | (batch, offset, length)) in order. Returns (bytes, sha256)."""
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, payload in members:
                data = payload if isinstance(payload, bytes) else staged.read(*payload)
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        fh.flush()
        os.fsync(fh.fileno())
    digest = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    size = tmp.stat().st_size
    os.replace(tmp, path)
    return size, digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- the build
def _fingerprint(cfg: BuildConfig, listing: list) -> str:
    conf = to_dict(cfg)
    conf.pop("workers", None)
    h = hashlib.sha256()
    h.update(json.dumps(conf, sort_keys=True).encode())
    for item in listing:
        h.update(json.dumps(item, sort_keys=True).encode())
    return h.hexdigest()


def scan_corpora(cfg: BuildConfig):
    """Run every adapter (all config/protocol errors surface here, before anything is written).

    Returns a list of (entry, records, found, capped, problems); ``problems`` holds the entry's malformed protocol
    lines, which were skipped (each already logged) and go into the build report."""
    out = []
    for i, entry in enumerate(cfg.corpora):
        problems = LineProblems(entry.name)
        records = prepare_records(entry, f"corpora[{i}]", problems)
        if problems.count:
            log.warning("entry %s: skipped %d malformed protocol line(s); they are listed in %s", entry.name,
                        problems.count, REPORT)
        if not records:
            raise ConfigError(f"config key 'corpora[{i}]': adapter {entry.adapter!r} found no samples for entry "
                              f"{entry.name!r} under {entry.root}")
        found = len(records)
        records, capped = cap_per_label(records, entry.max_per_label, cfg.seed, entry.name)
        out.append((entry, records, found, capped, problems))
    return out


def build_shards(cfg: BuildConfig, progress: Optional[Progress] = None, *, batch_size: Optional[int] = None) -> dict:
    """Build (or resume, or confirm) the shards of ``cfg``; returns the build report (also in OUT/build_report.json).

    Raises ConfigError for configuration/corpus problems before writing anything.
    """
    scanned = scan_corpora(cfg)
    flat = [(e, r) for e, recs, *_ in scanned for r in recs]
    listing = [(e.name, r.source, r.label, r.speaker, r.language, r.attack, r.split) for e, r in flat]
    fp = _fingerprint(cfg, listing)
    out = Path(os.path.expanduser(cfg.out_dir))

    report_path = out / REPORT
    if report_path.is_file():
        try:
            old = json.loads(report_path.read_text())
        except ValueError:
            old = {}
        if old.get("fingerprint") == fp and _shards_present(out):
            log.info("build in %s is already complete; nothing to do", out)
            return old
        if old.get("fingerprint") not in (None, fp):
            raise ConfigError(f"out_dir {out} already holds a finished build of a different config or corpus listing; "
                              f"choose another out_dir or delete that one")

    with _build_lock(out):
        return _build(cfg, scanned, flat, fp, out, progress, batch_size)


def _batch_committed(stage_dir: Path, b: int, n_records: int) -> bool:
    meta, data = stage_dir / f"batch-{b:06d}.json", stage_dir / f"batch-{b:06d}.bin"
    try:
        commit = json.loads(meta.read_text())
        return len(commit["records"]) == n_records and data.stat().st_size == commit["bin_bytes"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _shards_present(out: Path) -> bool:
    for split in SPLITS:
        idx = out / split / INDEX
        try:
            shards = json.loads(idx.read_text()).get("shards", [])
        except (OSError, ValueError):
            return False
        for s in shards:
            p = out / split / s["name"]
            if not p.is_file() or p.stat().st_size != s["bytes"]:
                return False
    return True


def _build(cfg, scanned, flat, fp, out: Path, progress, batch_size) -> dict:
    staging = out / STAGING
    bs = batch_size or _batch_size(len(flat))
    stage_fp = f"{fp}:{bs}"
    fp_file = staging / "fingerprint"
    if staging.exists() and (not fp_file.is_file() or fp_file.read_text().strip() != stage_fp):
        log.info("discarding the staging of an earlier, different build in %s", staging)
        shutil.rmtree(staging)
    (staging / "decoded").mkdir(parents=True, exist_ok=True)
    (staging / "shards").mkdir(parents=True, exist_ok=True)
    if not fp_file.is_file():
        _atomic_write(fp_file, stage_fp.encode())

    # ---- decode (skipping committed batches)
    stage_dir = staging / "decoded"
    n_batches = (len(flat) + bs - 1) // bs
    tasks, done = [], 0
    for b in range(n_batches):
        chunk = flat[b * bs:(b + 1) * bs]
        if _batch_committed(stage_dir, b, len(chunk)):
            done += len(chunk)
            continue
        tasks.append((b, [r.path for _, r in chunk], cfg.audio.sample_rate, cfg.audio.format, cfg.audio.max_seconds,
                      str(stage_dir)))
    if tasks:
        log.info("decoding %d of %d records in %d batches with %d worker(s)", len(flat) - done, len(flat), len(tasks),
                 max(1, cfg.workers))
    _run_decode(tasks, cfg.workers, progress, done, len(flat))

    results = []
    for b in range(n_batches):
        metas = json.loads((stage_dir / f"batch-{b:06d}.json").read_text())["records"]
        for m in metas:
            m["batch"] = b
        results.extend(metas)
    assert len(results) == len(flat)

    # ---- report counters, dedup, splits
    per: Dict[str, dict] = OrderedDict()
    for entry, recs, found, capped, problems in scanned:
        per[entry.name] = {"adapter": entry.adapter, "attack_type": entry.attack_type, "found": found,
                           "capped": capped, "written": 0, "duplicates": 0, "skipped": {}, "skipped_files": [],
                           "bad_protocol_lines": problems.count, "bad_protocol_line_list": list(problems.items),
                           "by_split": {s: 0 for s in SPLITS}, "by_label": {}}
    skipped_all, dup_list = [], []
    for (entry, rec), m in zip(flat, results):
        if not m["ok"]:
            c = per[entry.name]
            c["skipped"][m["reason"]] = c["skipped"].get(m["reason"], 0) + 1
            item = {"source": rec.source, "reason": m["reason"], "detail": m["detail"]}
            c["skipped_files"].append(item)
            skipped_all.append({"corpus": entry.name, "path": rec.path, **item})
    dup_of = dedupe(m["sha1"] if m["ok"] else None for m in results)
    kept = []
    for i, ((entry, rec), m) in enumerate(zip(flat, results)):
        if not m["ok"]:
            continue
        if dup_of[i] is not None:
            per[entry.name]["duplicates"] += 1
            ke, kr = flat[dup_of[i]]
            dup_list.append({"corpus": entry.name, "source": rec.source, "kept_corpus": ke.name,
                             "kept_source": kr.source, "audio_sha1": m["sha1"]})
            continue
        kept.append(i)
    splits = assign_splits([(flat[i][0].name, flat[i][1], flat[i][0].split) for i in kept],
                           {"train": cfg.splits.train, "val": cfg.splits.val, "test": cfg.splits.test}, cfg.seed)

    # ---- plan shards per split
    sr, fmt = cfg.audio.sample_rate, cfg.audio.format
    plans: Dict[str, list] = {}
    for split in SPLITS:
        idx = [i for i, s in zip(kept, splits) if s == split]
        order = mix_order([(flat[i][0].name, flat[i][1].source) for i in idx], cfg.seed)
        samples = []
        for j in order:
            i = idx[j]
            entry, rec = flat[i]
            m = results[i]
            meta = SampleMeta(
                key=sample_key(entry.name, rec.source), label=rec.label, attack_type=entry.attack_type,
                attack=rec.attack, corpus=entry.name, language=rec.language or entry.language, speaker=rec.speaker,
                duration=round(m["frames"] / sr, 6), sample_rate=sr, source=rec.source, audio_sha1=m["sha1"],
                extra=dict(rec.extra))
            samples.append((i, meta))
        shards, cur, cur_bytes = [], [], 0
        for i, meta in samples:
            jb = json.dumps(meta.to_json_dict(), ensure_ascii=False, sort_keys=False).encode("utf-8")
            m = results[i]
            size = _tar_member_size(m["length"]) + _tar_member_size(len(jb))
            if cur and (len(cur) >= cfg.shard.max_samples or _tar_size(cur_bytes + size) > cfg.shard.max_bytes):
                shards.append(cur)
                cur, cur_bytes = [], 0
            cur.append((i, meta, jb))
            cur_bytes += size
        if cur:
            shards.append(cur)
        plans[split] = shards

    # ---- write shards (reusing complete ones)
    staged = _Staged(stage_dir)
    total = sum(len(s) for sh in plans.values() for s in sh)
    written = 0
    if progress:
        progress("write", 0, total)
    indexes = {}
    try:
        for split, shards in plans.items():
            split_dir = out / split
            split_dir.mkdir(parents=True, exist_ok=True)
            side_dir = staging / "shards" / split
            side_dir.mkdir(parents=True, exist_ok=True)
            entries = []
            for n, shard in enumerate(shards):
                name = f"shard-{n:06d}.tar"
                path, side = split_dir / name, side_dir / f"{name}.json"
                plan_id = hashlib.sha1(json.dumps([meta.key for _, meta, _ in shard]).encode()).hexdigest()
                info = json.loads(side.read_text()) if side.is_file() else None
                if not (info and info.get("plan") == plan_id and path.is_file()
                        and path.stat().st_size == info["bytes"]):
                    members = []
                    for i, meta, jb in shard:
                        m = results[i]
                        members.append((f"{meta.key}.{fmt}", (m["batch"], m["offset"], m["length"])))
                        members.append((f"{meta.key}.json", jb))
                    size, sha = _write_shard(path, members, staged)
                    info = {"plan": plan_id, "bytes": size, "sha256": sha, "samples": len(shard)}
                    _atomic_write(side, json.dumps(info).encode())
                    _test_delay()
                entries.append({"name": name, "samples": len(shard), "bytes": info["bytes"], "sha256": info["sha256"]})
                written += len(shard)
                if progress:
                    progress("write", written, total)
            # shards of an earlier, larger plan would mislead anyone globbing the folder
            wanted = {e["name"] for e in entries}
            for stale in list(split_dir.glob("shard-*.tar")) + list(split_dir.glob(".shard-*.partial")):
                if stale.name not in wanted:
                    stale.unlink()
            indexes[split] = entries
    finally:
        staged.close()

    # ---- per-split index, report (the completion marker), cleanup
    totals_all = {"found": 0, "capped": 0, "written": 0, "duplicates": 0, "skipped": 0, "bad_protocol_lines": 0,
                  "seconds": 0.0}
    split_summary = {}
    for split, shards in plans.items():
        t = {"samples": 0, "seconds": 0.0, "by_label": {}, "by_attack_type": {}, "by_corpus": {}}
        for shard in shards:
            for i, meta, _ in shard:
                t["samples"] += 1
                t["seconds"] += meta.duration
                for k, v in (("by_label", meta.label), ("by_attack_type", meta.attack_type),
                             ("by_corpus", meta.corpus)):
                    t[k][v] = t[k].get(v, 0) + 1
                c = per[meta.corpus]
                c["written"] += 1
                c["by_split"][split] += 1
                c["by_label"][meta.label] = c["by_label"].get(meta.label, 0) + 1
        t["seconds"] = round(t["seconds"], 3)
        _atomic_write(out / split / INDEX, _json_bytes({"split": split, "shards": indexes[split], "totals": t}))
        split_summary[split] = {"samples": t["samples"], "shards": len(indexes[split]), "seconds": t["seconds"]}
        totals_all["seconds"] += t["seconds"]
    for c in per.values():
        totals_all["found"] += c["found"]
        totals_all["capped"] += c["capped"]
        totals_all["written"] += c["written"]
        totals_all["duplicates"] += c["duplicates"]
        totals_all["skipped"] += sum(c["skipped"].values())
        totals_all["bad_protocol_lines"] += c["bad_protocol_lines"]
    totals_all["seconds"] = round(totals_all["seconds"], 3)
    conf = to_dict(cfg)
    conf.pop("workers", None)
    report = {"fingerprint": fp, "out_dir": str(out), "config": conf, "totals": totals_all, "splits": split_summary,
              "corpora": per, "skipped": skipped_all, "duplicates": dup_list}
    _atomic_write(out / REPORT, _json_bytes(report))
    shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d samples (%.1f s of audio) into %s", totals_all["written"], totals_all["seconds"], out)
    return report
