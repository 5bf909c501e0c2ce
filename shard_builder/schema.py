"""The one definition of what a sample is: adapter records in, shard metadata out.

Every other package (trainer, eval) imports these names rather than re-spelling the fields.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

LABELS = ("bonafide", "spoof")
ATTACK_TYPES = ("digital", "replay")
SPLITS = ("train", "val", "test")

#: Fields of the per-sample ``<key>.json`` written into every shard (CONTRACT.md).
SAMPLE_FIELDS = (
    "key", "label", "attack_type", "attack", "corpus", "language", "speaker",
    "duration", "sample_rate", "source", "audio_sha1",
)


def label_to_int(label: str) -> int:
    """1 for spoof, 0 for bona fide: the polarity of every score in this project (higher = more likely spoof)."""
    if label == "spoof":
        return 1
    if label == "bonafide":
        return 0
    raise ValueError(f"unknown label {label!r}; expected one of {LABELS}")


@dataclass
class Record:
    """One utterance as an adapter sees it: where the audio is and what the corpus says about it.

    ``path`` is absolute; ``source`` is the same path relative to the corpus entry's root. ``split`` is the
    corpus's official split (``train``/``val``/``test``) or None when the corpus has none.
    """

    path: str
    source: str
    label: str
    speaker: Optional[str] = None
    language: Optional[str] = None
    attack: Optional[str] = None
    split: Optional[str] = None
    #: corpus-specific fields copied into the sample JSON (e.g. ReplayDF's ``setup``); JSON-serialisable values
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"record {self.source}: label {self.label!r} is not one of {LABELS}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"record {self.source}: split {self.split!r} is not one of {SPLITS}")


@dataclass
class SampleMeta:
    """The ``<key>.json`` of a shard sample."""

    key: str
    label: str
    attack_type: str
    attack: Optional[str]
    corpus: str
    language: Optional[str]
    speaker: Optional[str]
    duration: float
    sample_rate: int
    source: str
    audio_sha1: str
    extra: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d
