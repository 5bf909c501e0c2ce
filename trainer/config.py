"""The trainer's typed config schema (values live in ``configs/train.yaml`` / ``configs/demo/train.yaml``).

Loaded with :func:`shard_builder.configuration.load_config`: an unknown key, a wrong type or a bad value is a
``ConfigError`` naming the key, before any work starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from shard_builder.configuration import MISSING, ConfigError
from trainer.augment import AugmentConfig
from trainer.model import POOLINGS, DetectorConfig

PRECISIONS = ("fp32", "bf16", "fp16")
ON_CORRUPT = ("skip", "fail")


@dataclass
class DataConfig:
    shards: str = MISSING  # the shards root: <shards>/<split>/shard-*.tar + index.json
    split: str = "train"
    val_split: Optional[str] = "val"  # null disables validation
    crop_seconds: float = 4.0  # random crop of training clips; shorter clips are repeat-padded
    # Validation scores each clip's first N seconds (null: the whole clip, as `python -m eval` by default), without
    # zero padding, with the evaluation runner's code: `python -m eval scoring.max_seconds=N` gives the same scores.
    val_max_seconds: Optional[float] = 8.0
    sample_rate: int = 16000
    num_workers: int = 2  # DataLoader workers per process
    shared_buffers: int = 8  # per worker: batches handed to the trainer through reused shared memory (0: off)
    # Mix weights: "corpus:<name>", "attack_type:<digital|replay>" or "label:<bonafide|spoof>" -> weight. A sample's
    # weight is the product of the matching entries (1.0 when none): 0.5 keeps half of those samples, 2.0 reads each
    # twice (other crops).
    weights: Dict[str, float] = field(default_factory=dict)
    # Class balance: multiply the weights by per-label factors computed from the train split's index.json (after
    # the mix weights above) so bona fide and spoof are read equally often per epoch, in expectation.
    balance_classes: bool = False
    on_corrupt: str = "skip"  # "skip": skip + count + log a corrupt member | "fail": stop the run


@dataclass
class OptimConfig:
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 8  # per process, per micro-batch
    grad_accum: int = 1
    lr: float = 3e-5  # backbone
    head_lr: float = 1e-3  # pooling / layer weights / linear head
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0  # cosine decay to lr * min_lr_ratio at max_steps
    weight_decay: float = 0.01
    clip_grad: float = 1.0  # 0 disables
    precision: str = "fp32"  # fp32 | bf16 | fp16
    pos_weight: float = 1.0  # BCE weight of the spoof class (use < 1 when spoof dominates)
    deterministic: bool = False  # torch deterministic algorithms (bit-exact resume on CPU)
    log_every: int = 10
    find_unused_parameters: bool = False  # DDP option (needed with some frozen / skipped parts)
    trackers: List[str] = field(default_factory=lambda: ["tensorboard"])  # accelerate trackers; [] disables


@dataclass
class ValConfig:
    every_steps: int = 500  # 0 disables periodic validation (it still runs at the end when val_split is set)
    max_batches: int = 0  # per process: its first N windows of val.batch_size samples; 0 = the whole val split
    batch_size: int = 0  # clips per batch (at most; only equal-length clips share one); 0 = train.batch_size


@dataclass
class CheckpointConfig:
    every_steps: int = 500
    keep_last: int = 2  # at least 2: the previous complete checkpoint survives while the next one is written


@dataclass
class ExportConfig:
    average_last: int = 1  # average the weights of the last K checkpoints into OUT/model (1 = final weights)


@dataclass
class TrainConfig:
    output_dir: str = MISSING
    seed: int = 0
    # Start from an exported detector (OUT/model of an earlier run: its architecture and weights), e.g. continued
    # fine-tuning on replay data. model.pooling / model.layer_weighting must match the export; model.dropout,
    # freeze_feature_encoder and mask_time_prob come from this config. Ignored when resuming from a checkpoint.
    init_from: Optional[str] = None
    data: DataConfig = field(default_factory=DataConfig)
    model: DetectorConfig = field(default_factory=DetectorConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"config key '{key}': {msg}")

        need(self.data.crop_seconds > 0, "data.crop_seconds", "must be > 0")
        need(self.data.val_max_seconds is None or self.data.val_max_seconds > 0, "data.val_max_seconds",
             "must be > 0 or null")
        need(self.data.num_workers >= 0, "data.num_workers", "must be >= 0")
        need(self.data.shared_buffers >= 0, "data.shared_buffers", "must be >= 0")
        need(self.data.on_corrupt in ON_CORRUPT, "data.on_corrupt", f"expected one of {ON_CORRUPT}")
        for k, w in self.data.weights.items():
            kind = k.split(":", 1)[0]
            need(kind in ("corpus", "attack_type", "label") and ":" in k, f"data.weights.{k}",
                 "expected 'corpus:<name>', 'attack_type:<digital|replay>' or 'label:<bonafide|spoof>'")
            need(w >= 0, f"data.weights.{k}", "must be >= 0")
        need(self.model.pooling in POOLINGS, "model.pooling", f"expected one of {POOLINGS}")
        if self.init_from is not None:
            from pathlib import Path

            from trainer.model import EXPORT_CONFIG, EXPORT_WEIGHTS

            d = Path(self.init_from)
            need((d / EXPORT_CONFIG).is_file() and (d / EXPORT_WEIGHTS).is_file(), "init_from",
                 f"{d} is not an exported model (expected {EXPORT_CONFIG} and {EXPORT_WEIGHTS})")
        self.augment.validate(self.data.sample_rate)  # a bad augment.* value stops here, before any work
        t = self.train
        need(t.max_steps > 0, "train.max_steps", "must be > 0")
        need(t.batch_size > 0, "train.batch_size", "must be > 0")
        need(t.grad_accum > 0, "train.grad_accum", "must be > 0")
        need(t.lr > 0, "train.lr", "must be > 0")
        need(t.head_lr > 0, "train.head_lr", "must be > 0")
        need(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
        need(0.0 <= t.min_lr_ratio <= 1.0, "train.min_lr_ratio", "must be in [0, 1]")
        need(t.clip_grad >= 0, "train.clip_grad", "must be >= 0")
        need(t.precision in PRECISIONS, "train.precision", f"expected one of {PRECISIONS}")
        need(t.pos_weight > 0, "train.pos_weight", "must be > 0")
        need(t.log_every > 0, "train.log_every", "must be > 0")
        need(self.val.every_steps >= 0, "val.every_steps", "must be >= 0")
        need(self.val.max_batches >= 0, "val.max_batches", "must be >= 0")
        need(self.checkpoint.every_steps > 0, "checkpoint.every_steps", "must be > 0")
        need(self.checkpoint.keep_last >= 2, "checkpoint.keep_last",
             "must be >= 2 (the previous checkpoint is kept while the next one is written)")
        need(self.export.average_last >= 1, "export.average_last", "must be >= 1")
        need(self.export.average_last <= self.checkpoint.keep_last, "export.average_last",
             f"cannot exceed checkpoint.keep_last={self.checkpoint.keep_last} (older checkpoints are deleted)")
