"""The detector: a WavLM backbone -> pooling over time (padding excluded) -> ``nn.Linear(hidden, 1)`` -> spoof logit.

A higher logit means more likely spoof (the polarity used everywhere in this project).

``Detector.save_pretrained(dir)`` writes ``model.safetensors`` (every weight) and ``config.json`` (the detector
options plus the full backbone ``WavLMConfig``), so ``Detector.from_pretrained(dir)`` rebuilds the model with no
network, no training config and no pickle.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

EXPORT_WEIGHTS = "model.safetensors"
EXPORT_CONFIG = "config.json"
POOLINGS = ("mean", "attentive_stats")


@dataclass
class DetectorConfig:
    """Options of the detector head (the ``model`` section of the trainer config maps onto this)."""

    backbone: str = "microsoft/wavlm-base"  # hub id, local directory, "tiny", or "base-random" (benchmarks)
    pooling: str = "mean"  # "mean" (the reference) | "attentive_stats"
    layer_weighting: bool = False  # learned softmax-weighted sum of all hidden layers (SLS / MHFA style)
    freeze_feature_encoder: bool = False
    normalize_input: bool = False  # zero-mean / unit-variance per utterance before the backbone
    dropout: float = 0.0
    # Passed to the backbone config (0.0 disables WavLM's SpecAugment-style time masking).
    mask_time_prob: float = 0.05


def tiny_wavlm_config():
    """A small randomly initialised WavLM with the real architecture (7 conv layers, 320x downsampling)."""
    from transformers import WavLMConfig

    return WavLMConfig(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        conv_dim=(32, 32, 32, 32, 32, 32, 32),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_buckets=64,
        max_bucket_distance=200,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )


def build_backbone(name: str, backbone_config: Optional[dict] = None, mask_time_prob: float = 0.05):
    """A ``WavLMModel``: from a saved config dict (export), ``tiny``, ``base-random`` (the WavLM-Base architecture,
    which is ``WavLMConfig()``'s default, randomly initialised: for throughput benchmarks without a download), a
    local directory or a hub id."""
    from transformers import WavLMConfig, WavLMModel

    if backbone_config is not None:
        cfg = WavLMConfig(**backbone_config)
        return WavLMModel(cfg)
    if name == "tiny":
        cfg = tiny_wavlm_config()
        cfg.mask_time_prob = mask_time_prob
        return WavLMModel(cfg)
    if name == "base-random":
        return WavLMModel(WavLMConfig(mask_time_prob=mask_time_prob))
    return WavLMModel.from_pretrained(name, mask_time_prob=mask_time_prob)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over time (Okabe et al., 2018)."""

    def __init__(self, hidden: int, bottleneck: int = 128):
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(hidden, bottleneck), nn.Tanh(), nn.Linear(bottleneck, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.attention(x).squeeze(-1).masked_fill(~mask, torch.finfo(x.dtype).min)
        w = torch.softmax(scores, dim=1).unsqueeze(-1)
        mean = (w * x).sum(dim=1)
        var = (w * (x - mean.unsqueeze(1)).pow(2)).sum(dim=1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)


class Detector(nn.Module):
    def __init__(self, config: DetectorConfig, backbone_config: Optional[dict] = None):
        super().__init__()
        if config.pooling not in POOLINGS:
            raise ValueError(f"model.pooling={config.pooling!r}: expected one of {POOLINGS}")
        self.config = config
        self.backbone = build_backbone(config.backbone, backbone_config, config.mask_time_prob)
        hidden = self.backbone.config.hidden_size
        n_layers = self.backbone.config.num_hidden_layers + 1
        self.layer_weights = nn.Parameter(torch.zeros(n_layers)) if config.layer_weighting else None
        self.pool = AttentiveStatsPooling(hidden) if config.pooling == "attentive_stats" else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(hidden * (2 if config.pooling == "attentive_stats" else 1), 1)
        if config.freeze_feature_encoder:
            self.backbone.freeze_feature_encoder()

    def feature_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.backbone._get_feat_extract_output_lengths(lengths).long()

    def forward(self, waveforms: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``waveforms`` [B, T] float (zero-padded), ``lengths`` [B] valid samples -> spoof logits [B]."""
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], dtype=torch.long, device=waveforms.device)
        time_mask = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        if self.config.normalize_input:
            n = lengths.clamp_min(1).to(waveforms.dtype)[:, None]
            x = waveforms * time_mask
            mean = x.sum(1, keepdim=True) / n
            var = ((x - mean) * time_mask).pow(2).sum(1, keepdim=True) / n
            waveforms = ((waveforms - mean) / (var + 1e-7).sqrt()) * time_mask
        # Group-norm WavLM (wavlm-base) is trained without an attention mask on zero-padded input; the
        # layer-norm variants take one. Either way the pooling below ignores padded frames.
        attn = time_mask.long() if self.backbone.config.feat_extract_norm == "layer" else None
        out = self.backbone(
            waveforms, attention_mask=attn, output_hidden_states=self.layer_weights is not None
        )
        if self.layer_weights is not None:
            stack = torch.stack(out.hidden_states, dim=0)
            w = torch.softmax(self.layer_weights, dim=0).to(stack.dtype)
            hidden = (w[:, None, None, None] * stack).sum(0)
        else:
            hidden = out.last_hidden_state
        frames = hidden.shape[1]
        flen = self.feature_lengths(lengths).clamp(1, frames)
        mask = torch.arange(frames, device=hidden.device)[None, :] < flen[:, None]
        if self.pool is not None:
            pooled = self.pool(hidden, mask)
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.head(self.dropout(pooled)).squeeze(-1)

    # -- export -------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: Optional[dict] = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` atomically (temporary names, then rename)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        meta = {
            "format": "deepfake-detector/1",
            "detector": asdict(self.config),
            "backbone_config": self.backbone.config.to_dict(),
            "score": "spoof logit: higher means more likely spoof; p_spoof = sigmoid(score)",
        }
        if extra:
            meta.update(extra)
        tmp_w = directory / (EXPORT_WEIGHTS + ".tmp")
        tmp_c = directory / (EXPORT_CONFIG + ".tmp")
        save_file(state, str(tmp_w))
        tmp_c.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(tmp_w, directory / EXPORT_WEIGHTS)
        os.replace(tmp_c, directory / EXPORT_CONFIG)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu") -> "Detector":
        """Rebuild from an export directory (no network, no pickle)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg_path, w_path = directory / EXPORT_CONFIG, directory / EXPORT_WEIGHTS
        if not cfg_path.is_file() or not w_path.is_file():
            raise FileNotFoundError(f"{directory} is not an exported model: expected {EXPORT_CONFIG} and {EXPORT_WEIGHTS}")
        meta = json.loads(cfg_path.read_text())
        det = DetectorConfig(**meta["detector"])
        model = cls(det, backbone_config=meta["backbone_config"])
        model.load_state_dict(load_file(str(w_path), device=map_location))
        model.export_meta = meta
        return model


def load_export_meta(directory: str | os.PathLike) -> dict:
    return json.loads((Path(directory) / EXPORT_CONFIG).read_text())


def average_checkpoints(directories) -> dict:
    """Element-wise mean of the ``model.safetensors`` weights of several checkpoints/exports (checkpoint averaging).

    Floating-point tensors are averaged in float64 and cast back; integer buffers are taken from the last one.
    """
    from safetensors.torch import load_file

    directories = [Path(d) for d in directories]
    if not directories:
        raise ValueError("average_checkpoints: no directories given")
    total = None
    for d in directories:
        state = load_file(str(d / EXPORT_WEIGHTS))
        if total is None:
            total = {k: (v.double() if v.is_floating_point() else v) for k, v in state.items()}
            dtypes = {k: v.dtype for k, v in state.items()}
            continue
        if state.keys() != total.keys():
            raise ValueError(f"average_checkpoints: {d} has different weights than {directories[0]}")
        for k, v in state.items():
            total[k] = total[k] + v.double() if v.is_floating_point() else v
    n = len(directories)
    return {k: ((v / n).to(dtypes[k]) if dtypes[k].is_floating_point else v) for k, v in total.items()}
