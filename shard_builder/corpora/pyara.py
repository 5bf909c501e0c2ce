"""Pyara (Russian bona fide vs synthetic speech) through its TSV.

Reads: ``protocol`` = a tab-separated file with a header row holding at least the columns ``path`` and ``fake``
(``0`` = real -> bonafide, ``1`` = fake -> spoof; ``true``/``false`` accepted), default ``<root>/*.tsv`` when there
is exactly one. ``path`` is relative to root (or absolute). Optional columns ``speaker``, ``language``, ``attack``
(or ``model``), ``split`` are used when present. Language defaults to the entry's ``language`` or ``ru``.
"""
from __future__ import annotations

import csv
from typing import List, Optional

from ..schema import Record
from .common import LineProblems, check_root, csv_rows, decode_lines, protocol_error, protocol_path, rel
from .manifest import resolve_path, split_word

FAKE_VALUES = {"0": "bonafide", "1": "spoof", "false": "bonafide", "true": "spoof", "0.0": "bonafide", "1.0": "spoof"}


def prepare(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    problems = problems if problems is not None else LineProblems(entry.name)
    root = check_root(entry, where)
    tsvs = sorted(p.name for p in root.glob("*.tsv"))
    proto = protocol_path(entry, root, where, default=tsvs if len(tsvs) == 1 else ())
    reader = csv.reader(decode_lines(proto, problems, header=True), delimiter="\t")
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise protocol_error(proto, 1, "empty TSV; expected a header with 'path' and 'fake' columns") from None
    for col in ("path", "fake"):
        if col not in header:
            raise protocol_error(proto, 1, f"header has no {col!r} column (columns: {header})")
    ix = {h: i for i, h in enumerate(header)}
    language = entry.language or "ru"
    records = []
    for lineno, row in csv_rows(reader, proto, problems):
        line = "\t".join(row)
        if len(row) != len(header):
            problems.add(proto, lineno, f"expected {len(header)} tab-separated fields, got {len(row)}", line)
            continue
        get = lambda c: row[ix[c]].strip() if c in ix and row[ix[c]].strip() else None  # noqa: E731
        label = FAKE_VALUES.get((get("fake") or "").lower())
        if label is None:
            problems.add(proto, lineno, f"'fake' must be 0 or 1, got {get('fake')!r}", line)
            continue
        if not get("path"):
            problems.add(proto, lineno, "empty 'path'", line)
            continue
        try:
            split = split_word(get("split"))
        except ValueError as exc:
            problems.add(proto, lineno, str(exc), line)
            continue
        path = resolve_path(root, get("path"))
        records.append(Record(
            path=str(path), source=rel(path, root), label=label, speaker=get("speaker"),
            language=get("language") or language, attack=(get("attack") or get("model")) if label == "spoof" else None,
            split=split))
    problems.require_usable(len(records), proto)
    return records
