"""FLEURS-HS (FLEURS human speech + synthetic counterparts from commercial TTS), as exported to files.

Reads: ``<root>/<lang>/<split>/{human,synthetic}/[<tts>/]*.wav`` where ``<split>`` (train/dev/test) is optional
(``<root>/<lang>/{human,synthetic}/...`` also works, and ``root`` may be one language folder). Label from the class
folder (human -> bonafide, synthetic -> spoof); attack = the ``<tts>`` folder when present; language = ``<lang>``
(``pl`` for ``pl_pl``; ``languages`` filters); official split from ``<split>``. No speakers: split by source file
name, so a human clip and its synthetic counterpart (same file name) stay together.
The reference system grouped FLEURS-HS Polish under *replay*, although the corpus card describes its synthetic side
as commercial TTS; configs/corpora/fleurs_hs.yaml keeps the reference's grouping (see docs/shard_builder.md).
"""
from __future__ import annotations

from typing import List

from ..configuration import ConfigError
from ..schema import Record
from .common import SPLIT_WORDS, check_root, label_word, language_allowed, list_audio, rel, short_language

CLASS_WORDS = ("human", "synthetic")


def prepare(entry, where: str, problems=None) -> List[Record]:  # no label lines here, so no line problems
    root = check_root(entry, where)
    records = []
    for path in list_audio(root):
        dirs = path.relative_to(root).parts[:-1]
        low = [d.lower() for d in dirs]
        hit = next((i for i, d in enumerate(low) if d in CLASS_WORDS), None)
        if hit is None:
            continue
        label = label_word(low[hit])
        before = dirs[:hit]
        split = next((SPLIT_WORDS[d.lower()] for d in before if d.lower() in SPLIT_WORDS), None)
        lang_dirs = [d for d in before if d.lower() not in SPLIT_WORDS]
        lang = lang_dirs[0] if lang_dirs else (entry.language or root.name)
        if not language_allowed(entry, lang):
            continue
        attack = dirs[hit + 1] if label == "spoof" and len(dirs) > hit + 1 else None
        records.append(Record(path=str(path), source=rel(path, root), label=label, speaker=None,
                              language=short_language(lang), attack=attack, split=split))
    if not records:
        raise ConfigError(f"config key '{where}.root': no audio under <lang>/[<split>/]{{human,synthetic}}/ in {root} "
                          f"(entry {entry.name!r}, adapter 'fleurs_hs')")
    return records
