"""ASVspoof 2019 (LA or PA) through its 5-column CM protocol.

Reads: ``protocol`` = a CM protocol file with 5 space-separated columns ``SPEAKER UTT ENV ATTACK LABEL``, e.g.
``LA_0079 LA_T_1138215 - - bonafide`` / ``LA_0079 LA_T_1004644 - A01 spoof`` (PA: ``PA_0079 PA_T_0000001 aaa AA
spoof``), and the audio ``<root>/flac/<UTT>.flac`` (also found as ``<root>/<UTT>.flac`` or ``.wav``).
Typical entry: root = ``LA/ASVspoof2019_LA_train``,
protocol = ``../ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt``.
Label = column 5; attack = column 4 (None when ``-``); speaker = column 1; language = entry ``language`` or ``en``.
Official split from the protocol's file name: ``train`` -> train, ``dev`` -> val, ``eval`` -> test.
"""
from __future__ import annotations

import re
from typing import List, Optional

from ..schema import Record
from .common import LineProblems, check_root, find_audio, protocol_path, read_lines, rel

_SPLIT_IN_NAME = (("train", "train"), ("dev", "val"), ("eval", "test"))


def official_split(name: str):
    parts = set(re.split(r"[._\-]", name.lower()))
    for word, split in _SPLIT_IN_NAME:
        if word in parts:
            return split
    return None


def prepare(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    problems = problems if problems is not None else LineProblems(entry.name)
    root = check_root(entry, where)
    proto = protocol_path(entry, root, where)
    split = official_split(proto.name)
    language = entry.language or "en"
    records = []
    for lineno, line in read_lines(proto, problems):
        cols = line.split()
        if len(cols) != 5:
            problems.add(proto, lineno, f"expected 5 columns (SPEAKER UTT ENV ATTACK LABEL), got {len(cols)}", line)
            continue
        speaker, utt, _env, attack, label = cols
        if label not in ("bonafide", "spoof"):
            problems.add(proto, lineno, f"label column must be 'bonafide' or 'spoof', got {label!r}", line)
            continue
        path = find_audio(root, utt)
        records.append(Record(
            path=str(path), source=rel(path, root), label=label, speaker=speaker, language=language,
            attack=None if attack in ("-", "bonafide") or label == "bonafide" else attack, split=split))
    problems.require_usable(len(records), proto)
    return records
