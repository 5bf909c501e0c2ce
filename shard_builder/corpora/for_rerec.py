"""Fake-or-Real (FoR), e.g. its re-recorded version ``for-rerecorded``.

Reads: ``<root>/{training,validation,testing}/{real,fake}/*.wav`` (any audio extension, nested folders allowed).
Label from the class folder (real -> bonafide, fake -> spoof); official split from the split folder
(training -> train, validation -> val, testing -> test). No speakers or attack ids in the corpus (None).
Both classes of for-rerecorded are re-recordings, so give the whole entry ``attack_type: replay``.
"""
from __future__ import annotations

from typing import List

from ..configuration import ConfigError
from ..schema import Record
from .common import check_root, list_audio, rel

SPLIT_DIRS = {"training": "train", "validation": "val", "testing": "test"}
CLASS_DIRS = {"real": "bonafide", "fake": "spoof"}


def prepare(entry, where: str, problems=None) -> List[Record]:  # no label lines here, so no line problems
    root = check_root(entry, where)
    language = entry.language or "en"
    records = []
    for split_dir, split in SPLIT_DIRS.items():
        for class_dir, label in CLASS_DIRS.items():
            d = root / split_dir / class_dir
            if not d.is_dir():
                continue
            for path in list_audio(d):
                records.append(Record(path=str(path), source=rel(path, root), label=label, speaker=None,
                                      language=language, attack=None, split=split))
    if not records:
        raise ConfigError(f"config key '{where}.root': no audio under {root}/{{training,validation,testing}}/"
                          f"{{real,fake}}/ (entry {entry.name!r}, adapter 'for')")
    return records
