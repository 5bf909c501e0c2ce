"""Generic manifest: any corpus described by a CSV or JSONL file (MLADDC, generated phrases, your own data).

Reads: ``protocol`` = a CSV with a header row (``.csv``; ``.tsv`` = tab-separated) or JSON Lines (``.jsonl`` /
``.json``, one object per line), default ``<root>/manifest.csv`` or ``<root>/manifest.jsonl``. Fields:
``path,label[,speaker,language,attack,split]``; ``path`` relative to root (or absolute); ``label`` is
``bonafide``/``spoof`` (also real/human/genuine/0 and fake/synthetic/1); ``split`` train/val/test (also dev/eval);
empty values mean unknown. A line of any other shape is skipped with a warning naming ``file:line`` and counted
in the build report; a missing/empty file or a header without ``path``/``label`` stops the build.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import List, Optional

from ..schema import Record
from .common import (SPLIT_WORDS, LineProblems, check_root, csv_rows, decode_lines, label_word, protocol_error,
                     protocol_path, rel)

FIELDS = ("path", "label", "speaker", "language", "attack", "split")
DEFAULTS = ("manifest.csv", "manifest.jsonl", "manifest.tsv")


def resolve_path(root: Path, p: str) -> Path:
    path = Path(os.path.expanduser(p))
    return path if path.is_absolute() else root / path


def split_word(value: Optional[str]) -> Optional[str]:
    """'dev' -> 'val' etc.; None for an empty value; ValueError (the reason) for a word that names no split."""
    if value is None or str(value).strip() == "":
        return None
    split = SPLIT_WORDS.get(str(value).strip().lower())
    if split is None:
        raise ValueError(f"split {value!r} is not one of train/val/test (or dev/eval)")
    return split


def _rows(proto: Path, problems: LineProblems):
    """(line number, {column: value}, line text) per data line; malformed lines go to ``problems``."""
    if proto.suffix.lower() in (".jsonl", ".json"):
        for lineno, line in enumerate(decode_lines(proto, problems), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.add(proto, lineno, f"not a JSON object ({exc.msg})", line)
                continue
            if not isinstance(obj, dict):
                problems.add(proto, lineno, "not a JSON object", line)
                continue
            yield lineno, {str(k).lower(): (None if v is None else str(v)) for k, v in obj.items()}, line
        return
    delim = "\t" if proto.suffix.lower() == ".tsv" else ","
    reader = csv.reader(decode_lines(proto, problems, header=True), delimiter=delim)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise protocol_error(proto, 1, "empty manifest; expected a header 'path,label[,speaker,...]'") from None
    for col in ("path", "label"):
        if col not in header:
            raise protocol_error(proto, 1, f"header has no {col!r} column (columns: {header})")
    for lineno, row in csv_rows(reader, proto, problems):
        if len(row) != len(header):
            problems.add(proto, lineno, f"expected {len(header)} fields, got {len(row)}", delim.join(row))
            continue
        yield lineno, dict(zip(header, (c.strip() for c in row))), delim.join(row)


def prepare(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    problems = problems if problems is not None else LineProblems(entry.name)
    root = check_root(entry, where)
    proto = protocol_path(entry, root, where, default=DEFAULTS)
    records = []
    for lineno, row, line in _rows(proto, problems):
        get = lambda c: row.get(c) or None  # noqa: E731
        if not get("path"):
            problems.add(proto, lineno, "missing 'path'", line)
            continue
        label = label_word(get("label") or "")
        if label is None:
            problems.add(proto, lineno, f"label {get('label')!r} is neither bona fide nor spoof", line)
            continue
        try:
            split = split_word(get("split"))
        except ValueError as exc:
            problems.add(proto, lineno, str(exc), line)
            continue
        path = resolve_path(root, get("path"))
        records.append(Record(
            path=str(path), source=rel(path, root), label=label, speaker=get("speaker"),
            language=get("language") or entry.language, attack=get("attack") if label == "spoof" else None,
            split=split))
    problems.require_usable(len(records), proto)
    return records
