"""MLAAD (Multi-Language Audio Anti-Spoofing Dataset): TTS output only, all spoof.

Reads: ``<root>/fake/<lang>/<tts_model>/*.wav`` (``root`` may also be the ``fake`` folder itself). The pipe-delimited
``meta.csv`` files MLAAD ships (``path|original_file|language|...|model_name|...``) are not needed: label and
attack come from the folders. Label = spoof; attack = the ``<tts_model>`` folder name; language = ``<lang>``
(``languages`` keeps only the listed ones); speaker None (split by source file).
Pair with ``mailabs`` for the "Slavic" set (M-AILABS ru/uk/pl bona fide + MLAAD ru/uk/pl spoof).
"""
from __future__ import annotations

from typing import List

from ..configuration import ConfigError
from ..schema import Record
from .common import check_root, language_allowed, list_audio, rel, short_language


def prepare(entry, where: str, problems=None) -> List[Record]:  # no label lines here, so no line problems
    root = check_root(entry, where)
    fake = root / "fake" if (root / "fake").is_dir() else root
    records = []
    for lang_dir in sorted(d for d in fake.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if not language_allowed(entry, lang_dir.name):
            continue
        for model_dir in sorted(d for d in lang_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for path in list_audio(model_dir):
                records.append(Record(path=str(path), source=rel(path, root), label="spoof", speaker=None,
                                      language=short_language(lang_dir.name), attack=model_dir.name, split=None))
    if not records:
        raise ConfigError(f"config key '{where}.root': no audio under {fake}/<lang>/<tts_model>/ "
                          f"(entry {entry.name!r}, adapter 'mlaad')")
    return records
