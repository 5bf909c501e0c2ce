"""Config errors name the key and stop before any work (exit status 2 from the CLI)."""
from __future__ import annotations

import pytest

from conftest import DEMO_CONFIG
from shard_builder.configuration import ConfigError, load_config
from trainer.__main__ import main
from trainer.config import TrainConfig


def test_demo_and_real_configs_load():
    cfg = load_config(TrainConfig, DEMO_CONFIG, ["data.shards=/x", "output_dir=/y"])
    assert cfg.model.backbone == "tiny" and cfg.checkpoint.keep_last >= 2
    real = load_config(TrainConfig, DEMO_CONFIG.parents[1] / "train.yaml", ["data.shards=/x", "output_dir=/y"])
    assert real.model.backbone == "microsoft/wavlm-base" and real.data.crop_seconds == 4.0


@pytest.mark.parametrize("override,key", [
    ("train.max_stepz=3", "train.max_stepz"),
    ("train.batch_size=two", "train.batch_size"),
    ("checkpoint.keep_last=1", "checkpoint.keep_last"),
    ("data.on_corrupt=ignore", "data.on_corrupt"),
    ("train.precision=fp8", "train.precision"),
    ("data.weights.language:en=2", "data.weights.language:en"),
])
def test_bad_value_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(TrainConfig, DEMO_CONFIG, ["data.shards=/x", "output_dir=/y", override])


def test_cli_exits_2_naming_the_key(tmp_path, capsys):
    rc = main(["--config", str(DEMO_CONFIG), f"output_dir={tmp_path}", "data.shards=/x", "model.backbon=tiny"])
    assert rc == 2
    assert "model.backbon" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was started
