import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
REPO = TESTS.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """An exported tiny detector (random weights, fixed seed)."""
    import torch

    from trainer.model import Detector, DetectorConfig

    d = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    Detector(DetectorConfig(backbone="tiny")).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def test_shards(tmp_path_factory):
    """3 FLAC shards of the test split, 8 samples each, lengths 0.5 s to 7 s, digital and replay corpora."""
    from shardkit import write_shards

    root = tmp_path_factory.mktemp("shards")
    write_shards(root, "test", n_samples=24, samples_per_shard=8, seed=1, durations=(0.5, 1.0, 2.5, 7.0, 1.5))
    return root


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env
