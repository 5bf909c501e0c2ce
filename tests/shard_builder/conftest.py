import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import kit  # noqa: E402

from shard_builder.build import build_shards  # noqa: E402
from shard_builder.config import BuildConfig  # noqa: E402
from shard_builder.configuration import load_config  # noqa: E402

ADAPTER_KITS = [
    ("a19", kit.asvspoof2019), ("pa21", kit.asvspoof2021_pa), ("la21", kit.asvspoof2021_la),
    ("forr", kit.for_rerec), ("mail", kit.mailabs), ("mlaad", kit.mlaad), ("rdf", kit.replaydf),
    ("pyara", kit.pyara), ("fleurs", kit.fleurs_hs), ("man", kit.manifest), ("fold", kit.folders),
]


def read_split(out: Path, split: str) -> list:
    """Every sample of a split as (meta dict, audio member name), read straight from the tars."""
    index = json.loads((out / split / "index.json").read_text())
    samples = []
    for s in index["shards"]:
        with tarfile.open(out / split / s["name"]) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar}
        for name, data in members.items():
            if name.endswith(".json"):
                samples.append(json.loads(data))
    return samples


@pytest.fixture(scope="session")
def mixed(tmp_path_factory):
    """Every adapter's layout + bad files + duplicates, built once with 2 worker processes."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    entries = []
    for name, make in ADAPTER_KITS:
        e = make(root / name, rng)
        e["name"] = name
        entries.append(e)
    entries[1]["max_per_label"] = 8  # pa21: balanced subset, 8 bona fide + 8 spoof of 12 + 12
    # duplicates: a M-AILABS clip copied into the manifest corpus (cross-corpus), and a FoR test clip copied into
    # FoR's training folder (same corpus, two official splits)
    src = root / "mail" / "ru_RU" / "by_book" / "female" / "anna" / "book1" / "wavs" / "ru_RU_book1_00.wav"
    shutil.copy(src, root / "man" / "clips" / "dup.wav")
    with open(root / "man" / "manifest.csv", "a") as fh:
        fh.write("clips/dup.wav,real,s9,ru,\n")
    shutil.copy(root / "forr" / "testing" / "real" / "file0_real.wav", root / "forr" / "training" / "real" / "dup.wav")
    expected_bad = kit.bad_files(root / "bad" / "clips", rng)
    (root / "bad" / "manifest.csv").write_text(
        "path,label\n" + "".join(f"clips/{k},spoof\n" for k in expected_bad) + "clips/okay.wav,bonafide\n")
    kit.write(root / "bad" / "clips" / "okay.wav", rng)
    entries.append({"name": "bad", "adapter": "manifest", "root": str(root / "bad"), "attack_type": "digital"})
    cfg_path = kit.write_config(root / "shards.yaml", root / "out", entries, workers=2)
    cfg = load_config(BuildConfig, cfg_path)
    events = []
    report = build_shards(cfg, progress=lambda stage, done, total: events.append((stage, done, total)))
    return {"root": root, "out": root / "out", "cfg_path": cfg_path, "cfg": cfg, "report": report,
            "events": events, "expected_bad": expected_bad}
