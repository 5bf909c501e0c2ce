"""Checkpoints that are complete or absent, never half-written.

Layout under ``OUT/checkpoints/``::

    step-00000400/            a complete checkpoint (it has COMMITTED)
        COMMITTED             commit marker (JSON: step, world size, time), written last, before the rename
        model.safetensors     the detector (Detector.save_pretrained: this directory is also a loadable model)
        config.json
        optimizer.bin, ...    accelerate.save_state (under DeepSpeed: the engine's checkpoint, written by every rank)
        trainer_state-rank00000.json   per rank: step, epoch, data position of every worker, RNG states
        train_config.yaml     the resolved config
    latest                    text file naming the newest complete checkpoint (replaced atomically)
    .tmp-step-00000500/       being written (ignored and removed on resume)
    .trash-step-00000300/     being deleted (ignored and removed on resume)

Protocol of :meth:`CheckpointManager.save` (all ranks call it):
barrier -> main creates ``.tmp-step-N`` -> barrier -> every rank writes its files -> barrier -> main fsyncs,
writes ``COMMITTED``, renames to ``step-N``, replaces ``latest``, then prunes (``keep_last`` >= 2, oldest first,
each renamed to ``.trash-*`` before removal, so a half-deleted checkpoint never looks complete) -> barrier.
A kill at any moment leaves either the previous state or the new checkpoint, never a partial one that looks complete.
Requires ``OUT`` on a filesystem shared by all ranks (multi-node: a shared filesystem).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, List, Optional

log = logging.getLogger(__name__)

COMMIT = "COMMITTED"
LATEST = "latest"
PREFIX = "step-"


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def step_of(path: Path) -> int:
    return int(path.name[len(PREFIX):])


def is_complete(path: Path) -> bool:
    return path.is_dir() and path.name.startswith(PREFIX) and (path / COMMIT).is_file()


def complete_checkpoints(root: Path) -> List[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if is_complete(p) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=step_of)


class CheckpointManager:
    def __init__(self, root: str | os.PathLike, keep_last: int, barrier: Callable[[], None], is_main: bool):
        if keep_last < 2:
            raise ValueError("keep_last must be >= 2")
        self.root = Path(root)
        self.keep_last = keep_last
        self.barrier = barrier
        self.is_main = is_main

    # -- resume ---------------------------------------------------------------------------------------------------
    def clean_incomplete(self) -> List[str]:
        """Main process: remove leftovers of interrupted writes / deletions. Returns what was removed."""
        removed = []
        if not self.is_main or not self.root.is_dir():
            return removed
        for p in self.root.iterdir():
            leftover = p.name.startswith((".tmp-", ".trash-")) or (p.name.startswith(PREFIX) and not is_complete(p))
            if leftover:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p.name)
            elif p.name.startswith(LATEST + ".tmp"):
                p.unlink(missing_ok=True)
        if removed:
            log.warning("removed incomplete checkpoint leftovers: %s", ", ".join(sorted(removed)))
        return removed

    def latest(self) -> Optional[Path]:
        """The checkpoint to resume from: the newest complete one.

        ``latest`` normally names it; after a kill between the commit rename and the pointer update it names the
        previous one, so the directories (with their commit markers) are the truth and the pointer is repaired.
        """
        done = complete_checkpoints(self.root)
        if not done:
            return None
        pointer = self.root / LATEST
        named = pointer.read_text().strip() if pointer.is_file() else None
        if named != done[-1].name and self.is_main:
            log.warning("%s named %r; the newest complete checkpoint is %s", pointer, named, done[-1].name)
            write_atomic(pointer, done[-1].name + "\n")
        return done[-1]

    # -- save -----------------------------------------------------------------------------------------------------
    def save(self, step: int, write: Callable[[Path], None], world_size: int = 1) -> Path:
        """All ranks: ``write(tmp_dir)`` writes this rank's part; commit happens once every rank is done."""
        name = f"{PREFIX}{step:08d}"
        tmp = self.root / f".tmp-{name}"
        final = self.root / name
        self.barrier()
        if self.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        self.barrier()
        write(tmp)
        _crash_point(f"checkpoint-write:{step}")
        self.barrier()
        if self.is_main:
            for p in tmp.rglob("*"):
                if p.is_file():
                    _fsync_path(p)
            write_atomic(tmp / COMMIT, json.dumps({"step": step, "world_size": world_size, "time": time.time()}))
            if final.exists():  # re-saving a step (e.g. after a resume): the old copy goes away first
                trash = self.root / f".trash-{name}"
                os.replace(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
            _fsync_path(self.root)
            _crash_point(f"checkpoint-commit:{step}")
            write_atomic(self.root / LATEST, name + "\n")
            self.prune()
        self.barrier()
        return final

    def prune(self) -> None:
        """Keep the newest ``keep_last`` complete checkpoints; delete older ones (only complete ones exist here)."""
        done = complete_checkpoints(self.root)
        for old in done[: max(0, len(done) - self.keep_last)]:
            trash = self.root / f".trash-{old.name}"
            os.replace(old, trash)
            shutil.rmtree(trash, ignore_errors=True)


def _crash_point(name: str) -> None:
    """Fault injection for the tests: ``TRAINER_CRASH_AT=checkpoint-write:8`` SIGKILLs this process there."""
    if os.environ.get("TRAINER_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
