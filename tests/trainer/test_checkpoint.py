"""Checkpoint atomicity and retention (in-process, one rank)."""
from __future__ import annotations

import pytest

from trainer import checkpoint as ck
from trainer.checkpoint import CheckpointManager, complete_checkpoints


def manager(root, keep=2):
    return CheckpointManager(root, keep, barrier=lambda: None, is_main=True)


def write_files(d):
    (d / "model.safetensors").write_bytes(b"x" * 100)


def test_retention_never_deletes_before_the_new_checkpoint_is_complete(tmp_path):
    m = manager(tmp_path, keep=2)
    seen_during_write = []

    def write(d):
        seen_during_write.append([c.name for c in complete_checkpoints(tmp_path)])
        write_files(d)

    for step in (1, 2, 3, 4):
        m.save(step, write)
    # while step N was being written, the previous keep_last complete checkpoints were all still there
    assert seen_during_write == [[], ["step-00000001"], ["step-00000001", "step-00000002"],
                                 ["step-00000002", "step-00000003"]]
    assert [c.name for c in complete_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    assert (tmp_path / "latest").read_text().strip() == "step-00000004"


def test_keep_last_below_two_is_refused(tmp_path):
    with pytest.raises(ValueError):
        manager(tmp_path, keep=1)


def test_failed_write_is_ignored_and_cleaned(tmp_path):
    m = manager(tmp_path)
    m.save(1, write_files)

    def broken(d):
        write_files(d)
        raise OSError("disk full")

    with pytest.raises(OSError):
        m.save(2, broken)
    assert (tmp_path / ".tmp-step-00000002").is_dir()
    assert m.latest().name == "step-00000001"
    assert ".tmp-step-00000002" in m.clean_incomplete()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-00000001"]


def test_kill_between_commit_and_latest_update_resumes_from_the_complete_one(tmp_path, monkeypatch):
    m = manager(tmp_path)
    m.save(1, write_files)

    def crash(name):
        if name == "checkpoint-commit:2":
            raise KeyboardInterrupt("killed")  # stands in for SIGKILL at that instant

    monkeypatch.setattr(ck, "_crash_point", crash)
    with pytest.raises(KeyboardInterrupt):
        m.save(2, write_files)
    assert (tmp_path / "latest").read_text().strip() == "step-00000001"  # the pointer lags ...
    assert m.latest().name == "step-00000002"  # ... the committed directory is the truth
    assert (tmp_path / "latest").read_text().strip() == "step-00000002"  # and the pointer is repaired


def test_directory_without_commit_marker_is_not_a_checkpoint(tmp_path):
    m = manager(tmp_path)
    m.save(1, write_files)
    (tmp_path / "step-00000005").mkdir()  # e.g. copied by hand, half-way
    assert m.latest().name == "step-00000001"
