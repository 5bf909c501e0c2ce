"""Synthetic mini-corpora in the real on-disk layouts, plus a ready ``shards.yaml`` that builds shards from them.

``write_demo_corpora(OUT_DIR, seed)`` writes (a few hundred clips, ~15 min of audio; speech-like signals from
:mod:`shard_builder.synth`)::

    OUT_DIR/
      shards.yaml                                   python -m shard_builder build --config OUT_DIR/shards.yaml
      asvspoof2019/LA/ASVspoof2019_LA_{train,dev,eval}/flac/LA_?_NNNNNNN.flac
      asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
      asvspoof2021/ASVspoof2021_LA_eval/{flac/LA_E_*.flac, keys/LA/CM/trial_metadata.txt}
      asvspoof2021/ASVspoof2021_PA_eval/{flac/PA_E_*.flac, keys/PA/CM/trial_metadata.txt}
      for/for-rerecorded/{training,validation,testing}/{real,fake}/*.wav
      slavic/mailabs/{ru_RU,uk_UK,pl_PL}/by_book/{female,male}/<speaker>/<book>/{metadata.csv,wavs/*.wav}
      slavic/mlaad/fake/{ru,uk,pl}/<tts_model>/{*.wav,meta.csv}
      replaydf/{wav/<setup>/{spoof,benign}/*.wav, meta.csv}
      pyara/{pyara.tsv, clips/*.wav}
      generated_phrases/{manifest.csv, wav/*.wav}

Grouping as in the reference system: **digital** = ASVspoof 2019 LA, ASVspoof 2021 LA, Slavic (M-AILABS + MLAAD),
Pyara, generated phrases (manifest); **replay** = ReplayDF, ASVspoof 2021 PA (capped to a balanced subset with
``max_per_label``), FoR re-recorded.

What tells the classes apart is in the audio only: both classes of a corpus draw their voices from one speaker
distribution; digital spoofs are Griffin-Lim or parametric-vocoder re-syntheses; ASVspoof 2021 PA spoofs are
recordings replayed through a loudspeaker into the room where the bona fide talker is recorded live; in ReplayDF and
FoR re-recorded the spoofs are vocoded speech played through the set-up's loudspeaker, room and microphone, and the
bona fide side is re-recorded too, live in the same room on the same microphone (no loudspeaker), so "re-recorded"
is never the cue by itself. (The real corpora play both classes through the loudspeaker; the demo's milder bona fide
chain makes its replay group easier than theirs.) Sample rates (16 / 22.05 / 44.1 kHz), stereo files, FLAC and WAV
vary within corpora, independently of the label (except, as in the real corpora, MLAAD's XTTS model at 22.05 kHz next to
16 kHz M-AILABS).

A few broken inputs exercise the build report: a truncated WAV (mailabs), a zero-byte file (replaydf), a text file
named ``.wav`` (for), an all-silent clip (pyara), a float WAV holding NaNs and a manifest row naming a missing file
(generated_phrases); and one bona fide clip of generated_phrases is copied byte for byte into pyara (a duplicate).
See :data:`EXPECTED_SKIPS` / :data:`EXPECTED_DUPLICATES`.

Every file's content is drawn from a generator seeded by ``(seed, file path)``, so the output is identical for a
seed whatever the number of worker processes.
"""
from __future__ import annotations

import dataclasses
import io
import multiprocessing as mp
import os
import shutil
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

from . import synth

__all__ = ["write_demo_corpora", "plan_demo", "render_clip", "EXPECTED_SKIPS", "EXPECTED_DUPLICATES", "CORPUS_DIRS"]

#: top-level folders written under OUT_DIR (replaced as a whole when the demo is written again)
CORPUS_DIRS = ("asvspoof2019", "asvspoof2021", "for", "slavic", "replaydf", "pyara", "generated_phrases")

#: (entry name, source path relative to the entry's root) -> the skip reason the build should report
EXPECTED_SKIPS: Dict[Tuple[str, str], str] = {}
#: records whose decoded audio duplicates another entry's (a generated_phrases clip copied into pyara)
EXPECTED_DUPLICATES = 1

MARKER = ".demo-corpora"


# ------------------------------------------------------------------------------------------------- clip recipes
@dataclass(frozen=True)
class Voice:
    """Where a speaker comes from: a name seeded into :func:`synth.make_speaker` (same name -> same voice)."""

    key: str
    gender: str


@dataclass(frozen=True)
class Clip:
    """One audio file to synthesise. ``seed_key`` names the utterance (several files may share one, e.g. the
    replays of one utterance through different set-ups)."""

    path: str  # relative to OUT_DIR
    voice: Voice
    seconds: float
    sr: int = 16000
    channels: int = 1
    vocoder: Optional[str] = None  # None (bona fide) | "griffinlim" | "parametric"
    vocoder_args: Tuple = ()  # sorted (name, value) pairs
    chain: Tuple = ()  # ("codec", kind) | ("channel", kind, seed name, replace-args) steps, applied in order
    seed_key: Optional[str] = None
    subtype: str = "PCM_16"


def _rng(seed: int, *names) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(n).encode()) for n in names])


def _speaker(seed: int, voice: Voice) -> synth.Speaker:
    return synth.make_speaker(_rng(seed, "voice", voice.key), voice.key, voice.gender)


def _channel(seed: int, kind: str, name: str, overrides: Tuple = ()) -> synth.Channel:
    ch = synth.make_channel(_rng(seed, "channel", kind, name), kind)
    return dataclasses.replace(ch, **dict(overrides)) if overrides else ch


def _live_in(seed: int, setup: str) -> Tuple:
    """Chain step of a live talker recorded in the room and on the microphone of replay set-up ``setup`` (the same
    room and microphone, no loudspeaker): the bona fide side of a replay corpus is re-recorded too."""
    ch = _channel(seed, "replay", setup)
    return ("channel", "direct", setup, (("rt60", ch.rt60), ("mic_band", ch.mic_band), ("snr_db", ch.snr_db)))


def _codec(wave: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """Telephone transmission of ASVspoof 2021 LA (both classes): 300-3400 Hz and G.711-style 8-bit companding."""
    if kind in ("none", "nocodec"):
        return wave
    from scipy import signal

    sos = signal.butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    x = signal.sosfilt(sos, wave)
    x = x / (np.max(np.abs(x)) + 1e-9) * 0.9
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127) / 127
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def render_clip(seed: int, clip: Clip) -> np.ndarray:
    """The clip's samples, (frames,) or (frames, channels) float32."""
    rng = _rng(seed, "clip", clip.seed_key or clip.path)
    spk = _speaker(seed, clip.voice)
    if clip.vocoder == "parametric":
        wave = synth.speech(rng, spk, clip.seconds, clip.sr, vocoder="parametric")
    else:
        wave = synth.speech(rng, spk, clip.seconds, clip.sr)
        if clip.vocoder == "griffinlim":
            wave = synth.vocode_griffinlim(wave, clip.sr, rng, **dict(clip.vocoder_args))
        elif clip.vocoder is not None:
            raise ValueError(f"unknown vocoder {clip.vocoder!r}")
    # The channel noise differs between files that share an utterance (seed_key), as in a real re-recording.
    crng = _rng(seed, "chain", clip.path)
    for step in clip.chain:
        if step[0] == "codec":
            wave = _codec(wave, clip.sr, step[1])
        elif step[0] == "channel":
            _, kind, name, overrides = step
            wave = synth.replay(wave, clip.sr, crng, _channel(seed, kind, name, overrides))
        else:
            raise ValueError(f"unknown chain step {step!r}")
    wave = np.asarray(wave, dtype=np.float32)
    if clip.channels == 2:
        # A second microphone: a little later, a little quieter, its own faint noise.
        other = np.concatenate([np.zeros(3, np.float32), wave[:-3]]) * 0.85
        other += crng.standard_normal(wave.size).astype(np.float32) * 1e-3
        wave = np.stack([wave, other], axis=1)
    return wave


def _write_clip(args) -> str:
    seed, root, clip = args
    wave = render_clip(seed, clip)
    path = Path(root) / clip.path
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if clip.path.endswith(".flac") else "WAV"
    buf = io.BytesIO()
    sf.write(buf, wave, clip.sr, format=fmt, subtype=clip.subtype)
    path.write_bytes(buf.getvalue())
    return clip.path


# ------------------------------------------------------------------------------------------------- the plan
@dataclass
class _Plan:
    seed: int
    clips: List[Clip] = field(default_factory=list)
    texts: Dict[str, str] = field(default_factory=dict)  # relative path -> text file content
    raw: Dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes (broken files)
    copies: List[Tuple[str, str]] = field(default_factory=list)  # (from, to) exact duplicates
    truncate: List[str] = field(default_factory=list)  # WAVs to cut in half after writing
    skips: Dict[Tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self):
        self.rng = _rng(self.seed, "plan")

    def seconds(self) -> float:
        """~1 s to ~8 s, most clips 2-3 s (mean ~2.7 s)."""
        return round(float(1.0 + 7.0 * self.rng.beta(1.3, 4.2)), 2)

    def sr(self, choices=(16000,), p=None) -> int:
        return int(self.rng.choice(choices, p=p))

    def voices(self, prefix: str, n: int) -> List[Voice]:
        return [Voice(f"{prefix}{i:02d}", "female" if i % 2 == 0 else "male") for i in range(n)]

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def digit_id(self, used: set, digits: int = 7) -> str:
        while True:
            s = str(int(self.rng.integers(10 ** (digits - 1), 10 ** digits)))
            if s not in used:
                used.add(s)
                return s

    def words(self, n_min: int = 3, n_max: int = 9) -> str:
        cons, vows = "bdgklmnprstvzh", "aeiouy"
        words = []
        for _ in range(int(self.rng.integers(n_min, n_max + 1))):
            words.append("".join(self.pick(cons) + self.pick(vows) for _ in range(int(self.rng.integers(1, 4)))))
        return " ".join(words).capitalize() + "."


def _vocoder_for(attack: str) -> Tuple[str, Tuple]:
    """A stable vocoder recipe per attack/system name (several flavours of each family)."""
    h = zlib.crc32(attack.encode())
    if h % 2 == 0:
        args = (("model_error", (0.15, 0.2, 0.3)[h % 3]), ("n_iter", (4, 8, 16)[(h >> 3) % 3]),
                ("n_mels", (40, 80)[(h >> 5) % 2]), ("fmax", (6500.0, 7600.0, 8000.0)[(h >> 7) % 3]))
        return "griffinlim", args
    return "parametric", ()


def _asvspoof2019(p: _Plan) -> List[dict]:
    used: set = set()
    parts = (("train", "T", "train.trn", 8, ("A01", "A02", "A03", "A04", "A05", "A06")),
             ("dev", "D", "dev.trl", 6, ("A01", "A02", "A03", "A04", "A05", "A06")),
             ("eval", "E", "eval.trl", 6, ("A07", "A10", "A13", "A16", "A19")))
    spk_no = 79
    for part, letter, proto, n_per_label, attacks in parts:
        speakers = []
        for i in range(4):  # disjoint speakers per partition, as in the corpus
            speakers.append((f"LA_{spk_no:04d}", Voice(f"asv19-{spk_no}", "female" if i % 2 == 0 else "male")))
            spk_no += 1
        rows = []
        for label in ("bonafide", "spoof"):
            for i in range(n_per_label):
                spk, voice = speakers[i % len(speakers)]
                utt = f"LA_{letter}_{p.digit_id(used)}"
                attack = attacks[i % len(attacks)] if label == "spoof" else "-"
                voc, vargs = _vocoder_for("asv19" + attack) if label == "spoof" else (None, ())
                p.clips.append(Clip(f"asvspoof2019/LA/ASVspoof2019_LA_{part}/flac/{utt}.flac", voice, p.seconds(),
                                    vocoder=voc, vocoder_args=vargs))
                rows.append(f"{spk} {utt} - {attack} {label}")
        rows.sort(key=lambda r: r.split()[1])
        p.texts[f"asvspoof2019/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{proto}.txt"] = "\n".join(rows) + "\n"
    return [
        dict(name=f"asvspoof2019_{part}", adapter="asvspoof2019", root=f"asvspoof2019/LA/ASVspoof2019_LA_{part}",
             attack_type="digital",
             protocol=f"../ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{proto}.txt", language="en")
        for part, _, proto, _, _ in parts
    ]


def _asvspoof2021(p: _Plan) -> List[dict]:
    used: set = set()
    # LA: telephone-coded trials (both classes), spoofs from vocoders A07-A19.
    speakers = [(f"LA_{9 + i:04d}", Voice(f"asv21la-{i}", "female" if i % 2 == 0 else "male")) for i in range(6)]
    rows = []
    for label in ("bonafide", "spoof"):
        for i in range(12):
            spk, voice = speakers[i % len(speakers)]
            utt = f"LA_E_{p.digit_id(used)}"
            codec = p.pick(("none", "alaw", "ulaw", "none"))
            tx = {"none": "-", "alaw": "ita_tx", "ulaw": "sin_tx"}[codec]
            attack = ("A07", "A08", "A09", "A10", "A12", "A13", "A17", "A19")[i % 8] if label == "spoof" else "bonafide"
            voc, vargs = _vocoder_for("asv21" + attack) if label == "spoof" else (None, ())
            p.clips.append(Clip(f"asvspoof2021/ASVspoof2021_LA_eval/flac/{utt}.flac", voice, p.seconds(),
                                vocoder=voc, vocoder_args=vargs, chain=(("codec", codec),)))
            rows.append(f"{spk} {utt} {codec} {tx} {attack} {label} notrim eval")
    rows.sort(key=lambda r: r.split()[1])
    p.texts["asvspoof2021/ASVspoof2021_LA_eval/keys/LA/CM/trial_metadata.txt"] = "\n".join(rows) + "\n"

    # PA: bona fide talkers recorded live in room R?/mic M?; spoofs = an attacker's recording (r?, m?) replayed
    # through loudspeaker s? into the same room and mic. More spoofs than bona fide: the config caps per label.
    speakers = [(f"PA_{10 + i:04d}", Voice(f"asv21pa-{i}", "female" if i % 2 == 0 else "male")) for i in range(6)]
    rows = []
    for label, n in (("bonafide", 12), ("spoof", 18)):
        for i in range(n):
            spk, voice = speakers[i % len(speakers)]
            utt = f"PA_E_{p.digit_id(used)}"
            env = (p.pick(("R1", "R2", "R3")), p.pick(("M1", "M2", "M3")), p.pick(("d1", "d2", "d3", "d4")))
            env_name = "-".join(env)
            room = _channel(p.seed, "direct", env_name)
            if label == "bonafide":
                chain = (("channel", "direct", env_name, ()),)
                cols = "- - - -"
            else:
                att = (p.pick(("r1", "r2", "r3")), p.pick(("m1", "m2", "m3")), p.pick(("s1", "s2", "s3", "s4")),
                       p.pick(("c1", "c2", "c3", "c4")))
                spk_ch = _channel(p.seed, "replay", att[2])
                chain = (("channel", "direct", "attacker-" + "-".join(att[:2]), ()),
                         ("channel", "replay", env_name + "-" + att[2],
                          (("rt60", room.rt60), ("mic_band", room.mic_band), ("snr_db", room.snr_db),
                           ("speaker_band", spk_ch.speaker_band), ("speaker_peak", spk_ch.speaker_peak),
                           ("drive", spk_ch.drive))))
                cols = " ".join(att)
            p.clips.append(Clip(f"asvspoof2021/ASVspoof2021_PA_eval/flac/{utt}.flac", voice, p.seconds(),
                                chain=chain))
            rows.append(f"{spk} {utt} {' '.join(env)} {cols} {label} notrim eval")
    rows.sort(key=lambda r: r.split()[1])
    p.texts["asvspoof2021/ASVspoof2021_PA_eval/keys/PA/CM/trial_metadata.txt"] = "\n".join(rows) + "\n"
    return [
        dict(name="asvspoof2021_la", adapter="asvspoof2021", root="asvspoof2021/ASVspoof2021_LA_eval",
             attack_type="digital", protocol="keys/LA/CM/trial_metadata.txt", language="en"),
        dict(name="asvspoof2021_pa", adapter="asvspoof2021", root="asvspoof2021/ASVspoof2021_PA_eval",
             attack_type="replay", protocol="keys/PA/CM/trial_metadata.txt", language="en", max_per_label=12),
    ]


def _for(p: _Plan) -> List[dict]:
    voices = p.voices("for-", 10)
    devices = ("laptop-phone", "bluetooth-laptop", "monitor-headset")
    n = 0
    for split, per_class in (("training", 10), ("validation", 5), ("testing", 5)):
        for cls in ("real", "fake"):
            for i in range(per_class):
                n += 1
                voice = p.pick(voices)
                voc, vargs = _vocoder_for(p.pick(("for-tts-a", "for-tts-b", "for-tts-c"))) if cls == "fake" else (
                    None, ())
                sr = p.sr((16000, 22050), p=(0.7, 0.3))
                device = p.pick(devices)
                chain = ("channel", "replay", device, ()) if cls == "fake" else _live_in(p.seed, device)
                p.clips.append(Clip(f"for/for-rerecorded/{split}/{cls}/recording{n:05d}.wav", voice, p.seconds(), sr,
                                    vocoder=voc, vocoder_args=vargs, chain=(chain,)))
    p.texts["for/for-rerecorded/training/fake/notes.wav"] = "this is not audio, just a note someone saved as .wav\n"
    p.skips[("for_rerecorded", "training/fake/notes.wav")] = "not_audio"
    return [dict(name="for_rerecorded", adapter="for", root="for/for-rerecorded", attack_type="replay",
                 language="en")]


def _slavic(p: _Plan) -> List[dict]:
    langs = (("ru_RU", "ru"), ("uk_UK", "uk"), ("pl_PL", "pl"))
    books = ("kapitanskaya_dochka", "zapiski", "opowiadania")
    for li, (long, short) in enumerate(langs):
        for gender, spk in (("female", f"{short}_anna"), ("male", f"{short}_piotr")):
            voice = Voice(f"mailabs-{spk}", gender)
            book = books[li]
            rows = []
            for i in range(6):
                utt = f"{book}_{i // 3 + 1:02d}_{gender[0]}{i + 1:06d}"
                rel = f"slavic/mailabs/{long}/by_book/{gender}/{spk}/{book}/wavs/{utt}.wav"
                p.clips.append(Clip(rel, voice, p.seconds()))
                if long == "pl_PL" and gender == "male" and i == 1:
                    # one half-copied WAV (listed in metadata.csv; its header promises more data than it holds)
                    p.truncate.append(rel)
                    p.skips[("slavic_mailabs", rel.split("slavic/mailabs/", 1)[1])] = "truncated"
                text = p.words()
                rows.append(f"{utt}|{text}|{text.lower()}")
            p.texts[f"slavic/mailabs/{long}/by_book/{gender}/{spk}/{book}/metadata.csv"] = "\n".join(rows) + "\n"

    models = (("tts_models_multilingual_multi-dataset_xtts_v2", "xtts_v2", 22050),
              ("tts_models_multilingual_multi-dataset_bark", "bark", 16000),
              ("facebook_mms-tts", "mms", 16000))
    for li, (long, short) in enumerate(langs):
        for mi in range(2):
            model, arch, sr = models[(li + mi) % len(models)]
            voc, vargs = _vocoder_for("mlaad" + model)
            rows = ["path|original_file|language|is_original_language|duration|training_data|model_name|"
                    "architecture|transcript"]
            for i in range(6):
                voice = Voice(f"mlaad-{short}-{model}-{i % 3}", "female" if i % 2 == 0 else "male")
                secs = p.seconds()
                name = f"{model}_{short}_{i:04d}.wav"
                rel = f"fake/{short}/{model}/{name}"
                p.clips.append(Clip(f"slavic/mlaad/{rel}", voice, secs, sr, vocoder=voc, vocoder_args=vargs))
                rows.append(f"./{rel}|{books[li]}_{i // 3 + 1:02d}_f{i + 1:06d}.wav|{short}|True|{secs}|"
                            f"M-AILABS|{model}|{arch}|{p.words()}")
            p.texts[f"slavic/mlaad/fake/{short}/{model}/meta.csv"] = "\n".join(rows) + "\n"
    return [
        dict(name="slavic_mailabs", adapter="mailabs", root="slavic/mailabs", attack_type="digital"),
        dict(name="slavic_mlaad", adapter="mlaad", root="slavic/mlaad", attack_type="digital"),
    ]


def _replaydf(p: _Plan) -> List[dict]:
    setups = ("setup_01_smartphone-laptop", "setup_02_bluetooth-headset")
    voices = p.voices("replaydf-", 6)
    utts = []
    for label, cls in (("bonafide", "benign"), ("spoof", "spoof")):
        for i in range(8):
            model = p.pick(("vits", "xtts_v2", "styletts2"))
            voc, vargs = _vocoder_for("replaydf" + model) if label == "spoof" else (None, ())
            utts.append((cls, f"{cls}_{i:04d}", p.pick(voices), p.seconds(), voc, vargs,
                         model if label == "spoof" else "-"))
    rows = ["path,setup,label,tts_model,language"]
    for setup in setups:
        sr = 44100 if setup.startswith("setup_01") else 16000
        for cls, utt, voice, secs, voc, vargs, model in utts:
            rel = f"wav/{setup}/{cls}/{utt}.wav"
            # the same utterance replayed through each set-up: shared seed_key, channel of the set-up
            chain = ("channel", "replay", setup, ()) if cls == "spoof" else _live_in(p.seed, setup)
            p.clips.append(Clip(f"replaydf/{rel}", voice, secs, sr, channels=2 if sr == 44100 else 1, vocoder=voc,
                                vocoder_args=vargs, chain=(chain,), seed_key=f"replaydf/{utt}"))
            rows.append(f"{rel},{setup},{'bonafide' if cls == 'benign' else 'spoof'},{model},en")
    empty = f"wav/{setups[1]}/spoof/spoof_0099.wav"
    p.raw[f"replaydf/{empty}"] = b""
    p.skips[("replaydf", empty)] = "empty"
    p.texts["replaydf/meta.csv"] = "\n".join(rows) + "\n"
    return [dict(name="replaydf", adapter="replaydf", root="replaydf", attack_type="replay", language="en")]


def _pyara(p: _Plan) -> List[dict]:
    voices = p.voices("pyara-", 6)
    rows = ["path\tfake"]
    for label in (0, 1):
        for i in range(16):
            voc, vargs = _vocoder_for(p.pick(("silero", "coqui-vits", "yandex"))) if label else (None, ())
            rel = f"clips/{'fake' if label else 'real'}_{i:04d}.wav"
            sr = p.sr((16000, 22050), p=(0.6, 0.4))
            p.clips.append(Clip(f"pyara/{rel}", p.pick(voices), p.seconds(), sr, vocoder=voc, vocoder_args=vargs))
            rows.append(f"{rel}\t{label}")
    silent = "clips/real_0099.wav"
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.int16), 16000, format="WAV", subtype="PCM_16")
    p.raw[f"pyara/{silent}"] = buf.getvalue()
    rows.append(f"{silent}\t0")
    p.skips[("pyara", silent)] = "silent"
    # the duplicate: a bona fide clip of generated_phrases, byte for byte (copied after writing)
    p.copies.append(("generated_phrases/wav/phrase_0000.wav", "pyara/clips/real_0100.wav"))
    rows.append("clips/real_0100.wav\t0")
    p.texts["pyara/pyara.tsv"] = "\n".join(rows) + "\n"
    return [dict(name="pyara", adapter="pyara", root="pyara", attack_type="digital", language="ru")]


def _float_wav(samples: np.ndarray, sr: int) -> bytes:
    """A mono 32-bit float WAV written by hand: libsndfile adds a PEAK chunk with a time stamp to float files, which
    would make the demo's bytes depend on the clock."""
    import struct

    data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT, mono
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _manifest(p: _Plan) -> List[dict]:
    voices = p.voices("phrases-", 6)
    rows = ["path,label,speaker,language,attack,split"]
    n = 0
    for label in ("bonafide", "spoof"):
        for i in range(18):
            voice = voices[i % len(voices)]
            attack = p.pick(("xtts_v2", "silero", "vits")) if label == "spoof" else ""
            voc, vargs = _vocoder_for("phrases" + attack) if label == "spoof" else (None, ())
            rel = f"wav/phrase_{n:04d}.wav"
            sr, ch = (16000, 1) if n == 0 else (p.sr((16000, 44100), p=(0.7, 0.3)), 1)
            if sr == 44100:
                ch = int(p.rng.integers(1, 3))
            p.clips.append(Clip(f"generated_phrases/{rel}", voice, p.seconds(), sr, channels=ch, vocoder=voc,
                                vocoder_args=vargs))
            rows.append(f"{rel},{label},{voice.key},ru,{attack},")
            n += 1
    nan = "wav/phrase_0099.wav"
    bad = (0.1 * np.sin(np.arange(16000) / 10.0)).astype("<f4")
    bad[4000:4100] = np.nan
    p.raw[f"generated_phrases/{nan}"] = _float_wav(bad, 16000)
    rows.append(f"{nan},bonafide,phrases-00,ru,,")
    rows.append("wav/phrase_0098.wav,spoof,phrases-01,ru,vits,")  # listed, never written
    p.skips[("generated_phrases", nan)] = "non_finite"
    p.skips[("generated_phrases", "wav/phrase_0098.wav")] = "missing"
    p.texts["generated_phrases/manifest.csv"] = "\n".join(rows) + "\n"
    return [dict(name="generated_phrases", adapter="manifest", root="generated_phrases", attack_type="digital",
                 protocol="manifest.csv", language="ru")]


def plan_demo(seed: int = 0) -> Tuple[_Plan, List[dict]]:
    """Everything the demo writes, without writing it: (plan, corpus entries for shards.yaml)."""
    p = _Plan(seed)
    entries: List[dict] = []
    for part in (_asvspoof2019, _asvspoof2021, _slavic, _manifest, _pyara, _replaydf, _for):
        entries.extend(part(p))
    return p, entries


EXPECTED_SKIPS.update(plan_demo(0)[0].skips)  # the same paths for every seed


# ------------------------------------------------------------------------------------------------- writing
def _yaml_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def shards_yaml(out_dir: Path, entries: List[dict], seed: int) -> str:
    lines = [
        "# Shards from the synthetic demo corpora (python -m shard_builder demo). Build with:",
        f"#   python -m shard_builder build --config {out_dir}/shards.yaml",
        "# Any key can be overridden on the command line, e.g. out_dir=/tmp/shards audio.format=wav",
        f"out_dir: {_yaml_str(out_dir / 'shards')}",
        f"seed: {seed}",
        "workers: 2",
        "splits: {train: 0.7, val: 0.15, test: 0.15}  # for entries without an official split (by speaker/file)",
        "audio:",
        "  sample_rate: 16000",
        "  format: flac",
        "shard:",
        "  max_bytes: 67108864",
        "  max_samples: 32",
        "corpora:",
    ]
    for e in entries:
        group = {"digital": "digital", "replay": "replay"}[e["attack_type"]]
        lines.append(f"  - name: {e['name']}")
        lines.append(f"    adapter: {e['adapter']}")
        lines.append(f"    root: {_yaml_str(out_dir / e['root'])}")
        lines.append(f"    attack_type: {group}")
        for key in ("protocol", "language", "split", "max_per_label"):
            if key in e:
                v = e[key]
                lines.append(f"    {key}: {_yaml_str(v) if isinstance(v, str) else v}")
    return "\n".join(lines) + "\n"


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def _truncate_wav(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])


def write_demo_corpora(out_dir: Path, seed: int = 0, workers: Optional[int] = None) -> Path:
    """Write the demo corpora and ``OUT_DIR/shards.yaml``; returns the path of ``shards.yaml``.

    Files are generated under ``OUT_DIR/.demo-tmp`` and moved into place when all are complete; ``shards.yaml`` is
    written last, so its presence means the demo is complete. Corpus folders of an earlier demo in ``OUT_DIR`` are
    replaced; anything else there (e.g. ``OUT_DIR/shards``) is left alone.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    foreign = [d for d in CORPUS_DIRS if (out_dir / d).exists()] if not (out_dir / MARKER).exists() else []
    if foreign:
        raise FileExistsError(f"{out_dir} already holds {', '.join(foreign)} not written by the demo; "
                              f"choose an empty directory")
    plan, entries = plan_demo(seed)
    tmp = out_dir / ".demo-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    workers = _default_workers() if workers is None else max(1, int(workers))
    # longest first, so the pool's last tasks are short
    jobs = [(seed, str(tmp), c) for c in sorted(plan.clips, key=lambda c: -c.seconds * c.sr * c.channels)]
    if workers > 1:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            list(pool.map(_write_clip, jobs, chunksize=4))
    else:
        for job in jobs:
            _write_clip(job)
    for rel, text in plan.texts.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text, encoding="utf-8")
    for rel, data in plan.raw.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    for src, dst in plan.copies:
        shutil.copyfile(tmp / src, tmp / dst)
    for rel in plan.truncate:
        _truncate_wav(tmp / rel)

    yaml_path = out_dir / "shards.yaml"
    if yaml_path.exists():
        yaml_path.unlink()
    (out_dir / MARKER).write_text(f"synthetic demo corpora, seed {seed}\n")
    for d in CORPUS_DIRS:
        if (out_dir / d).exists():
            shutil.rmtree(out_dir / d)
        os.replace(tmp / d, out_dir / d)
    shutil.rmtree(tmp)
    partial = out_dir / ".shards.yaml.partial"
    partial.write_text(shards_yaml(out_dir, entries, seed))
    os.replace(partial, yaml_path)
    return yaml_path


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m shard_builder.demo OUT_DIR [--seed N]`` (the same as ``python -m shard_builder demo``)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m shard_builder demo", description=write_demo_corpora.__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    path = write_demo_corpora(args.out_dir, args.seed, args.workers)
    print(f"wrote demo corpora and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
