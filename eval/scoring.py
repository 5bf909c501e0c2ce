"""Load a detector (export or checkpoint) and turn batches of waves into spoof logits."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from eval.calibration import calibration_from_meta
from eval.data import Item, collate


class ModelLoadError(ValueError):
    """``model=`` names something that is neither an exported model nor a checkpoint we can read."""


COMMIT_MARKER = "COMMITTED"  # trainer.checkpoint.COMMIT: a checkpoint is complete only with it


def _is_export(p: Path) -> bool:
    from trainer.model import EXPORT_CONFIG, EXPORT_WEIGHTS

    return (p / EXPORT_CONFIG).is_file() and (p / EXPORT_WEIGHTS).is_file()


def _complete_checkpoints(root: Path) -> List[Path]:
    if not root.is_dir():
        return []
    found = [c for c in root.iterdir() if c.is_dir() and c.name.startswith("step-") and c.name[5:].isdigit()
             and (c / COMMIT_MARKER).is_file()]
    return sorted(found, key=lambda c: int(c.name[5:]))


def resolve_model_dir(path: str | Path) -> Path:
    """The directory holding the weights to evaluate.

    Accepts an export (``OUT/model``), a complete checkpoint (``OUT/checkpoints/step-N``, which the trainer
    writes in the export format plus a ``COMMITTED`` marker), ``OUT/checkpoints`` (its newest complete checkpoint)
    or ``OUT`` (its export if there is one, else its newest complete checkpoint).
    """
    from trainer.model import EXPORT_CONFIG, EXPORT_WEIGHTS

    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model={path}: no such file or directory")
    if p.name.startswith((".tmp-", ".trash-")) or (p.name.startswith("step-") and not (p / COMMIT_MARKER).is_file()):
        raise ModelLoadError(f"model={path}: an incomplete checkpoint (no {COMMIT_MARKER} marker); "
                             "use a complete one or the exported model")
    if _is_export(p):
        return p
    if _is_export(p / "model"):
        return p / "model"
    for root in (p / "checkpoints", p):
        done = _complete_checkpoints(root)
        if done:
            if not _is_export(done[-1]):
                raise ModelLoadError(f"model={path}: checkpoint {done[-1]} has no {EXPORT_CONFIG} + {EXPORT_WEIGHTS}")
            return done[-1]
    raise ModelLoadError(
        f"model={path}: not an exported model (expected {EXPORT_CONFIG} + {EXPORT_WEIGHTS}), nor a checkpoint "
        f"directory (step-N with {COMMIT_MARKER}), nor a training output with model/ or checkpoints/"
    )


def load_detector(path: str | Path, map_location: str = "cpu"):
    """Return ``(model, meta)`` from an exported model dir or a trainer checkpoint (see :func:`resolve_model_dir`).

    ``meta`` is the directory's config.json (with ``calibration`` when the trainer saved one).
    """
    from trainer.model import EXPORT_CONFIG, Detector

    d = resolve_model_dir(path)
    try:
        model = Detector.from_pretrained(d, map_location=map_location)
    except Exception as exc:
        raise ModelLoadError(f"model={path}: cannot load {d}: {type(exc).__name__}: {exc}") from exc
    meta = dict(getattr(model, "export_meta", None) or json.loads((d / EXPORT_CONFIG).read_text()))
    meta["loaded_from"] = str(d)
    return model, meta


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("scoring.device=cuda but no CUDA device is available")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


class Scorer:
    """Runs the model on padded batches; returns float32 logits (higher = more likely spoof)."""

    def __init__(self, model, device: torch.device, precision: str = "fp32"):
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.meta = getattr(model, "export_meta", None)

    def _autocast(self):
        if self.dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)

    @torch.inference_mode()
    def score_arrays(self, waves: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(waves).to(self.device, non_blocking=True)
        n = torch.from_numpy(lengths).to(self.device)
        with self._autocast():
            logits = self.model(x, n)
        return logits.float().cpu().numpy().astype(np.float32)

    def score_batch(self, batch: List[Item]) -> Tuple[np.ndarray, int, int]:
        """Logits for a batch plus ``(padded_samples, real_samples)`` for the padding statistics."""
        waves, lengths = collate(batch)
        return self.score_arrays(waves, lengths), int(waves.size), int(lengths.sum())


def model_calibration(meta: Optional[dict]) -> Optional[dict]:
    return calibration_from_meta(meta)
