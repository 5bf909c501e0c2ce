"""DeepSpeed ZeRO-2 through accelerate, run for real on CPU (DS_ACCELERATOR=cpu: DeepSpeed's CPU accelerator on gloo),
2 processes: a run preempted with SIGTERM to the whole process group and resumed with the same command gives the
same per-step losses and bit-identical final weights as an uninterrupted ZeRO-2 run. Every rank writes its own shard
of the optimizer state, and the export is the usual safetensors model."""
from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from conftest import assert_same_run, finish, start, wait_for_step

pytest.importorskip("deepspeed")
if not (shutil.which("c++") or shutil.which("g++")):  # DeepSpeed on CPU compiles its shared-memory comm op first
    pytest.skip("DeepSpeed on CPU needs a C++ compiler (c++/g++) for its comm op", allow_module_level=True)


@pytest.fixture(scope="module")
def chain(shards, tmp_path_factory):
    root = tmp_path_factory.mktemp("zero2")
    ref, out = root / "ref", root / "run"
    ref_p = start(2, ref, shards, deepspeed=True)
    seen = {"ref_rc": finish(ref_p, timeout=400)}
    p = start(2, out, shards, deepspeed=True)
    wait_for_step(p, out, 5, timeout=400)
    os.killpg(p.pid, signal.SIGTERM)  # launcher and both ranks, like a Slurm preemption
    finish(p, timeout=400)
    seen["term_state"] = json.loads((out / "run_state.json").read_text())
    seen["preempt_ckpt"] = sorted(x.name for x in (out / "checkpoints" / f"step-{seen['term_state']['step']:08d}"
                                                   / "pytorch_model").iterdir())
    seen["final_rc"] = finish(start(2, out, shards, deepspeed=True), timeout=400)
    return ref, out, seen


def test_zero2_preempted_and_resumed_matches_uninterrupted(chain):
    ref, out, seen = chain
    assert seen["ref_rc"] == 0 and seen["final_rc"] == 0
    assert seen["term_state"]["state"] == "preempted" and seen["term_state"]["step"] >= 5
    # ZeRO-2: the optimizer state is sharded, each rank saved its own part
    assert "zero_pp_rank_0_mp_rank_00_optim_states.pt" in seen["preempt_ckpt"]
    assert "zero_pp_rank_1_mp_rank_00_optim_states.pt" in seen["preempt_ckpt"]
    assert_same_run(ref, out)


def test_zero2_export_loads_without_deepspeed(chain):
    from trainer.model import Detector

    _, out, _ = chain
    assert sorted(p.name for p in (out / "model").iterdir() if p.suffix in (".safetensors", ".bin", ".pt")) == [
        "model.safetensors"]
    model = Detector.from_pretrained(out / "model")
    assert sum(p.numel() for p in model.parameters()) > 0
