"""Pyara (Russian bona fide vs synthetic speech) through its TSV.

Reads: ``protocol`` = a tab-separated file with a header row holding at least the columns ``path`` and ``fake``
(``0`` = real -> bonafide, ``1`` = fake -> spoof; ``true``/``false`` accepted), default ``<root>/*.tsv`` when there
is exactly one. ``path`` is relative to root (or absolute). Optional columns ``speaker``, ``language``, ``attack``
(or ``model``), ``split`` are used when present. Language defaults to the entry's ``language`` or ``ru``.
"""
from __future__ import annotations

import csv
import io
from typing import List

from ..schema import Record
from .common import check_root, protocol_error, protocol_path, rel
from .manifest import resolve_path, split_word

FAKE_VALUES = {"0": "bonafide", "1": "spoof", "false": "bonafide", "true": "spoof", "0.0": "bonafide", "1.0": "spoof"}


def prepare(entry, where: str) -> List[Record]:
    root = check_root(entry, where)
    tsvs = sorted(p.name for p in root.glob("*.tsv"))
    proto = protocol_path(entry, root, where, default=tsvs if len(tsvs) == 1 else ())
    text = proto.read_bytes().decode("utf-8-sig", errors="strict")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        raise protocol_error(proto, 1, "empty TSV; expected a header with 'path' and 'fake' columns")
    header = [h.strip().lower() for h in rows[0]]
    for col in ("path", "fake"):
        if col not in header:
            raise protocol_error(proto, 1, f"header has no {col!r} column (columns: {header})")
    ix = {h: i for i, h in enumerate(header)}
    language = entry.language or "ru"
    records = []
    for lineno, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise protocol_error(proto, lineno, f"expected {len(header)} tab-separated fields, got {len(row)}",
                                 "\t".join(row))
        get = lambda c: row[ix[c]].strip() if c in ix and row[ix[c]].strip() else None  # noqa: E731
        label = FAKE_VALUES.get((get("fake") or "").lower())
        if label is None:
            raise protocol_error(proto, lineno, f"'fake' must be 0 or 1, got {get('fake')!r}", "\t".join(row))
        if not get("path"):
            raise protocol_error(proto, lineno, "empty 'path'", "\t".join(row))
        path = resolve_path(root, get("path"))
        records.append(Record(
            path=str(path), source=rel(path, root), label=label, speaker=get("speaker"),
            language=get("language") or language, attack=(get("attack") or get("model")) if label == "spoof" else None,
            split=split_word(get("split"), proto, lineno)))
    return records
