"""AdamW with separate backbone and head learning rates, and the learning-rate schedule as a pure function."""
from __future__ import annotations

import math

import torch


def build_optimizer(model: torch.nn.Module, lr: float, head_lr: float, weight_decay: float) -> torch.optim.AdamW:
    """Groups: backbone (``lr``) and head (pooling, layer weights, linear: ``head_lr``); no decay on biases/norms."""
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "backbone" if name.startswith("backbone.") else "head"
        decay = p.ndim >= 2
        groups.setdefault((part, decay), []).append(p)
    param_groups = []
    for (part, decay), params in sorted(groups.items()):
        base = lr if part == "backbone" else head_lr
        param_groups.append({"params": params, "lr": base, "base_lr": base, "name": f"{part}{'' if decay else '_no_decay'}",
                             "weight_decay": weight_decay if decay else 0.0})
    return torch.optim.AdamW(param_groups, lr=lr)


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_ratio: float = 0.0) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_ratio`` at ``max_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer, factor: float) -> float:
    """Set every group's lr to ``base_lr * factor``; returns the backbone lr (for logging)."""
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
    return optimizer.param_groups[0]["lr"]
