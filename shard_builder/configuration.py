"""Typed OmegaConf configs shared by every command.

Each command declares one dataclass schema. ``load_config`` merges, in order, the schema defaults, an optional
YAML file and ``dotted.key=value`` overrides, and returns the validated dataclass instance. Any unknown or
misspelt key, wrong type or missing required value raises :class:`ConfigError` naming the key, before any work.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence, Type, TypeVar

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")

__all__ = ["ConfigError", "load_config", "to_yaml", "MISSING"]


class ConfigError(ValueError):
    """A configuration problem, with the offending key (and file) in the message."""


def _describe(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    msg = getattr(exc, "msg", None) or str(exc).splitlines()[0]
    if key:
        return f"config key '{key}': {msg}"
    return msg


def _check_missing(cfg: Any, prefix: str = "") -> None:
    if isinstance(cfg, DictConfig):
        for key in cfg.keys():
            full = f"{prefix}.{key}" if prefix else str(key)
            if OmegaConf.is_missing(cfg, key):
                raise ConfigError(f"config key '{full}': a value is required but none was given")
            _check_missing(cfg._get_node(key), full)
    elif isinstance(cfg, ListConfig):
        for i in range(len(cfg)):
            full = f"{prefix}[{i}]"
            if OmegaConf.is_missing(cfg, i):
                raise ConfigError(f"config key '{full}': a value is required but none was given")
            _check_missing(cfg._get_node(i), full)


def _indexes_a_list(key: str) -> bool:
    return "[" in key or any(part.isdigit() for part in key.split("."))


def load_config(schema: Type[T], path: str | Path | Sequence[str | Path] | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Return ``schema`` filled from ``path`` (YAML) and ``overrides`` (``a.b=value`` strings), validated.

    ``path`` may also be a list of YAML files, merged in order (later files win): a base config followed by
    recipe fragments such as ``configs/recipes/augment_replay.yaml``."""
    base = OmegaConf.structured(schema)
    layers = []
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            layers.append(OmegaConf.load(path))
        except Exception as exc:  # yaml errors carry the line
            raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form dotted.key=value")
        key = item.split("=", 1)[0]
        if not key or key.strip() != key:
            raise ConfigError(f"override '{item}' has an empty or padded key")
    # overrides into list items (`corpora.0.root=/data/x`, `corpora[0].root=...`) cannot be merged as a dict layer:
    # they are applied to the merged config below
    indexed = [o for o in overrides if _indexes_a_list(o.split("=", 1)[0])]
    plain = [o for o in overrides if o not in indexed]
    if plain:
        try:
            layers.append(OmegaConf.from_dotlist(list(plain)))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"bad override: {_describe(exc)}") from exc
    try:
        merged = OmegaConf.merge(base, *layers)
    except OmegaConfBaseException as exc:
        where = f" (in {', '.join(str(p) for p in paths)})" if paths else ""
        raise ConfigError(_describe(exc) + where) from exc
    for item in indexed:
        key, value = item.split("=", 1)
        try:
            OmegaConf.update(merged, key, OmegaConf.from_dotlist([f"v={value}"])["v"], merge=True)
        except (OmegaConfBaseException, IndexError, KeyError, TypeError, ValueError) as exc:
            msg = _describe(exc) if isinstance(exc, OmegaConfBaseException) else str(exc)
            raise ConfigError(f"bad override '{item}': {msg.splitlines()[0] if msg else type(exc).__name__}") from exc
    _check_missing(merged)
    try:
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML (for checkpoints and reports)."""
    if dataclasses.is_dataclass(cfg):
        cfg = OmegaConf.structured(cfg)
    return OmegaConf.to_yaml(cfg)


def to_dict(cfg: Any) -> dict:
    if dataclasses.is_dataclass(cfg):
        cfg = OmegaConf.structured(cfg)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
