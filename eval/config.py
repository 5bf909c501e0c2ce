"""The typed schema of ``python -m eval`` (values live in configs/eval.yaml; overrides as ``dotted.key=value``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from shard_builder.configuration import MISSING, ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
PADDINGS = ("none", "zero")


@dataclass
class DataConfig:
    shards: str = MISSING  # the shards root (OUT of the shard builder)
    split: str = "test"  # reads <shards>/<split>/shard-*.tar
    sample_rate: int = 16000


@dataclass
class ScoringConfig:
    # Score only the first N seconds of each utterance (4.0 = the field's fixed-length protocol); null = whole.
    max_seconds: Optional[float] = None
    # Utterances longer than this are split into equal chunks no longer than it; the chunk scores are averaged.
    chunk_seconds: float = 30.0
    # Batches hold at most this much padded audio (seconds) and at most max_batch_size items.
    batch_seconds: float = 160.0
    max_batch_size: int = 32
    # "none": a batch only holds utterances (chunks) of identical length, so nothing is padded and a score never
    # depends on its batch companions (the default: group-norm WavLM runs without an attention mask and zero
    # padding shifts its scores). "zero": mixed lengths, zero-padded to the longest (faster on GPUs).
    padding: str = "none"
    # padding=zero only: sort by length inside each window before batching (less padding); false = arrival order.
    bucketing: bool = True
    # Samples per bucketing window. A window of one shard is also the unit of work given to a rank, so every
    # sample sees the same batch companions whatever the number of processes (identical scores).
    window: int = 256
    # Decoding ahead of scoring in a background thread (`prefetch` windows ahead; 0 = inline), with
    # `decode_threads` threads for the members of a window (libsndfile releases the GIL). Off by default: on a
    # busy CPU-only machine it only adds contention (measured); on GPU nodes with idle cores try 2 and 4.
    prefetch: int = 0
    decode_threads: int = 1
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on cuda only)


@dataclass
class MetricsConfig:
    # Decision threshold on the score (logit) scale for `accuracy` and the confusion matrices.
    # null: the calibrated Bayes threshold saved with the model, else 0.0 (p_spoof = 0.5).
    threshold: Optional[float] = None
    # Detection cost parameters (ASVspoof 5) for minDCF / actDCF.
    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0
    bootstrap: int = 1000  # bootstrap replicates for the EER 95 % CI (0 = skip)
    seed: int = 0


@dataclass
class ReportConfig:
    plots: bool = True
    per_corpus_plots: bool = False  # also plots/{roc,det,confusion}_corpus-<name>.png
    n_errors: int = 10  # most confident false accepts / false rejects listed in report.md


@dataclass
class EvalConfig:
    model: str = MISSING  # an exported model dir (OUT/model) or a checkpoint dir (OUT/checkpoints/step-N)
    out_dir: str = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def validate(self) -> None:
        s = self.scoring
        if s.device not in DEVICES:
            raise ConfigError(f"config key 'scoring.device': {s.device!r} is not one of {DEVICES}")
        if s.precision not in PRECISIONS:
            raise ConfigError(f"config key 'scoring.precision': {s.precision!r} is not one of {PRECISIONS}")
        if s.padding not in PADDINGS:
            raise ConfigError(f"config key 'scoring.padding': {s.padding!r} is not one of {PADDINGS}")
        if s.max_seconds is not None and s.max_seconds <= 0:
            raise ConfigError("config key 'scoring.max_seconds': must be > 0 or null")
        if s.chunk_seconds <= 0.1:
            raise ConfigError("config key 'scoring.chunk_seconds': must be > 0.1")
        if s.batch_seconds <= 0:
            raise ConfigError("config key 'scoring.batch_seconds': must be > 0")
        if s.max_batch_size < 1:
            raise ConfigError("config key 'scoring.max_batch_size': must be >= 1")
        if s.prefetch < 0 or s.decode_threads < 1:
            raise ConfigError("config key 'scoring.prefetch' must be >= 0 and 'scoring.decode_threads' >= 1")
        if s.window < 1:
            raise ConfigError("config key 'scoring.window': must be >= 1")
        if self.data.sample_rate <= 0:
            raise ConfigError("config key 'data.sample_rate': must be > 0")
        if not 0.0 < self.metrics.p_spoof < 1.0:
            raise ConfigError("config key 'metrics.p_spoof': must be in (0, 1)")
        if self.metrics.bootstrap < 0:
            raise ConfigError("config key 'metrics.bootstrap': must be >= 0")
        if self.report.n_errors < 0:
            raise ConfigError("config key 'report.n_errors': must be >= 0")
