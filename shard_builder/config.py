"""The typed schema of `python -m shard_builder build` (values live in YAML, e.g. configs/shards.yaml).

Loaded with :func:`shard_builder.configuration.load_config`, so an unknown key, a wrong type or a missing value is
a :class:`ConfigError` naming the key. ``validate`` adds the checks OmegaConf cannot express (allowed values,
fractions that sum to one, unique entry names); the adapters check roots and protocol files before any decoding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional

from .configuration import MISSING, ConfigError
from .schema import ATTACK_TYPES, SPLITS

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class AudioConfig:
    sample_rate: int = 16000
    format: str = "flac"  # flac | wav (16-bit PCM either way)
    max_seconds: Optional[float] = None  # cut longer clips (None = keep whole clips)


@dataclass
class ShardConfig:
    max_bytes: int = 512 * 1024 * 1024  # a shard is cut before it would grow past this (one sample always fits)
    max_samples: int = 10000


@dataclass
class SplitFractions:
    """Fractions for corpus entries without an official split (assigned by speaker, else by source file)."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1


@dataclass
class CorpusEntry:
    name: str = MISSING  # entry name: the sample's `corpus` field; letters, digits, '_' and '-'
    adapter: str = MISSING  # see shard_builder.corpora.ADAPTERS
    root: str = MISSING
    attack_type: str = MISSING  # digital | replay: the group of the whole entry (bona fide and spoof alike)
    protocol: Optional[str] = None  # label file (absolute, or relative to root) for adapters that read one
    language: Optional[str] = None  # language tag for samples whose corpus does not name one
    languages: Optional[List[str]] = None  # keep only these languages (mailabs, mlaad, fleurs_hs)
    split: Optional[str] = None  # force every sample of the entry into this split
    max_per_label: Optional[int] = None  # seeded cap per label (balanced subsets), applied before decoding


@dataclass
class BuildConfig:
    out_dir: str = MISSING
    seed: int = 0
    workers: int = 2
    splits: SplitFractions = field(default_factory=SplitFractions)
    audio: AudioConfig = field(default_factory=AudioConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    corpora: List[CorpusEntry] = field(default_factory=list)

    def validate(self) -> None:
        from .corpora import ADAPTERS

        if self.workers < 0:
            raise ConfigError(f"config key 'workers': must be >= 0, got {self.workers}")
        if self.audio.format not in ("flac", "wav"):
            raise ConfigError(f"config key 'audio.format': expected 'flac' or 'wav', got {self.audio.format!r}")
        if not 1000 <= self.audio.sample_rate <= 192000:
            raise ConfigError(f"config key 'audio.sample_rate': {self.audio.sample_rate} is not a usable rate")
        if self.audio.max_seconds is not None and self.audio.max_seconds <= 0:
            raise ConfigError("config key 'audio.max_seconds': must be > 0 (or null for whole clips)")
        if self.shard.max_bytes <= 0:
            raise ConfigError("config key 'shard.max_bytes': must be > 0")
        if self.shard.max_samples <= 0:
            raise ConfigError("config key 'shard.max_samples': must be > 0")
        fr = (self.splits.train, self.splits.val, self.splits.test)
        if any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"config key 'splits': fractions must be >= 0 and sum to 1, got {fr}")
        if not self.corpora:
            raise ConfigError("config key 'corpora': at least one corpus entry is required")
        seen = set()
        for i, c in enumerate(self.corpora):
            where = f"corpora[{i}]"
            if not NAME_RE.match(c.name):
                raise ConfigError(f"config key '{where}.name': {c.name!r} may hold only letters, digits, '_' and '-'")
            if c.name in seen:
                raise ConfigError(f"config key '{where}.name': entry name {c.name!r} is used twice")
            seen.add(c.name)
            if c.adapter not in ADAPTERS:
                raise ConfigError(
                    f"config key '{where}.adapter': unknown adapter {c.adapter!r}; expected one of {sorted(ADAPTERS)}")
            if c.attack_type not in ATTACK_TYPES:
                raise ConfigError(f"config key '{where}.attack_type': expected one of {ATTACK_TYPES}, got {c.attack_type!r}")
            if c.split is not None and c.split not in SPLITS:
                raise ConfigError(f"config key '{where}.split': expected one of {SPLITS}, got {c.split!r}")
            if c.max_per_label is not None and c.max_per_label <= 0:
                raise ConfigError(f"config key '{where}.max_per_label': must be > 0")
