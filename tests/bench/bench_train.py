"""Training steps/s of the tiny detector on CPU (one process, one thread), by model option.

    python tests/bench/bench_train.py [--full]

Each row: forward + BCE loss + backward + clip + AdamW step on random audio, batch 4 x crop; ratio vs the first row
(the demo settings: fp32, mean pooling, 1 s crops), measured in the same run.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from trainer.model import Detector, DetectorConfig  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402

BATCH = 4


def steps_per_s(crop_s=1.0, precision="fp32", steps=10, **model_kw):
    torch.manual_seed(0)
    model = Detector(DetectorConfig(backbone="tiny", **model_kw))
    opt = build_optimizer(model, 1e-4, 1e-3, 0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(BATCH, int(crop_s * 16000)) * 0.1
    y = torch.tensor([0.0, 1.0] * (BATCH // 2))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)

    def step():
        with ctx:
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def run(quick: bool = True) -> str:
    steps = 8 if quick else 30
    rows = [
        ("demo: fp32, mean pooling, 1 s crops", {}),
        ("bf16 autocast", {"precision": "bf16"}),
        ("4 s crops (the real recipe's length)", {"crop_s": 4.0}),
        ("layer_weighting (all hidden layers)", {"layer_weighting": True}),
        ("attentive_stats pooling", {"pooling": "attentive_stats"}),
        ("freeze_feature_encoder", {"freeze_feature_encoder": True}),
    ]
    out = ["| setting (batch 4, tiny WavLM, 1 CPU thread) | steps/s | audio-s/s | ratio |", "|---|---|---|---|"]
    base = None
    for name, kw in rows:
        sps = steps_per_s(steps=steps, **kw)
        base = base or sps
        out.append(f"| {name} | {sps:.2f} | {sps * BATCH * kw.get('crop_s', 1.0):.1f} | {sps / base:.2f}x |")
    return "\n".join(out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(run(quick="--full" not in sys.argv))
