"""The export: safetensors + config.json, loadable without the training config; optional checkpoint averaging."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from conftest import DEMO_CONFIG
from shard_builder.configuration import load_config
from trainer.checkpoint import COMMIT
from trainer.config import TrainConfig
from trainer.loop import export_model
from trainer.model import Detector, DetectorConfig, load_export_meta


def test_export_averages_the_last_k_checkpoints(tmp_path):
    cfg = load_config(TrainConfig, DEMO_CONFIG, [f"output_dir={tmp_path}", "data.shards=/x", "export.average_last=2"])
    for step, seed in ((4, 0), (8, 1), (12, 2)):
        torch.manual_seed(seed)
        d = tmp_path / "checkpoints" / f"step-{step:08d}"
        Detector(DetectorConfig(backbone="tiny")).save_pretrained(d)
        (d / COMMIT).write_text("{}")
    model = Detector(DetectorConfig(backbone="tiny"))
    export_model(tmp_path, model, cfg, 12, {"step": 8, "val_eer": 0.1, "val_accuracy": 0.9})
    meta = load_export_meta(tmp_path / "model")
    assert meta["averaged_checkpoints"] == ["step-00000008", "step-00000012"]
    assert meta["best_val"]["step"] == 8 and meta["trained_steps"] == 12
    out = load_file(str(tmp_path / "model" / "model.safetensors"))
    a, b = (load_file(str(tmp_path / "checkpoints" / n / "model.safetensors")) for n in meta["averaged_checkpoints"])
    for k in ("head.weight", "backbone.encoder.layers.0.attention.q_proj.weight"):
        assert torch.allclose(out[k], (a[k] + b[k]) / 2)
    reloaded = Detector.from_pretrained(tmp_path / "model")
    assert torch.equal(reloaded.state_dict()["head.weight"], out["head.weight"])
