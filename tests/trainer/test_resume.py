"""Interrupted runs resume exactly: same per-step losses and bit-identical final weights as an uninterrupted run.

One chain per launcher, each run resuming the previous one's output directory with the same command:
- 1 process (``python -m trainer``, 2 data workers): SIGUSR1 -> exit 75; SIGKILL at an arbitrary moment; then it
  finishes.
- 2 processes (``torchrun``, DDP on gloo, uneven shards): SIGTERM to the whole process group (as Slurm does);
  SIGKILL of both ranks in the middle of writing a checkpoint; then it finishes.
(A kill between the commit rename and the ``latest`` update is covered in test_checkpoint.py.)
The uninterrupted reference runs in the background at the same time.
"""
from __future__ import annotations

import json
import os
import signal

import pytest

from conftest import assert_same_run, finish, logged_steps, start, wait_for_step
from trainer.checkpoint import complete_checkpoints


def read_state(out):
    return json.loads((out / "run_state.json").read_text())


@pytest.fixture(scope="module")
def chains(shards, tmp_path_factory):
    """Both chains run at the same time (each is mostly one busy process at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(single_chain, shards, tmp_path_factory.mktemp("single"))
        two = pool.submit(ddp_chain, shards, tmp_path_factory.mktemp("ddp"))
        return {"single": one.result(), "ddp": two.result()}


@pytest.fixture(scope="module")
def single(chains):
    return chains["single"]


@pytest.fixture(scope="module")
def ddp(chains):
    return chains["ddp"]


def single_chain(shards, root):
    ref, out = root / "ref", root / "run"
    extra = ["data.num_workers=2"]
    ref_p = start(1, ref, shards, extra)
    seen = {}

    p = start(1, out, shards, extra)
    wait_for_step(p, out, 3)
    p.send_signal(signal.SIGUSR1)
    seen["usr1_rc"] = finish(p)
    seen["usr1_state"] = read_state(out)
    seen["after_usr1"] = [c.name for c in complete_checkpoints(out / "checkpoints")]

    p = start(1, out, shards, extra)
    wait_for_step(p, out, 7)
    p.send_signal(signal.SIGKILL)
    seen["kill_rc"] = finish(p)

    p = start(1, out, shards, extra)
    seen["final_rc"] = finish(p)
    seen["ref_rc"] = finish(ref_p)
    return ref, out, seen


def test_sigusr1_checkpoints_and_exits_75(single):
    _, out, seen = single
    assert seen["usr1_rc"] == 75
    assert seen["usr1_state"]["state"] == "preempted" and seen["usr1_state"]["signal"] == "SIGUSR1"
    assert seen["after_usr1"][-1] == f"step-{seen['usr1_state']['step']:08d}"


def test_single_process_resume_is_exact(single):
    ref, out, seen = single
    assert seen["ref_rc"] == 0 and seen["final_rc"] == 0
    assert seen["kill_rc"] in (-signal.SIGKILL, 0)
    assert_same_run(ref, out)
    names = sorted(x.name for x in (out / "checkpoints").iterdir())
    assert names == ["latest", "step-00000008", "step-00000012"]  # leftovers cleaned, keep_last=2
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000012"
    assert read_state(out)["state"] == "finished"


def ddp_chain(shards, root):
    ref, out = root / "ref", root / "run"
    extra = ["data.num_workers=1"]
    ref_p = start(2, ref, shards, extra)
    seen = {}

    p = start(2, out, shards, extra)
    wait_for_step(p, out, 3)
    os.killpg(p.pid, signal.SIGTERM)  # torchrun and both ranks, like a Slurm preemption
    seen["term_rc"] = finish(p)
    seen["term_state"] = read_state(out)

    p = start(2, out, shards, extra, env={"TRAINER_CRASH_AT": "checkpoint-write:8"})
    seen["crash_rc"] = finish(p)
    seen["after_crash_dirs"] = sorted(x.name for x in (out / "checkpoints").iterdir())
    seen["after_crash_latest"] = (out / "checkpoints" / "latest").read_text().strip()

    p = start(2, out, shards, extra)
    seen["final_rc"] = finish(p)
    seen["ref_rc"] = finish(ref_p)
    return ref, out, seen


def test_ddp_uneven_shards_finish(ddp, shards):
    from trainer.data import assign_shards, list_shards

    ref, _, seen = ddp
    assert seen["ref_rc"] == 0
    infos = list_shards(shards, "train")
    per_rank = [sum(infos[i].samples for w in r for i in w) for r in assign_shards(infos, 0, 0, 2, 1)]
    assert per_rank[0] != per_rank[1]  # the ranks really get different amounts of data ...
    rows = [json.loads(l) for l in (ref / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("epoch", 0) for r in rows) >= 1  # ... and both went through the epoch boundary together
    assert logged_steps(ref) == 12


def test_ddp_sigterm_then_kill_in_checkpoint_write_resume_exact(ddp):
    ref, out, seen = ddp
    assert seen["term_state"]["state"] == "preempted"  # torchrun itself exits 1 (it reports children it stopped)
    assert seen["crash_rc"] != 0
    assert ".tmp-step-00000008" in seen["after_crash_dirs"]  # the partial write is there ...
    assert "step-00000008" not in seen["after_crash_dirs"]  # ... but never looks complete
    # the newest complete one: the preemption checkpoint, or the periodic step-4 written after it
    assert seen["after_crash_latest"] == f"step-{max(seen['term_state']['step'], 4):08d}"
    assert seen["final_rc"] == 0
    assert_same_run(ref, out)


def test_export_is_a_loadable_model_with_best_val(single):
    import torch

    from trainer.model import Detector, average_checkpoints, load_export_meta

    _, out, _ = single
    model = Detector.from_pretrained(out / "model")
    meta = load_export_meta(out / "model")
    assert meta["trained_steps"] == 12
    assert meta["best_val"]["step"] in (6, 12) and 0.0 <= meta["best_val"]["val_eer"] <= 1.0
    with torch.no_grad():
        assert model(torch.zeros(2, 16000)).shape == (2,)
    # a checkpoint directory is a loadable model too, and checkpoints can be averaged
    ckpts = [out / "checkpoints" / "step-00000008", out / "checkpoints" / "step-00000012"]
    from safetensors.torch import load_file

    Detector.from_pretrained(ckpts[0])
    avg = average_checkpoints(ckpts)
    a, b = (load_file(str(c / "model.safetensors")) for c in ckpts)
    k = "head.weight"
    assert torch.allclose(avg[k], (a[k] + b[k]) / 2)


def test_mid_epoch_checkpoint_of_2_processes_resumes_on_1(shards, tmp_path):
    """A 2-process run preempted mid-epoch, continued by 1 process with 2 workers: the rest of the epoch is re-dealt
    (exactly-once is checked sample by sample in test_data.py) and the run finishes."""
    out = tmp_path / "run"
    p = start(2, out, shards, ["data.num_workers=1"])
    wait_for_step(p, out, 3)
    os.killpg(p.pid, signal.SIGTERM)
    finish(p)
    stopped = read_state(out)
    assert stopped["state"] == "preempted" and stopped["step"] < 10
    ckpt = out / "checkpoints" / f"step-{stopped['step']:08d}"
    data_states = [json.loads(f.read_text())["data"] for f in sorted(ckpt.glob("trainer_state-rank*.json"))]
    assert len(data_states) == 2 and all(d["positions"] for d in data_states)  # mid-epoch on both ranks

    assert finish(start(1, out, shards, ["data.num_workers=2"])) == 0
    log = (tmp_path / "run.log").read_text()
    assert "re-dealt to 1 x 2" in log
    assert read_state(out)["state"] == "finished" and logged_steps(out) == 12
