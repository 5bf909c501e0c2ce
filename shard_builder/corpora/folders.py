"""Generic folders: the label is the name of a directory on the file's path.

Reads: every audio file below ``<root>``; the nearest directory named ``bonafide``/``bona-fide``/``real``/
``human``/``genuine`` (-> bonafide) or ``spoof``/``fake``/``synthetic``/``deepfake`` (-> spoof) labels it
(case-insensitive). A directory named ``train``/``val``/``test`` (also ``dev``/``eval``/``training``/...) above the
label directory gives the official split. For spoofs nested deeper (``spoof/<system>/x.wav``) the first folder below
the label folder is the attack id. Files under no label folder are ignored (a warning counts them).
Example: ``<root>/train/real/a.wav``, ``<root>/test/fake/xtts/b.wav``.
"""
from __future__ import annotations

import logging
from typing import List

from ..configuration import ConfigError
from ..schema import Record
from .common import SPLIT_WORDS, check_root, label_word, list_audio, rel

log = logging.getLogger(__name__)


def prepare(entry, where: str, problems=None) -> List[Record]:  # no label lines here, so no line problems
    root = check_root(entry, where)
    records, unlabeled = [], 0
    for path in list_audio(root):
        dirs = path.relative_to(root).parts[:-1]
        hit = None
        for i in range(len(dirs) - 1, -1, -1):
            if not dirs[i].isdigit() and label_word(dirs[i]) is not None:
                hit = i
                break
        if hit is None:
            unlabeled += 1
            continue
        label = label_word(dirs[hit])
        split = next((SPLIT_WORDS[d.lower()] for d in dirs[:hit] if d.lower() in SPLIT_WORDS), None)
        attack = dirs[hit + 1] if label == "spoof" and len(dirs) > hit + 1 else None
        records.append(Record(path=str(path), source=rel(path, root), label=label, speaker=None,
                              language=entry.language, attack=attack, split=split))
    if unlabeled:
        log.warning("entry %s: %d audio files under %s are in no bonafide/real/human or spoof/fake/synthetic "
                    "folder and were ignored", entry.name, unlabeled, root)
    if not records:
        raise ConfigError(f"config key '{where}.root': no audio under a bonafide/real/human or spoof/fake/synthetic "
                          f"folder in {root} (entry {entry.name!r}, adapter 'folders')")
    return records
