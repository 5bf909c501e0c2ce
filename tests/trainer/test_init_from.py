"""`init_from`: continued fine-tuning starts from an exported detector's weights (e.g. replay-only fine-tuning)."""
import pytest
import torch

from shard_builder.configuration import ConfigError, load_config
from trainer.config import TrainConfig
from trainer.loop import build_model
from trainer.model import Detector, DetectorConfig

BASE = ["output_dir=x", "data.shards=y", "model.backbone=tiny"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    torch.manual_seed(123)
    Detector(DetectorConfig(backbone="tiny", pooling="attentive_stats")).save_pretrained(d)
    return d


def test_starts_from_the_exported_weights_with_this_runs_options(export_dir):
    cfg = load_config(TrainConfig, None, BASE + [f"init_from={export_dir}", "model.pooling=attentive_stats",
                                                 "model.dropout=0.2", "model.freeze_feature_encoder=true"])
    model = build_model(cfg)
    ref = Detector.from_pretrained(export_dir).state_dict()
    assert set(model.state_dict()) == set(ref)
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())
    assert model.dropout.p == 0.2
    assert not any(p.requires_grad for p in model.backbone.feature_extractor.parameters())


def test_a_fresh_model_differs(export_dir):
    cfg = load_config(TrainConfig, None, BASE + ["model.pooling=attentive_stats"])
    ref = Detector.from_pretrained(export_dir).state_dict()
    assert not all(torch.equal(v, ref[k]) for k, v in build_model(cfg).state_dict().items())


def test_architecture_mismatch_and_missing_export_are_named(export_dir, tmp_path):
    cfg = load_config(TrainConfig, None, BASE + [f"init_from={export_dir}"])  # pooling mean vs attentive_stats
    with pytest.raises(ConfigError, match="model.pooling"):
        build_model(cfg)
    with pytest.raises(ConfigError, match="init_from"):
        load_config(TrainConfig, None, BASE + [f"init_from={tmp_path}"])
