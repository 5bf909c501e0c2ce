"""Tiny corpora in the real on-disk layouts of every adapter, for the shard builder's tests.

Every clip is short (0.25-0.5 s) and unique (a random tone + noise), unless a test copies one on purpose.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml  # PyYAML comes with omegaconf


def clip(rng: np.random.Generator, seconds: float = 0.3, sr: int = 16000, channels: int = 1) -> np.ndarray:
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.standard_normal(n)
    x = x.astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


def write(path: Path, rng, seconds=0.3, sr=16000, channels=1, subtype="PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), clip(rng, seconds, sr, channels), sr, subtype=subtype)
    return path


def asvspoof2019(root: Path, rng, speakers=("LA_0079", "LA_0080", "LA_0081", "LA_0082"), per=2) -> dict:
    """root/ASVspoof2019_LA_train/flac/*.flac + root/protocols/ASVspoof2019.LA.cm.train.trn.txt"""
    audio = root / "ASVspoof2019_LA_train"
    lines = []
    n = 0
    for spk in speakers:
        for j in range(per):
            utt = f"LA_T_{1000000 + n:07d}"
            n += 1
            spoof = j % 2 == 1
            write(audio / "flac" / f"{utt}.flac", rng)
            lines.append(f"{spk} {utt} - {'A0%d' % (1 + n % 6) if spoof else '-'} {'spoof' if spoof else 'bonafide'}")
    proto = root / "protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.parent.mkdir(parents=True, exist_ok=True)
    proto.write_text("\n".join(lines) + "\n")
    return {"adapter": "asvspoof2019", "root": str(audio), "protocol": str(proto), "attack_type": "digital"}


def asvspoof2021_pa(root: Path, rng, n_spk=6, per=4) -> dict:
    """root/flac/PA_E_*.flac + root/keys/PA/CM/trial_metadata.txt"""
    lines = []
    n = 0
    for s in range(n_spk):
        for j in range(per):
            utt = f"PA_E_{1000000 + n:07d}"
            n += 1
            write(root / "flac" / f"{utt}.flac", rng)
            if j % 2:
                lines.append(f"PA_{s:04d} {utt} R3 M3 d4 r1 m1 s{j} c4 spoof notrim eval")
            else:
                lines.append(f"PA_{s:04d} {utt} R1 M2 d1 - - - - bonafide notrim eval")
    key = root / "keys" / "PA" / "CM" / "trial_metadata.txt"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("\n".join(lines) + "\n")
    return {"adapter": "asvspoof2021", "root": str(root), "attack_type": "replay"}


def asvspoof2021_la(root: Path, rng) -> dict:
    lines = []
    for n in range(4):
        utt = f"LA_E_{9000000 + n:07d}"
        write(root / "flac" / f"{utt}.flac", rng)
        lines.append(f"LA_00{n:02d} {utt} alaw ita_tx {'A07 spoof' if n % 2 else 'bonafide bonafide'} notrim eval")
    key = root / "keys" / "LA" / "CM" / "trial_metadata.txt"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("\n".join(lines) + "\n")
    return {"adapter": "asvspoof2021", "root": str(root), "protocol": "keys/LA/CM/trial_metadata.txt",
            "attack_type": "digital"}


def for_rerec(root: Path, rng, per=2) -> dict:
    for d in ("training", "validation", "testing"):
        for c in ("real", "fake"):
            for j in range(per):
                write(root / d / c / f"file{j}_{c}.wav", rng)
    return {"adapter": "for", "root": str(root), "attack_type": "replay"}


def mailabs(root: Path, rng) -> dict:
    for lang in ("ru_RU", "uk_UK"):
        for gender, spk, book in (("female", "anna", "book1"), ("male", "ivan", "book2"), ("mix", None, "book3")):
            d = root / lang / "by_book" / gender / (spk or "") / book if spk else root / lang / "by_book" / gender / book
            ids = [f"{lang}_{book}_{k:02d}" for k in range(2)]
            for i in ids:
                write(d / "wavs" / f"{i}.wav", rng)
            (d / "metadata.csv").write_text("".join(f"{i}|Some text.|some text\n" for i in ids))
    return {"adapter": "mailabs", "root": str(root), "attack_type": "digital"}


def mlaad(root: Path, rng) -> dict:
    for lang in ("ru", "uk", "de"):
        for model in ("xtts_v2", "vits"):
            d = root / "fake" / lang / model
            rows = ["path|original_file|language|is_original_language|duration|training_data|model_name|architecture|transcript"]
            for k in range(2):
                write(d / f"{model}_{k}.wav", rng)
                rows.append(f"fake/{lang}/{model}/{model}_{k}.wav|x.wav|{lang}|True|0.3|x|{model}|{model}|hello")
            (d / "meta.csv").write_text("\n".join(rows) + "\n")
    return {"adapter": "mlaad", "root": str(root), "attack_type": "digital", "languages": ["ru", "uk"]}


def replaydf(root: Path, rng) -> dict:
    for setup in ("setup_a", "setup_b"):
        for c in ("spoof", "benign"):
            for k in range(2):
                write(root / "wav" / setup / c / f"utt{k}_{c}.wav", rng)
    return {"adapter": "replaydf", "root": str(root), "attack_type": "replay"}


def pyara(root: Path, rng) -> dict:
    rows = ["path\tfake\tspeaker"]
    for k in range(6):
        write(root / "audio" / f"p{k}.wav", rng)
        rows.append(f"audio/p{k}.wav\t{k % 2}\tspk{k % 3}")
    (root / "pyara.tsv").write_text("\n".join(rows) + "\n")
    return {"adapter": "pyara", "root": str(root), "protocol": "pyara.tsv", "attack_type": "digital"}


def fleurs_hs(root: Path, rng) -> dict:
    for lang in ("pl_pl", "de_de"):
        for split in ("train", "test"):
            for k in range(2):
                write(root / lang / split / "human" / f"{k}.wav", rng)
                write(root / lang / split / "synthetic" / f"{k}.wav", rng)
    return {"adapter": "fleurs_hs", "root": str(root), "attack_type": "replay", "languages": ["pl"]}


def manifest(root: Path, rng, jsonl=False) -> dict:
    rows = []
    for k in range(6):
        write(root / "clips" / f"m{k}.wav", rng)
        rows.append({"path": f"clips/m{k}.wav", "label": "fake" if k % 2 else "real", "speaker": f"s{k % 3}",
                     "language": "ru", "attack": "xtts" if k % 2 else ""})
    if jsonl:
        (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return {"adapter": "manifest", "root": str(root), "protocol": "manifest.jsonl", "attack_type": "digital"}
    text = "path,label,speaker,language,attack\n" + "".join(
        f"{r['path']},{r['label']},{r['speaker']},{r['language']},{r['attack']}\n" for r in rows)
    (root / "manifest.csv").write_text(text)
    return {"adapter": "manifest", "root": str(root), "protocol": "manifest.csv", "attack_type": "digital"}


def folders(root: Path, rng) -> dict:
    for k in range(2):
        write(root / "train" / "real" / f"r{k}.wav", rng)
        write(root / "train" / "fake" / "tts_x" / f"f{k}.wav", rng)
        write(root / "human" / f"h{k}.wav", rng)
        write(root / "synthetic" / f"s{k}.wav", rng)
    write(root / "unlabeled" / "u.wav", rng)
    return {"adapter": "folders", "root": str(root), "attack_type": "digital", "language": "ru"}


# ----------------------------------------------------------------------------------------------- bad inputs
def bad_files(d: Path, rng) -> dict:
    """One file per bad-input reason; returns {file name: expected reason}."""
    d.mkdir(parents=True, exist_ok=True)
    good = write(d / "_good.wav", rng).read_bytes()
    (d / "empty.wav").write_bytes(b"")
    (d / "notaudio.wav").write_bytes(b"this is a text file, not audio\n" * 20)
    (d / "truncated.wav").write_bytes(good[: len(good) // 2])
    flac = d / "_good.flac"
    write(flac, rng)
    fb = flac.read_bytes()
    (d / "truncated.flac").write_bytes(fb[: len(fb) // 2])
    bad = bytearray(good)
    bad[20:22] = struct.pack("<H", 0x1234)  # unknown codec tag: libsndfile cannot open it
    (d / "unreadable.wav").write_bytes(bytes(bad))
    nan = clip(rng)
    nan[100:200] = np.nan
    sf.write(str(d / "nan.wav"), nan, 16000, subtype="FLOAT")
    sf.write(str(d / "silent.wav"), np.zeros(8000, np.float32), 16000, subtype="PCM_16")
    sf.write(str(d / "noframes.wav"), np.zeros(0, np.float32), 16000, subtype="PCM_16")
    flac.unlink()
    (d / "_good.wav").unlink()
    return {"empty.wav": "empty", "notaudio.wav": "not_audio", "truncated.wav": "truncated",
            "truncated.flac": "truncated", "unreadable.wav": "unreadable", "nan.wav": "non_finite",
            "silent.wav": "silent", "noframes.wav": "no_frames", "missing.wav": "missing"}


def write_config(path: Path, out_dir: Path, entries: list, **top) -> Path:
    cfg = {"out_dir": str(out_dir), "seed": 0, "workers": 1,
           "shard": {"max_samples": 8, "max_bytes": 1 << 30}, "corpora": entries}
    cfg.update(top)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
