"""Helpers shared by the adapters: root/protocol checks, file listing, label words, malformed protocol lines."""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..configuration import ConfigError

log = logging.getLogger(__name__)

#: extensions soundfile reads that corpora ship (lower case, with dot)
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".opus")

BONAFIDE_WORDS = {"bonafide", "bona-fide", "bona_fide", "real", "human", "genuine", "benign", "0"}
SPOOF_WORDS = {"spoof", "spoofed", "fake", "synthetic", "deepfake", "1"}

SPLIT_WORDS = {
    "train": "train", "training": "train", "trn": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "development": "val",
    "test": "test", "testing": "test", "eval": "test", "evaluation": "test",
}


def label_word(word: str) -> Optional[str]:
    """'real'/'human'/'1'/... -> 'bonafide' | 'spoof'; None when the word names no label."""
    w = str(word).strip().lower()
    if w in BONAFIDE_WORDS:
        return "bonafide"
    if w in SPOOF_WORDS:
        return "spoof"
    return None


def check_root(entry, where: str) -> Path:
    root = Path(os.path.expanduser(str(entry.root)))
    if not root.is_dir():
        raise ConfigError(f"config key '{where}.root': corpus root {str(root)!r} of entry {entry.name!r} "
                          f"does not exist or is not a directory")
    return root.resolve()


def protocol_path(entry, root: Path, where: str, required: bool = True, default: Sequence[str] = ()) -> Optional[Path]:
    """The entry's label file: ``protocol`` (absolute or relative to root), else the first existing default."""
    if entry.protocol:
        p = Path(os.path.expanduser(str(entry.protocol)))
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            raise ConfigError(f"config key '{where}.protocol': protocol file {str(p)!r} of entry {entry.name!r} "
                              f"does not exist")
        return p
    for d in default:
        if (root / d).is_file():
            return root / d
    if required:
        hint = f" (looked for {', '.join(default)} under the root)" if default else ""
        raise ConfigError(f"config key '{where}.protocol': adapter {entry.adapter!r} of entry {entry.name!r} needs a "
                          f"protocol file{hint}")
    return None


def line_message(path: Path, lineno: int, msg: str, line: str = "") -> str:
    """``file:line: reason: 'line text'`` (the text shortened to 120 characters): the one spelling of a line problem."""
    shown = f": {line.strip()[:120]!r}" if line else ""
    return f"{path}:{lineno}: {msg}{shown}"


def protocol_error(path: Path, lineno: int, msg: str, line: str = "") -> ConfigError:
    """A file-level problem (no header, header without a required column...): the build stops before writing."""
    return ConfigError(line_message(path, lineno, msg, line))


class LineProblems:
    """The malformed lines of one corpus entry's protocol/manifest/metadata files.

    One bad line among good ones is a damaged corpus, not a wrong config: the adapter skips it (``add``) and goes
    on, and the build report counts and lists it, so nothing disappears silently. A file whose every data line is
    malformed is the wrong file or the wrong adapter: ``require_usable`` turns that into a ConfigError.
    """

    #: at most this many lines are listed (``items``); ``count`` stays exact
    LIST_CAP = 100

    def __init__(self, entry_name: str = ""):
        self.entry_name = entry_name
        self.count = 0
        self.items: List[dict] = []
        self._first: Dict[Path, Tuple[int, str, str]] = {}  # file -> its first bad line (lineno, reason, text)
        self._per_file: Dict[Path, int] = {}

    def add(self, path: Path, lineno: int, msg: str, line: str = "") -> None:
        """Log the line once as a warning and record it; the caller then skips it."""
        who = f"entry {self.entry_name}: " if self.entry_name else ""
        log.warning("%s%s (line skipped)", who, line_message(path, lineno, msg, line))
        self.count += 1
        self._per_file[path] = self._per_file.get(path, 0) + 1
        self._first.setdefault(path, (lineno, msg, line))
        if len(self.items) < self.LIST_CAP:
            self.items.append({"file": str(path), "line": lineno, "reason": msg, "text": line.strip()[:120]})

    def require_usable(self, n_usable: int, path: Optional[Path] = None) -> None:
        """Raise when lines of ``path`` (default: of any file) were malformed and none gave a record."""
        if n_usable:
            return
        files = [path] if path is not None else list(self._first)
        for p in files:
            if p in self._first:
                lineno, msg, line = self._first[p]
                raise protocol_error(p, lineno, f"every data line is malformed ({self._per_file[p]} lines; wrong "
                                                f"file or wrong adapter?), the first: {msg}", line)


def decode_lines(path: Path, problems: LineProblems, header: bool = False) -> Iterator[str]:
    """Every physical line of ``path``, line ends kept (so csv counts the same line numbers as an editor), streamed
    (a 2021 DF key has 600k lines).

    A line that is not UTF-8 is reported to ``problems`` and replaced by an empty line; with ``header`` an
    undecodable first line is a file-level error, since no line of the file can be read without it.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                shown = raw.decode("utf-8", errors="backslashreplace")  # '\xff' marks the bad bytes
                if header and lineno == 1:
                    raise protocol_error(path, 1, "header line is not valid UTF-8", shown) from None
                problems.add(path, lineno, "line is not valid UTF-8", shown)
                yield "\n"


def read_lines(path: Path, problems: LineProblems) -> Iterator[Tuple[int, str]]:
    """(line number, stripped line) of non-empty, non-comment lines; undecodable lines are reported and skipped."""
    for lineno, line in enumerate(decode_lines(path, problems), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def csv_rows(reader, path: Path, problems: LineProblems) -> Iterator[Tuple[int, List[str]]]:
    """(line number, fields) of each non-blank row left in ``reader``; a row csv cannot parse (an over-long field,
    say) is reported and skipped, and reading goes on with the next line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(path, reader.line_num, f"cannot be parsed ({exc})")
            continue
        if row and any(c.strip() for c in row):
            yield reader.line_num, row


def list_audio(directory: Path) -> List[Path]:
    """Every audio file below ``directory`` (recursive), sorted; hidden files are ignored."""
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and f.lower().endswith(AUDIO_EXTS):
                out.append(Path(dirpath) / f)
    return out


def rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def find_audio(root: Path, utt: str, subdirs: Sequence[str] = ("flac", "wav", "")) -> Path:
    """The file of utterance id ``utt``: first existing ``root/<subdir>/<utt>.<ext>``; if none, the first candidate
    (the build then reports it as missing)."""
    candidates = [root / d / f"{utt}{ext}" if d else root / f"{utt}{ext}" for d in subdirs for ext in (".flac", ".wav")]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def language_allowed(entry, lang: str) -> bool:
    """``languages`` filter: accepts 'ru' for 'ru_RU' and vice versa (case-insensitive)."""
    if not entry.languages:
        return True
    lang = lang.lower()
    for want in entry.languages:
        w = str(want).lower()
        if lang == w or lang.split("_")[0] == w.split("_")[0]:
            return True
    return False


def short_language(lang: str) -> str:
    """'ru_RU' -> 'ru', 'pl' -> 'pl'."""
    return lang.split("_")[0].split("-")[0].lower()
