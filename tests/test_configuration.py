"""The shared config loader: every command relies on it to stop on a bad key before doing any work."""
from dataclasses import dataclass, field
from typing import List, Optional

import pytest

from shard_builder.configuration import MISSING, ConfigError, load_config


@dataclass
class Inner:
    rate: int = 16000
    fmt: str = "flac"


@dataclass
class Schema:
    out_dir: str = MISSING
    seed: int = 0
    ratio: float = 0.5
    names: List[str] = field(default_factory=list)
    maybe: Optional[str] = None
    inner: Inner = field(default_factory=Inner)


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_file_then_overrides_win(tmp_path):
    cfg = load_config(Schema, write(tmp_path, "out_dir: a\ninner:\n  rate: 8000\n"), ["inner.fmt=wav", "seed=3"])
    assert (cfg.out_dir, cfg.seed, cfg.inner.rate, cfg.inner.fmt) == ("a", 3, 8000, "wav")
    assert isinstance(cfg, Schema) and isinstance(cfg.inner, Inner)


def test_misspelt_key_in_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"inner\.rat"):
        load_config(Schema, write(tmp_path, "out_dir: a\ninner:\n  rat: 8000\n"))


def test_misspelt_override_is_named():
    with pytest.raises(ConfigError, match="sed"):
        load_config(Schema, None, ["out_dir=a", "sed=1"])


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(ConfigError, match="seed"):
        load_config(Schema, write(tmp_path, "out_dir: a\nseed: many\n"))


def test_missing_required_value_is_named():
    with pytest.raises(ConfigError, match="out_dir"):
        load_config(Schema, None, [])


def test_missing_file_and_bad_override_form(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Schema, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="dotted.key=value"):
        load_config(Schema, None, ["out_dir"])
