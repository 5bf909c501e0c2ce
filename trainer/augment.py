"""On-the-fly waveform augmentation for the training loader (filled in by the recipe-options work, issue 7).

Interface used by the data stream: ``Augmenter(cfg, sample_rate)(wave, rng) -> wave`` where ``wave`` is float32
mono and ``rng`` a ``numpy.random.Generator`` seeded per sample from (seed, epoch, key), so that augmentation is
deterministic and resume stays exact. Applied to bona fide and spoof samples alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AugmentConfig:
    enabled: bool = False


class Augmenter:
    def __init__(self, cfg: AugmentConfig, sample_rate: int = 16000):
        self.cfg = cfg
        self.sample_rate = sample_rate

    @property
    def active(self) -> bool:
        return bool(self.cfg.enabled)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return wave
