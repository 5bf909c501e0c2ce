"""M-AILABS speech corpus (all bona fide).

Reads: ``<root>/<lang>/by_book/{female,male}/<speaker>/<book>/metadata.csv`` and
``<root>/<lang>/by_book/mix/<book>/metadata.csv``; each metadata.csv line is ``id|text|normalized`` (pipe-delimited,
no header) and names the audio ``<book dir>/wavs/<id>.wav``. ``root`` may also be one language directory
(``<root>/by_book/...``; its language is then the directory name or the entry's ``language``).
Label = bonafide; speaker = the speaker folder (None under ``mix``); language = ``ru`` for ``ru_RU`` etc.;
``languages`` keeps only the listed languages (``ru``, ``uk_UK``...). No official split (assigned by speaker).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from ..configuration import ConfigError
from ..schema import Record
from .common import LineProblems, check_root, language_allowed, read_lines, rel, short_language


def _language_dirs(root: Path, entry):
    if (root / "by_book").is_dir():
        return [(entry.language or root.name, root / "by_book")]
    return [(d.name, d / "by_book") for d in sorted(root.iterdir()) if (d / "by_book").is_dir()]


def prepare(entry, where: str, problems: Optional[LineProblems] = None) -> List[Record]:
    problems = problems if problems is not None else LineProblems(entry.name)
    root = check_root(entry, where)
    records = []
    langs = _language_dirs(root, entry)
    if not langs:
        raise ConfigError(f"config key '{where}.root': no '<lang>/by_book/' folder under {root} "
                          f"(entry {entry.name!r}, adapter 'mailabs')")
    for lang, by_book in langs:
        if not language_allowed(entry, lang):
            continue
        for meta in sorted(by_book.rglob("metadata.csv")):
            parts = meta.relative_to(by_book).parts  # (gender, speaker, book, metadata.csv) or (mix, book, ...)
            speaker = parts[1] if len(parts) >= 4 and parts[0] != "mix" else None
            for lineno, line in read_lines(meta, problems):
                utt = line.split("|", 1)[0].strip()
                if not utt or "/" in utt:
                    problems.add(meta, lineno, "expected 'id|text|normalized'", line)
                    continue
                path = meta.parent / "wavs" / f"{utt}.wav"
                records.append(Record(path=str(path), source=rel(path, root), label="bonafide", speaker=speaker,
                                      language=short_language(lang), attack=None, split=None))
    # one book's broken metadata.csv is skipped line by line; no usable line in any of them is the wrong root
    problems.require_usable(len(records))
    return records
