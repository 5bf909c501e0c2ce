"""`python -m shard_builder verify` passes a good build and fails, naming the shard, on any mismatch."""
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest

from shard_builder.verify import verify_shards


def verify_cli(path):
    return subprocess.run([sys.executable, "-m", "shard_builder", "verify", str(path)], capture_output=True, text=True)


@pytest.fixture
def copy(mixed, tmp_path):
    dst = tmp_path / "shards"
    shutil.copytree(mixed["out"], dst)
    return dst


def first_shard(out):
    index = json.loads((out / "train" / "index.json").read_text())
    return out / "train" / index["shards"][0]["name"], index


def test_good_build_verifies(mixed):
    proc = verify_cli(mixed["out"])
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    res = verify_shards(mixed["out"])
    assert res.ok and res.samples == mixed["report"]["totals"]["written"]


def test_flipped_byte_fails(copy):
    shard, _ = first_shard(copy)
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF  # inside the first member's audio
    shard.write_bytes(bytes(data))
    proc = verify_cli(copy)
    assert proc.returncode == 1
    assert f"train/{shard.name}: sha256 differs" in proc.stderr


def test_audio_that_does_not_match_its_metadata_fails_even_with_a_consistent_index(copy):
    """Re-pack a shard with one sample's audio replaced and fix index.json: only decoding catches it."""
    shard, index = first_shard(copy)
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    audio = [i for i, (m, _) in enumerate(members) if not m.name.endswith(".json")]
    members[audio[0]] = (members[audio[0]][0], members[audio[1]][1])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m, data in members:
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    shard.write_bytes(buf.getvalue())
    index["shards"][0].update(bytes=len(buf.getvalue()), sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    (copy / "train" / "index.json").write_text(json.dumps(index))
    res = verify_shards(copy)
    assert not res.ok and any("does not match its audio_sha1" in p for p in res.problems), res.problems
    assert verify_cli(copy).returncode == 1


def test_missing_and_unindexed_shards_fail(copy):
    shard, _ = first_shard(copy)
    shard.rename(copy / "train" / "shard-999999.tar")
    res = verify_shards(copy, decode=False)
    assert any(f"train/{shard.name}: missing" in p for p in res.problems)
    assert any("shard-999999.tar: shard is not in index.json" in p for p in res.problems)


def test_empty_directory_fails(tmp_path):
    proc = verify_cli(tmp_path)
    assert proc.returncode == 1 and "no <split>/index.json" in proc.stderr
