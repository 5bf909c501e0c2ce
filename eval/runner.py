"""The evaluation run: shards -> per-rank windows -> decode -> chunk -> bucket -> batch -> model -> scores,
gathered once on rank 0 -> metrics -> plots -> report.

Works single-process, or under ``torchrun`` / ``accelerate launch`` (one process per GPU or several CPU
processes): each rank scores a disjoint set of windows, and rank 0 gathers everything with one collective
(gloo, so it also works with CUDA ranks) and writes the outputs.
"""
from __future__ import annotations

import datetime
import logging
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from eval.config import EvalConfig
from eval.data import (
    MemberError,
    Unit,
    chunk_sample,
    iter_unit_samples,
    list_shards,
    make_batches,
    make_units,
    prefetch,
    units_for_rank,
)
from eval.scoring import Scorer, load_detector, pick_device

log = logging.getLogger(__name__)

#: Metadata columns copied from the shard JSON into scores.csv (after key, score).
META_COLUMNS = ("label", "attack_type", "corpus", "attack", "language", "speaker", "duration", "source")


@dataclass
class RankResult:
    rank: int
    rows: List[dict] = field(default_factory=list)
    errors: List[dict] = field(default_factory=list)
    samples: int = 0
    audio_seconds: float = 0.0  # audio actually scored (after max_seconds)
    padded_samples: int = 0
    real_samples: int = 0
    batches: int = 0
    seconds: float = 0.0  # wall time of decode + scoring on this rank
    model_seconds: float = 0.0


def dist_env() -> tuple:
    """``(rank, world, local_rank)`` from torchrun / accelerate launch environment variables."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _init_dist(world: int) -> bool:
    if world <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        # gloo: the only collective is one gather of Python objects, and gloo serves CPU and CUDA ranks alike.
        dist.init_process_group(backend="gloo", timeout=datetime.timedelta(hours=6))
        return True
    return False


def score_units(
    cfg: EvalConfig,
    scorer: Scorer,
    units: List[Unit],
    rank: int = 0,
    progress: Optional[Callable[[int, float], None]] = None,
) -> RankResult:
    """Score every sample of ``units``: one row per sample ``{key, score, <meta>}`` (score = mean chunk logit)."""
    sc, sr = cfg.scoring, cfg.data.sample_rate
    res = RankResult(rank=rank)
    chunk_samples = max(1, int(round(sc.chunk_seconds * sr)))
    batch_samples = max(1, int(round(sc.batch_seconds * sr)))
    errors: List[MemberError] = []
    by_shard: Dict[str, List[Unit]] = defaultdict(list)
    for u in units:
        by_shard[u.shard].append(u)
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(sc.decode_threads, thread_name_prefix="eval-decode") if sc.decode_threads > 1 else None

    def windows():
        for shard, wins in by_shard.items():
            for _, samples in iter_unit_samples(shard, wins, sc.window, sr, sc.max_seconds, errors, pool=pool):
                yield wins[0].shard_index, samples

    try:
        _score_windows(prefetch(windows(), sc.prefetch), scorer, sc, sr, chunk_samples, batch_samples, res, progress)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    res.errors = [e.as_dict() for e in errors]
    res.seconds = time.perf_counter() - t0
    return res


def _score_windows(stream, scorer, sc, sr, chunk_samples, batch_samples, res, progress) -> None:
    """Chunk, batch and score each window's samples; one row per sample (score = mean chunk logit)."""
    for shard_index, samples in stream:
        # Items are tagged with the sample's position in the window (keys may repeat in a corrupt split).
        items = []
        for j, s in enumerate(samples):
            for it in chunk_sample(s, chunk_samples):
                it.key = f"{j:09d}"
                items.append(it)
        sums: Dict[str, float] = defaultdict(float)
        n_chunks: Dict[str, int] = defaultdict(int)
        for batch in make_batches(items, batch_samples, sc.max_batch_size, sc.bucketing, sc.padding):
            tm = time.perf_counter()
            logits, padded, real = scorer.score_batch(batch)
            res.model_seconds += time.perf_counter() - tm
            res.padded_samples += padded
            res.real_samples += real
            res.batches += 1
            for it, z in zip(batch, logits):
                sums[it.key] += float(z)
                n_chunks[it.key] += 1
        for j, s in enumerate(samples):
            tag = f"{j:09d}"
            row = {"key": s.key, "score": sums[tag] / n_chunks[tag], "chunks": n_chunks[tag],
                   "_order": (shard_index, s.position)}
            for c in META_COLUMNS:
                row[c] = s.meta.get(c)
            row["duration"] = s.meta.get("duration", s.duration)
            res.rows.append(row)
            res.audio_seconds += s.wave.size / sr
        res.samples += len(samples)
        if progress is not None:
            progress(len(samples), sum(s.wave.size for s in samples) / sr)


def gather_results(res: RankResult, world: int) -> Optional[List[RankResult]]:
    """All ranks' results on rank 0 (None elsewhere), with one gather."""
    if world <= 1:
        return [res]
    import torch.distributed as dist

    out = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(res, out, dst=0)
    return out


def merge_results(parts: List[RankResult]) -> dict:
    """Concatenate ranks' rows (sorted by key), checking that no sample was scored twice."""
    rows, errors = [], []
    for p in parts:
        rows.extend(p.rows)
        errors.extend(p.errors)
    rows.sort(key=lambda r: (r["key"], r.get("_order", (0, 0))))  # the same order whatever the process count
    dup = sorted({a["key"] for a, b in zip(rows, rows[1:]) if a["key"] == b["key"]})
    stats = {
        "processes": len(parts),
        "samples": sum(p.samples for p in parts),
        "audio_seconds": sum(p.audio_seconds for p in parts),
        "batches": sum(p.batches for p in parts),
        "padded_samples": sum(p.padded_samples for p in parts),
        "real_samples": sum(p.real_samples for p in parts),
        "wall_seconds_max_rank": max(p.seconds for p in parts),
        "model_seconds": sum(p.model_seconds for p in parts),
    }
    padded = stats["padded_samples"]
    stats["padding_fraction"] = (1.0 - stats["real_samples"] / padded) if padded else 0.0
    wall = stats["wall_seconds_max_rank"]
    stats["audio_seconds_per_second"] = stats["audio_seconds"] / wall if wall > 0 else None
    return {"rows": rows, "errors": errors, "duplicate_keys": dup, "stats": stats}


def run_eval(cfg: EvalConfig, progress: Optional[Callable[[int, float], None]] = None) -> Optional[dict]:
    """Run the evaluation; on rank 0 write the outputs and return ``{"metrics", "out_dir", ...}``, else None."""
    from eval.report import write_outputs

    rank, world, local_rank = dist_env()
    created = _init_dist(world)
    try:
        paths, counts = list_shards(cfg.data.shards, cfg.data.split)
        units = make_units(paths, counts, cfg.scoring.window)
        device = pick_device(cfg.scoring.device, local_rank)
        model, meta = load_detector(cfg.model)
        model.export_meta = meta
        scorer = Scorer(model, device, cfg.scoring.precision)
        mine = units_for_rank(units, rank, world)
        log.info("rank %d/%d: %d of %d windows on %s", rank, world, len(mine), len(units), device)
        res = score_units(cfg, scorer, mine, rank=rank, progress=progress)
        parts = gather_results(res, world)
        if rank != 0:
            return None
        merged = merge_results(parts)
        merged["stats"]["total_samples_in_index"] = sum(c for c in counts if c is not None) if all(
            c is not None for c in counts) else None
        return write_outputs(cfg, merged, meta)
    finally:
        if created:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
