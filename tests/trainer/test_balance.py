"""Class-balanced and label-weighted sampling: the minority class is read as often as the majority per epoch."""
import json

import pytest

from shard_builder.configuration import ConfigError, load_config
from shardkit import write_shards
from trainer.config import TrainConfig
from trainer.data import ShardStream, StreamOptions, class_balance_weights, list_shards


def _unbalance(root, keep_spoof):
    """Rewrite the index's by_label totals as a 3:1 bona fide:spoof split would report them."""
    idx = root / "train" / "index.json"
    d = json.loads(idx.read_text())
    d["totals"]["by_label"] = {"bonafide": 3 * keep_spoof, "spoof": keep_spoof}
    idx.write_text(json.dumps(d))


def test_balance_weights_upweight_the_minority(tmp_path):
    write_shards(tmp_path, "train", n_samples=16, samples_per_shard=8)
    _unbalance(tmp_path, 4)
    w = class_balance_weights(tmp_path, "train", {"attack_type:replay": 2.0})
    assert w["attack_type:replay"] == 2.0
    assert w["label:bonafide"] == pytest.approx(1.0) and w["label:spoof"] == pytest.approx(3.0)


def test_label_weight_changes_how_often_a_class_is_read(tmp_path):
    write_shards(tmp_path, "train", n_samples=32, samples_per_shard=8, durations=(1.0,))
    shards = list_shards(tmp_path, "train")

    def label_counts(weights):
        opts = StreamOptions(seed=0, batch_size=1, sample_rate=16000, train=True, crop_samples=1600,
                             weights=weights, num_workers=0)
        counts = {0: 0, 1: 0}
        for batch in ShardStream(shards, opts, None):
            for y in batch["labels"].tolist():
                counts[int(y)] += 1
        return counts

    base = label_counts({})
    doubled = label_counts({"label:spoof": 2.0})
    assert base == {0: 16, 1: 16}
    assert doubled == {0: 16, 1: 32}  # every spoof read twice (two crops), bona fide untouched


def test_bad_label_weight_key_is_named():
    with pytest.raises(ConfigError, match="data.weights.label"):
        load_config(TrainConfig, None, ["output_dir=x", "data.shards=y", "data.weights={labell:spoof: 2.0}"])
