"""torchrun for Slurm: one launcher per node, the workers' own exit status, stop signals left to the workers.

    python slurm/launch.py [torchrun options] -m trainer --config FILE [overrides]

Accepts exactly torchrun's options and differs from `torchrun` in three ways:

1. `--node_rank` defaults to `$SLURM_NODEID` (srun starts one copy of this per node).
2. SIGTERM, SIGUSR1 and SIGUSR2 do not kill the launcher: it passes them to its workers and waits for them to
   checkpoint and exit. (Slurm already delivers a step's signals - preemption, `scontrol requeue`, `scancel
   --signal`, the time-limit signal without `B:` - to every process of the step, workers included; the copy is for
   a launcher signalled alone.) A stock torchrun agent treats SIGTERM as its own death: it re-sends SIGTERM,
   SIGKILLs the workers after `--shutdown-timeout` (even mid-checkpoint) and dies with a traceback and status 1;
   SIGUSR1/SIGUSR2 kill it outright (default action) unless listed in `--signals-to-handle`. A signal that comes
   before any worker has started makes the launcher exit 75 at once (nothing to save).
3. The exit status is the workers': 0 when all succeeded, 75 (EX_TEMPFAIL, "checkpointed, run me again") when every
   failed worker exited 75, otherwise the first other failure's code (torchrun always exits 1 for a failed worker,
   which would hide the difference between "preempted" and "crashed" from the batch script).
"""
from __future__ import annotations

import glob
import os
import signal
import sys

EX_TEMPFAIL = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def torchrun_args(argv: list[str]) -> list[str]:
    """Our defaults, put in front: an option given explicitly later on the command line wins (argparse)."""
    from torch.distributed.run import get_args_parser

    opts = {s for a in get_args_parser()._actions for s in a.option_strings}
    extra = []
    if "SLURM_NODEID" in os.environ:
        extra += ["--node_rank", os.environ["SLURM_NODEID"]]
    # torch >= 2.9 lets us say which signals the agent turns into its own shutdown; keep only the interactive ones.
    if "--signals-to-handle" in opts:
        extra += ["--signals-to-handle", "SIGINT,SIGHUP,SIGQUIT"]
    else:
        _patch_old_torchrun()
    return extra + list(argv)


def _patch_old_torchrun() -> None:
    """Older torch always installs its SIGTERM handler in the agent: make it leave the stop signals to us."""
    from torch.distributed.elastic.multiprocessing import api

    original = api._terminate_process_handler

    def handler(signum, frame):
        if signum in STOP_SIGNALS:
            return _note_signal(signum, frame)
        return original(signum, frame)

    api._terminate_process_handler = handler


def exit_status(failures: dict) -> int:
    """75 when the workers stopped for preemption, else the first real failure's status.

    As soon as one worker exits (75 included) torchrun stops the others with SIGTERM, then SIGKILL; a worker still
    tearing down its interpreter then dies of that signal (Python restores the default handlers while finalizing).
    The trainer's ranks save a checkpoint together and only exit 75 once it is committed, so "some 75, the rest
    killed by SIGTERM/SIGKILL" is still a completed preemption stop.
    """
    codes = [f.exitcode for _, f in sorted(failures.items())]
    torn_down = (-signal.SIGTERM, -signal.SIGKILL)
    if EX_TEMPFAIL in codes and all(c == EX_TEMPFAIL or c in torn_down for c in codes):
        return EX_TEMPFAIL
    # the worker that failed on its own (positive status) rather than one torchrun then killed (negative)
    errors = [c for c in codes if c != EX_TEMPFAIL and c > 0] or [c for c in codes if c < 0]
    code = errors[0] if errors else 1
    return code if 0 < code < 256 else 128 - code if code < 0 else 1


def _children() -> list[int] | None:
    """The launcher's child processes (its workers); None when /proc cannot tell."""
    try:
        pids: list[int] = []
        for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
            with open(path) as f:
                pids += [int(p) for p in f.read().split()]
        return pids
    except (OSError, ValueError):
        return None


def _note_signal(signum, frame) -> None:
    name = signal.Signals(signum).name
    workers = _children()
    if workers == []:
        # Still starting up: workers started after this would never see the signal and would train on until
        # Slurm's SIGKILL. Nothing has been computed yet, so stop now with "run me again".
        print(f"launch.py: got {name} before the workers started: exit {EX_TEMPFAIL}", file=sys.stderr, flush=True)
        os._exit(EX_TEMPFAIL)
    # Under Slurm every worker already got the signal; forwarding it as well covers a launcher signalled alone
    # (a run outside Slurm, or proctrack/pgid: torchrun starts each worker in its own session). A second copy of
    # the same signal only sets the trainer's flag again.
    for pid in workers or []:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    print(f"launch.py: got {name}; passed it to {len(workers or [])} worker(s), waiting for them to exit",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for sig in STOP_SIGNALS:
        # A Python handler, not SIG_IGN: exec() resets caught signals to their defaults, so the workers do not
        # inherit "ignore SIGTERM".
        signal.signal(sig, _note_signal)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(torchrun_args(argv))
    try:
        run(args)
    except ChildFailedError as e:
        status = exit_status(e.failures)
        print(f"launch.py: workers exited {sorted({f.exitcode for f in e.failures.values()})} -> status {status}",
              file=sys.stderr, flush=True)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
