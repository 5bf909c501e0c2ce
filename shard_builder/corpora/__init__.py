"""Corpus adapters: one module per on-disk layout, each turning a corpus entry into :class:`Record` s.

An adapter only reads the corpus's own metadata (protocol/key files, folder names, TSV/CSV columns) and lists
files; decoding, resampling, deduplication, splitting and writing happen once, in :mod:`shard_builder.build`.
Every adapter module exposes ``prepare(entry: CorpusEntry, where: str, problems=None) -> list[Record]`` where
``where`` is the entry's config path (``corpora[3]``) used in error messages. Problems with the entry itself
(missing root, missing protocol, empty manifest, a header without a required column, a protocol whose every data
line is malformed) raise :class:`ConfigError` naming the key or ``file:line``. One malformed line among good ones
is skipped: the adapter reports it to ``problems`` (a :class:`~.common.LineProblems`, which logs it and keeps it for
the build report) and goes on. A listed file that is missing on disk is not an error here either (the build skips
it with reason ``missing``).
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Optional

from ..schema import Record
from .common import LineProblems

#: adapter name (as written in configs) -> module under shard_builder.corpora
ADAPTERS: Dict[str, str] = {
    "asvspoof2019": "asvspoof2019",
    "asvspoof2021": "asvspoof2021",
    "for": "for_rerec",
    "mailabs": "mailabs",
    "mlaad": "mlaad",
    "replaydf": "replaydf",
    "pyara": "pyara",
    "fleurs_hs": "fleurs_hs",
    "manifest": "manifest",
    "folders": "folders",
}


def get_adapter(name: str) -> Callable[..., List[Record]]:
    """The ``prepare`` function of adapter ``name``."""
    if name not in ADAPTERS:
        raise KeyError(f"unknown adapter {name!r}; expected one of {sorted(ADAPTERS)}")
    module = importlib.import_module(f"{__name__}.{ADAPTERS[name]}")
    return module.prepare


def prepare_records(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    """Run the entry's adapter; records come back sorted by ``source`` so the order never depends on the disk.

    Pass ``problems`` to get the malformed lines that were skipped (without it they are only logged)."""
    records = get_adapter(entry.adapter)(entry, where, problems if problems is not None else LineProblems(entry.name))
    records.sort(key=lambda r: r.source)
    return records
