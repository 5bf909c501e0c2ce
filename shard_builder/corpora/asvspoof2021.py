"""ASVspoof 2021 LA / PA / DF through the ``keys/<TRACK>/CM/trial_metadata.txt`` key files.

Reads: ``protocol`` = a trial_metadata.txt key (default: the only ``keys/{LA,PA,DF}/CM/trial_metadata.txt`` under
root) and the audio ``<root>/flac/<UTT>.flac`` (also ``<root>/<UTT>.flac`` / ``.wav``). Key lines:
  LA: ``LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval``            (8 columns, label = column 6)
  PA: ``PA_0010 PA_E_1000001 R3 M3 d4 r1 m1 s4 c4 spoof notrim eval``     (12 columns, label = column 10)
  DF: ``LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -`` (13 columns)
The track is recognised from the utterance id prefix (``LA_E``/``PA_E``/``DF_E``).
Attack: LA/DF column 5 (e.g. ``A07``); PA spoofs: the attacker factors, columns 6-9 joined (attacker room,
attacker microphone, replay device, attacker-to-talker distance: ``r1-m1-s4-c4``); bona fide samples get None.
Samples also carry ``trim`` (``notrim``/``trim``: the ``hidden`` subset has its non-speech trimmed, a shortcut a
model can learn) and ``subset`` (``eval``/``progress``/``hidden``), and LA/DF samples their ``codec``.
Speaker = column 1. No official split (all of 2021 is the eval set): samples are assigned to splits by speaker.
Use ``max_per_label`` for a balanced subset.
"""
from __future__ import annotations

from typing import List, Optional

from ..schema import Record
from .common import LineProblems, check_root, find_audio, protocol_path, read_lines, rel

_LABEL_COL = {"LA": 5, "DF": 5, "PA": 9}
_MIN_COLS = {"LA": 6, "DF": 6, "PA": 10}
DEFAULT_KEYS = tuple(f"keys/{t}/CM/trial_metadata.txt" for t in ("LA", "PA", "DF"))


def track_of(utt: str):
    head = utt.split("_")[0].upper()
    return head if head in _LABEL_COL else None


def prepare(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    problems = problems if problems is not None else LineProblems(entry.name)
    root = check_root(entry, where)
    proto = protocol_path(entry, root, where, default=DEFAULT_KEYS)
    language = entry.language or "en"
    records = []
    for lineno, line in read_lines(proto, problems):
        cols = line.split()
        if len(cols) < 2:
            problems.add(proto, lineno, "expected a trial_metadata line (SPEAKER UTT ... LABEL ...)", line)
            continue
        track = track_of(cols[1])
        if track is None:
            problems.add(proto, lineno, f"utterance id {cols[1]!r} is not an LA_/PA_/DF_ trial", line)
            continue
        if len(cols) < _MIN_COLS[track]:
            problems.add(proto, lineno, f"{track} key lines have at least {_MIN_COLS[track]} columns, "
                                        f"got {len(cols)}", line)
            continue
        label = cols[_LABEL_COL[track]]
        if label not in ("bonafide", "spoof"):
            problems.add(proto, lineno, f"column {_LABEL_COL[track] + 1} must be 'bonafide' or 'spoof', "
                                        f"got {label!r}", line)
            continue
        attack = None
        if label == "spoof":
            if track == "PA":
                attack = "-".join(cols[5:9])
            elif cols[4] not in ("-", "bonafide"):
                attack = cols[4]
        lc = _LABEL_COL[track]
        extra = {name: cols[lc + k] for k, name in ((1, "trim"), (2, "subset")) if len(cols) > lc + k}
        if track in ("LA", "DF"):
            extra["codec"] = cols[2]
        path = find_audio(root, cols[1])
        records.append(Record(path=str(path), source=rel(path, root), label=label, speaker=cols[0],
                              language=language, attack=attack, split=None, extra=extra))
    problems.require_usable(len(records), proto)
    return records
