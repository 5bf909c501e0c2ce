"""ReplayDF: bona fide and TTS speech, both played back and re-recorded through several setups.

Reads: ``<root>/wav/<setup>/{spoof,benign}/*.wav`` (``meta.csv`` is not needed). Label from the class folder
(benign -> bonafide, spoof -> spoof); attack = ``<setup>`` on spoofs (None on bona fide); every sample also carries
``setup`` in its JSON. No speakers: split by source file name, so the replays of one utterance through different
setups stay in one split. Both classes are re-recorded: give the entry ``attack_type: replay``.
"""
from __future__ import annotations

from typing import List

from ..configuration import ConfigError
from ..schema import Record
from .common import check_root, list_audio, rel

CLASS_DIRS = {"benign": "bonafide", "spoof": "spoof"}


def prepare(entry, where: str, problems=None) -> List[Record]:  # no label lines here, so no line problems
    root = check_root(entry, where)
    wav = root / "wav"
    if not wav.is_dir():
        raise ConfigError(f"config key '{where}.root': {root} has no 'wav/<setup>/{{spoof,benign}}/' folder "
                          f"(entry {entry.name!r}, adapter 'replaydf')")
    language = entry.language or "en"
    records = []
    for setup in sorted(d for d in wav.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for class_dir, label in CLASS_DIRS.items():
            if not (setup / class_dir).is_dir():
                continue
            for path in list_audio(setup / class_dir):
                records.append(Record(path=str(path), source=rel(path, root), label=label, speaker=None,
                                      language=language, attack=setup.name if label == "spoof" else None,
                                      split=None, extra={"setup": setup.name}))
    return records
