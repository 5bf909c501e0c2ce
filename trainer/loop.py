"""The training loop, readable top to bottom: fetch -> agree -> forward -> loss -> backward -> clip -> step -> log ->
validate -> checkpoint; at the end, export ``OUT/model``.

Components (each one module, built from the typed config): ``data`` (stream + position), ``checkpoint`` (atomic,
committed, retained), ``optim`` (AdamW + schedule), ``metrics_log`` (metrics.jsonl), ``preemption`` (signal flag).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from eval.metrics import accuracy, eer
from shard_builder.configuration import ConfigError, to_dict, to_yaml
from trainer.augment import Augmenter
from trainer.checkpoint import CheckpointManager, complete_checkpoints, write_atomic
from trainer.config import TrainConfig
from trainer.data import (CorruptDataError, DataError, ResumeMismatch, ShardsNotFound, StreamOptions, TrainStream,
                          class_balance_weights, list_shards)
from trainer.metrics_log import MetricsLog
from trainer.model import EXPORT_WEIGHTS, Detector, average_checkpoints
from trainer.optim import build_optimizer, lr_factor, set_lr
from trainer.preemption import PreemptionFlag

log = logging.getLogger(__name__)

FINISHED, PREEMPTED = "finished", "preempted"
STATE_FILE = "trainer_state-rank{:05d}.json"


def build_model(cfg: TrainConfig) -> Detector:
    """A fresh detector per ``cfg.model``, or the exported one at ``cfg.init_from`` with this run's training options."""
    if cfg.init_from is None:
        return Detector(cfg.model)
    model = Detector.from_pretrained(cfg.init_from)
    for key in ("pooling", "layer_weighting"):
        if getattr(model.config, key) != getattr(cfg.model, key):
            raise ConfigError(f"config key 'model.{key}': {getattr(cfg.model, key)!r} differs from the "
                              f"{getattr(model.config, key)!r} of init_from={cfg.init_from}")
    model.config = replace(model.config, dropout=cfg.model.dropout, mask_time_prob=cfg.model.mask_time_prob,
                           freeze_feature_encoder=cfg.model.freeze_feature_encoder)
    model.dropout.p = cfg.model.dropout
    model.backbone.config.mask_time_prob = cfg.model.mask_time_prob
    if cfg.model.freeze_feature_encoder:
        model.backbone.freeze_feature_encoder()
    log.info("initialised from the exported model %s", cfg.init_from)
    return model


def train(cfg: TrainConfig, preempt: Optional[PreemptionFlag] = None,
          progress: Optional[Callable[[int, int, dict], None]] = None) -> str:
    """Train (or resume) per ``cfg``. Returns ``"finished"`` or ``"preempted"`` (checkpoint saved: rerun to resume)."""
    preempt = preempt or PreemptionFlag()
    out = Path(cfg.output_dir)
    tc = cfg.train
    if tc.deterministic:
        make_deterministic()
    acc = build_accelerator(cfg)
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    deepspeed = acc.state.deepspeed_plugin is not None

    # -- model, optimizer ------------------------------------------------------------------------------------------
    seed_everything(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg)
    optimizer = build_optimizer(model, tc.lr, tc.head_lr, tc.weight_decay)
    if deepspeed:
        configure_deepspeed(acc, cfg)
    model, optimizer = acc.prepare(model, optimizer)
    # DDP's module is the model itself; accelerate's unwrap_model would import deepspeed (seconds per process)
    raw = acc.unwrap_model(model) if deepspeed else getattr(model, "module", model)
    # DeepSpeed bf16/fp16 casts the weights instead of autocasting: the input must follow them
    in_dtype = next(raw.parameters()).dtype
    keep_model_out_of_accelerate_state(acc)
    seed_everything(cfg.seed * 1000 + rank)  # per-rank randomness (e.g. WavLM's time masking)

    # -- data ------------------------------------------------------------------------------------------------------
    sr = cfg.data.sample_rate
    weights = dict(cfg.data.weights)
    if cfg.data.balance_classes:
        weights = class_balance_weights(cfg.data.shards, cfg.data.split, weights)
        log.info("class balance: mix weights %s", weights)
    opts = StreamOptions(
        seed=cfg.seed, batch_size=tc.batch_size, sample_rate=sr, train=True,
        crop_samples=int(round(cfg.data.crop_seconds * sr)), weights=weights,
        on_corrupt=cfg.data.on_corrupt, world=world, rank=rank, num_workers=cfg.data.num_workers,
        shared_buffers=cfg.data.shared_buffers)
    train_shards = list_shards(cfg.data.shards, cfg.data.split)
    if len(train_shards) < world:
        raise ShardsNotFound(f"{cfg.data.shards}/{cfg.data.split} has {len(train_shards)} shard(s) for {world} "
                             f"processes: every process needs at least one (build smaller shards or use fewer processes)")
    stream = TrainStream(train_shards, opts, Augmenter(cfg.augment, sr))
    val_shards = list_shards(cfg.data.shards, cfg.data.val_split) if cfg.data.val_split else None

    # -- resume ----------------------------------------------------------------------------------------------------
    ckpt = CheckpointManager(out / "checkpoints", cfg.checkpoint.keep_last, acc.wait_for_everyone, main)
    ckpt.clean_incomplete()
    acc.wait_for_everyone()
    step, best, last_val = 0, None, None
    resume_from = ckpt.latest()
    if resume_from is not None:
        step, best = load_checkpoint(resume_from, acc, raw, stream, cfg, deepspeed)
        log.info("resumed from %s (step %d, epoch %d)", resume_from, step, stream.epoch)
    metrics = MetricsLog(out / "metrics.jsonl", main, resume_step=step)
    if tc.trackers:
        acc.init_trackers("train", config=flat_hparams(cfg))
    last_saved = step if resume_from is not None else -1

    def save(at_step: int) -> None:
        ckpt.save(at_step, lambda d: write_checkpoint(d, at_step, acc, raw, stream, cfg, best), world)
        log.info("checkpoint step-%08d committed", at_step)

    # -- loop ------------------------------------------------------------------------------------------------------
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(tc.pos_weight, device=acc.device))
    model.train()
    t_log, samples_log, loss_acc, n_acc = time.time(), 0, torch.zeros((), device=acc.device), 0
    write_run_state(out, main, "running", step)
    wait_s = busy_s = 0.0  # time blocked fetching batches / time in steps, since the last log row
    while step < tc.max_steps:
        t_step = time.perf_counter()
        batches = stream.fetch(tc.grad_accum)
        t_fetched = time.perf_counter()
        stop, exhausted = agree(acc, preempt.is_set(), batches is None)
        if stop:  # every rank saw the flag at the same step boundary: all save, then leave
            if last_saved != step:
                save(step)
            stream.close()
            write_run_state(out, main, PREEMPTED, step, signal=preempt.name())
            acc.end_training()
            return PREEMPTED
        if exhausted:  # some rank has no full batch left: the epoch ends on every rank
            if stream.batches_in_epoch == 0:  # the same on every rank: they step together
                raise DataError(
                    f"epoch {stream.epoch} gave no step: some process has fewer than train.batch_size x "
                    f"train.grad_accum = {tc.batch_size * tc.grad_accum} samples in its shards")
            stream.next_epoch()
            continue

        lr = set_lr(optimizer, lr_factor(step, tc.warmup_steps, tc.max_steps, tc.min_lr_ratio))
        grad_norm = None
        for batch in batches:
            wave = batch["wave"].to(acc.device, dtype=in_dtype, non_blocking=True)
            lengths = batch["lengths"].to(acc.device)
            labels = batch["labels"].to(acc.device)
            with acc.accumulate(model):
                logits = model(wave, lengths)
                loss = loss_fn(logits.float(), labels)
                acc.backward(loss)
                if acc.sync_gradients and tc.clip_grad > 0:
                    grad_norm = acc.clip_grad_norm_(model.parameters(), tc.clip_grad)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            loss_acc += loss.detach()
            n_acc += 1
        for batch in batches:
            for p in stream.commit(batch):
                log.warning("skipped corrupt data: %s: %s", p["where"], p["why"])
        step += 1
        samples_log += tc.batch_size * tc.grad_accum * world
        wait_s, busy_s = wait_s + (t_fetched - t_step), busy_s + (time.perf_counter() - t_step)

        if step % tc.log_every == 0 or step == tc.max_steps:
            loss_mean = acc.reduce(loss_acc / n_acc, reduction="mean").item()
            dt = max(time.time() - t_log, 1e-9)
            row = {"step": step, "epoch": stream.epoch, "loss": loss_mean, "lr": lr,
                   "samples_per_s": samples_log / dt, "audio_s_per_s": samples_log * cfg.data.crop_seconds / dt,
                   "data_wait_frac": wait_s / max(busy_s, 1e-9), "corrupt_skipped": stream.problems_total}
            if grad_norm is not None:
                row["grad_norm"] = float(grad_norm)
            metrics.write(row)
            if tc.trackers:
                acc.log({k: v for k, v in row.items() if k != "step"}, step=step)
            if progress is not None and main:
                progress(step, tc.max_steps, row)
            t_log, samples_log, loss_acc, n_acc = time.time(), 0, torch.zeros((), device=acc.device), 0
            wait_s = busy_s = 0.0

        if val_shards and ((cfg.val.every_steps and step % cfg.val.every_steps == 0) or step == tc.max_steps):
            best, last_val = run_validation(step, raw, acc, cfg, metrics, best)
        if step % cfg.checkpoint.every_steps == 0 or step == tc.max_steps:
            save(step)
            last_saved = step

    # -- end -------------------------------------------------------------------------------------------------------
    stream.close()
    if last_saved != step:
        save(step)
    # Export: the final (or averaged) weights, calibrated on the val split scored with exactly those weights.
    averaged = average_for_export(out, raw, cfg)  # every rank: all of them score the val split below
    val = None
    if val_shards:
        val = last_val if averaged is None and last_val is not None and last_val.step == step else \
            score_val_split(raw, acc, cfg, step)
    if main:
        export_model(out, raw, cfg, step, best, val=val, averaged=averaged)
    acc.wait_for_everyone()
    write_run_state(out, main, FINISHED, step)
    acc.end_training()
    return FINISHED


# -- the pieces the loop calls -------------------------------------------------------------------------------------
def build_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator, DistributedDataParallelKwargs, InitProcessGroupKwargs
    from accelerate.utils import ProjectConfiguration

    out = Path(cfg.output_dir)
    trackers = list(cfg.train.trackers)
    precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.train.precision]
    use_deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=cfg.train.find_unused_parameters)]
    if use_deepspeed and not torch.cuda.is_available():
        # DeepSpeed on CPU (DS_ACCELERATOR=cpu) runs on gloo; without a backend named here accelerate would count
        # one process per rank (num_processes=1) although DeepSpeed has started them all.
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
    return Accelerator(
        # CPU: torchrun -> DDP on gloo. DeepSpeed picks its own accelerator (DS_ACCELERATOR=cpu for a CPU smoke run).
        cpu=not torch.cuda.is_available() and not use_deepspeed,
        mixed_precision=precision,
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "tensorboard")),
        kwargs_handlers=handlers,
    )


def configure_deepspeed(acc, cfg: TrainConfig) -> None:
    """Fill the values DeepSpeed cannot infer (the loader is not passed through ``prepare``)."""
    ds = acc.state.deepspeed_plugin.deepspeed_config
    ds["train_micro_batch_size_per_gpu"] = cfg.train.batch_size
    ds["gradient_accumulation_steps"] = cfg.train.grad_accum
    ds["gradient_clipping"] = cfg.train.clip_grad
    ds["train_batch_size"] = cfg.train.batch_size * cfg.train.grad_accum * acc.num_processes


def keep_model_out_of_accelerate_state(acc) -> None:
    """Checkpoints hold the model as ``model.safetensors`` written by ``Detector.save_pretrained`` (so a checkpoint
    is a loadable model); accelerate's ``save_state`` keeps the optimizer, scaler and (DeepSpeed) engine state."""
    if acc.state.deepspeed_plugin is not None:
        return  # DeepSpeed saves/loads its engine (model included) itself

    def on_save(models, weights, output_dir):
        weights.clear()

    def on_load(models, input_dir):
        models.clear()

    acc.register_save_state_pre_hook(on_save)
    acc.register_load_state_pre_hook(on_load)


def agree(acc, stop: bool, exhausted: bool):
    """One all-reduce per step: any rank preempted -> all stop; any rank out of data -> the epoch ends for all."""
    flags = torch.tensor([int(stop), int(exhausted)], device=acc.device)
    if acc.num_processes > 1:
        flags = acc.reduce(flags, reduction="sum")
    return bool(flags[0].item()), bool(flags[1].item())


def make_deterministic() -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> dict:
    py = random.getstate()
    npst = np.random.get_state()
    st = {"python": [py[0], list(py[1]), py[2]],
          "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
          "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        st["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict) -> None:
    random.setstate((st["python"][0], tuple(st["python"][1]), st["python"][2]))
    n = st["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(torch.tensor(st["torch"], dtype=torch.uint8))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in st["cuda"]])


def write_checkpoint(d: Path, step: int, acc, raw: Detector, stream: TrainStream, cfg: TrainConfig, best) -> None:
    """Every rank: accelerate state (optimizer, scaler, DeepSpeed engine) + its own state file; main: the model."""
    acc.save_state(str(d))
    if acc.is_main_process:
        raw.save_pretrained(d, extra={"step": step})
        (d / "train_config.yaml").write_text(to_yaml(cfg))
    state = {"step": step, "epoch": stream.epoch, "world_size": acc.num_processes, "rank": acc.process_index,
             "data": stream.state_dict(), "rng": rng_state(), "best": best}
    (d / STATE_FILE.format(acc.process_index)).write_text(json.dumps(state))


def load_checkpoint(d: Path, acc, raw: Detector, stream: TrainStream, cfg: TrainConfig, deepspeed: bool):
    from safetensors.torch import load_file

    rank = acc.process_index
    own = d / STATE_FILE.format(rank)
    state = json.loads((own if own.is_file() else d / STATE_FILE.format(0)).read_text())
    if state["world_size"] != acc.num_processes and deepspeed:
        raise ResumeMismatch(f"{d} was written by {state['world_size']} DeepSpeed process(es) and this run has "
                             f"{acc.num_processes}: ZeRO's partitioned optimizer state needs the same number; rerun "
                             f"with {state['world_size']} processes or start a new output_dir")
    all_ranks = None  # another layout: the rest of an interrupted epoch is re-dealt from every rank's data state
    if (state["data"]["world"], state["data"]["num_workers"]) != (acc.num_processes, cfg.data.num_workers):
        all_ranks = [json.loads(p.read_text())["data"] for p in sorted(d.glob(STATE_FILE.replace("{:05d}", "*")))]
    stream.load_state_dict(state["data"], all_ranks)
    acc.load_state(str(d))
    if not deepspeed:
        raw.load_state_dict(load_file(str(d / EXPORT_WEIGHTS), device="cpu"))
    if state["world_size"] == acc.num_processes:
        set_rng_state(state["rng"])
    else:  # another number of processes: randomness restarts from the seed
        seed_everything(cfg.seed * 1000 + rank + 7919 * state["step"])
    return int(state["step"]), state.get("best")


@dataclass
class ValScores:
    """One validation pass, all ranks gathered: per-sample keys, labels (1 = spoof) and spoof logits."""

    step: int
    keys: List[str]
    labels: np.ndarray
    scores: np.ndarray
    problems: int = 0


def score_val_split(raw: Detector, acc, cfg: TrainConfig, step: int) -> ValScores:
    """Score the val split exactly as ``python -m eval`` does (its code): each clip's first
    ``data.val_max_seconds`` (null: the whole clip, in chunks of at most 30 s whose logits are averaged), batched
    only with clips of identical length, so nothing is zero-padded (WavLM's group-norm front end has no attention
    mask: padding would change the scores) and a score never depends on its batch companions.

    Work units are windows of ``val.batch_size`` samples of one shard, dealt round-robin to the ranks (disjoint,
    together the whole split); ``val.max_batches`` keeps each rank's first N windows. One gather at the end.
    """
    from accelerate.utils import gather_object

    from eval.config import DataConfig as EvalDataConfig
    from eval.config import EvalConfig, ScoringConfig
    from eval.data import list_shards as eval_list_shards
    from eval.data import make_units, units_for_rank
    from eval.runner import merge_results, score_units
    from eval.scoring import Scorer
    from shard_builder.schema import label_to_int

    window = cfg.val.batch_size or cfg.train.batch_size
    ecfg = EvalConfig(model="", out_dir="", data=EvalDataConfig(shards=cfg.data.shards, split=cfg.data.val_split,
                                                                sample_rate=cfg.data.sample_rate),
                      scoring=ScoringConfig(max_seconds=cfg.data.val_max_seconds, padding="none", window=window,
                                            max_batch_size=window, precision=cfg.train.precision))
    paths, counts = eval_list_shards(cfg.data.shards, cfg.data.val_split)
    mine = units_for_rank(make_units(paths, counts, window), acc.process_index, acc.num_processes)
    if cfg.val.max_batches:
        mine = mine[:cfg.val.max_batches]
    was_training = raw.training
    try:
        res = score_units(ecfg, Scorer(raw, acc.device, cfg.train.precision), mine, rank=acc.process_index)
    finally:
        raw.train(was_training)
    for e in res.errors:
        msg = f"corrupt validation data: {e['shard']}:{e['key']}: {e['reason']}"
        if cfg.data.on_corrupt == "fail":
            raise CorruptDataError(msg + " (data.on_corrupt=fail; use data.on_corrupt=skip to skip such members)")
        log.warning("%s (skipped)", msg)
    parts = gather_object([res]) if acc.num_processes > 1 else [res]
    merged = merge_results(parts)
    if merged["duplicate_keys"]:
        log.warning("validation: %d key(s) occur more than once in the val split, e.g. %s",
                    len(merged["duplicate_keys"]), merged["duplicate_keys"][:3])
    rows = merged["rows"]
    return ValScores(step=step, keys=[r["key"] for r in rows],
                     labels=np.array([label_to_int(r["label"]) for r in rows], dtype=np.int64),
                     scores=np.array([r["score"] for r in rows], dtype=np.float64),
                     problems=len(merged["errors"]))


def run_validation(step, raw: Detector, acc, cfg: TrainConfig, metrics: MetricsLog, best):
    """EER and accuracy (threshold 0 on the logit) on the val split, computed by eval.metrics on all ranks' scores.
    Returns ``(best, scores)``."""
    val = score_val_split(raw, acc, cfg, step)
    s, y = val.scores, val.labels
    row = {"step": step, "val_samples": int(s.size)}
    if val.problems:
        row["val_skipped"] = val.problems
    if s.size and 0 < y.sum() < y.size:
        row["val_eer"] = eer(s, y)[0]
        row["val_accuracy"] = accuracy(s, y, 0.0)
    else:
        log.warning("validation at step %d: need both classes, got %d samples (%d spoof)", step, s.size, int(y.sum()))
    metrics.write(row)
    if cfg.train.trackers and "val_eer" in row:
        acc.log({"val_eer": row["val_eer"], "val_accuracy": row["val_accuracy"]}, step=step)
    if "val_eer" in row and (best is None or row["val_eer"] < best["val_eer"]):
        best = {"step": step, "val_eer": row["val_eer"], "val_accuracy": row["val_accuracy"]}
    return best, val


def average_for_export(out: Path, raw: Detector, cfg: TrainConfig) -> Optional[List[str]]:
    """With ``export.average_last = K > 1``: load the mean of the last K complete checkpoints into ``raw`` and return
    their names; else None (the final weights are exported)."""
    k = cfg.export.average_last
    if k <= 1:
        return None
    last = complete_checkpoints(out / "checkpoints")[-k:]
    raw.load_state_dict(average_checkpoints(last))
    return [p.name for p in last]


def export_calibration(val: Optional[ValScores]) -> Tuple[Optional[dict], Optional[str]]:
    """``(calibration, None)`` fitted by ``eval.calibration.fit_calibration`` on the val scores, or ``(None, why)``."""
    from eval.calibration import fit_calibration

    if val is None:
        return None, "no validation split (data.val_split is null)"
    n, n_spoof = int(val.labels.size), int(val.labels.sum())
    if n_spoof == 0 or n_spoof == n:
        return None, f"the validation split has one class only ({n} samples, {n_spoof} spoof)"
    cal = fit_calibration(val.scores, val.labels)
    if cal["a"] <= 0:
        return None, (f"the fitted slope a={cal['a']:.3g} is not positive: the validation scores do not separate "
                      f"the classes with spoof = higher")
    return cal, None


def export_model(out: Path, raw: Detector, cfg: TrainConfig, step: int, best, val: Optional[ValScores] = None,
                 averaged: Optional[List[str]] = None) -> None:
    """``OUT/model``: safetensors + config.json (main process, after training). Optionally the mean of the last K
    checkpoints (``averaged``: already loaded into ``raw`` by :func:`average_for_export`; else done here), and the
    score calibration fitted on ``val`` (the val split scored with the exported weights; also ``OUT/val_scores.csv``).
    """
    extra = {"trained_steps": step, "best_val": best, "train_config": to_dict(cfg)}
    if averaged is None:
        averaged = average_for_export(out, raw, cfg)
    if averaged is not None:
        extra["averaged_checkpoints"] = averaged
    cal, why = export_calibration(val)
    if cal is not None:
        extra["calibration"] = cal
        extra["calibration_data"] = {"split": cfg.data.val_split, "max_seconds": cfg.data.val_max_seconds,
                                     "samples": int(val.labels.size), "scores": "val_scores.csv"}
    else:
        extra["calibration_skipped"] = why
        log.warning("no score calibration saved with the model: %s", why)
    if val is not None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["key", "label", "score"])
        w.writerows([k, int(y), repr(float(z))] for k, y, z in zip(val.keys, val.labels, val.scores))
        write_atomic(out / "val_scores.csv", buf.getvalue())
    raw.save_pretrained(out / "model", extra=extra)
    log.info("exported %s%s", out / "model", " (calibrated)" if cal is not None else "")


def write_run_state(out: Path, main: bool, state: str, step: int, **more) -> None:
    """``OUT/run_state.json``: what the last run did (launchers that lose the exit code, e.g. torchrun, read it)."""
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "run_state.json", json.dumps({"state": state, "step": step, "time": time.time(), **more}))


def flat_hparams(cfg: TrainConfig) -> dict:
    flat = {}

    def walk(prefix, obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(obj, (int, float, str, bool)):
            flat[prefix] = obj
    walk("", to_dict(cfg))
    return flat
