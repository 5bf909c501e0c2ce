"""Helpers shared by the adapters: root/protocol checks, file listing, label words, protocol-line errors."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from ..configuration import ConfigError

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


def protocol_error(path: Path, lineno: int, msg: str, line: str = "") -> ConfigError:
    shown = f": {line.strip()[:120]!r}" if line else ""
    return ConfigError(f"{path}:{lineno}: {msg}{shown}")


def read_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, stripped line) of non-empty, non-comment lines; undecodable bytes are an error with the line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                raise protocol_error(path, lineno, "line is not valid UTF-8")
            if line and not line.startswith("#"):
                yield lineno, line


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
