"""A real single-node Slurm cluster (munged + slurmctld + slurmd) living in a temporary directory.

Used by the tests in this folder; also handy by hand:

    python tests/slurm/slurmkit.py up /tmp/mycluster     # prints the `export SLURM_CONF=...` line
    python tests/slurm/slurmkit.py down /tmp/mycluster

Needs root (Slurm's daemons run as root here) and Debian's `slurm-wlm` + `munge` packages; `ensure_installed()`
installs them with apt-get when they are missing. Every path (state, spool, logs, pid files, the munge socket and
key) lives under the cluster directory and the ports are picked free, so nothing under /etc is touched and two
clusters never collide.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = ("slurm-wlm", "munge")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here (not root, no apt, install failed); the message says why."""


def _missing() -> list[str]:
    return [d for d in DAEMONS + ("sbatch", "scontrol", "squeue") if shutil.which(d, path=_path()) is None]


def _path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"


def ensure_installed() -> float:
    """Install slurm-wlm and munge with apt-get when missing; returns the seconds spent installing (0 if present)."""
    if not _missing():
        return 0.0
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"Slurm is not installed ({', '.join(_missing())} missing) and we are not root")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable("Slurm is not installed and there is no apt-get to install it")
    t0 = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    if _missing():
        raise SlurmUnavailable(f"installed {PACKAGES} but still missing: {', '.join(_missing())}")
    return time.monotonic() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """One node (this host), one partition `debug`; daemons run in the foreground as our children."""

    def __init__(self, root: str | os.PathLike, cpus: int = 8, kill_wait: int = 30):
        self.root = Path(root).resolve()
        self.cpus = cpus
        self.kill_wait = kill_wait
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]

    # -- environment every Slurm client (and every job, via sbatch's --export=ALL) needs --------------------------
    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf), "PATH": _path()}

    def environ(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra)
        return env

    def _write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "run", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o755)
        key = r / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(128))
        os.chmod(key, 0o400)
        self.munge_socket = r / "munge" / "munge.socket"
        ctld_port, slurmd_port = _free_port(), _free_port()
        self.conf.write_text(f"""\
ClusterName=testcluster
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={r}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
JobRequeue=1
ReturnToService=2
KillWait={self.kill_wait}
MinJobAge=600
SchedulerType=sched/builtin
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.stdio", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.environ(),
                                            start_new_session=True)

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        self._write_config()
        r = self.root
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={r}/munge/munge.key", f"--pid-file={r}/run/munged.pid",
                               f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/munged.seed"])
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged socket")
        # -i: ignore any state left from an earlier run; -D: stay in the foreground (we own the process)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self.run(["scontrol", "ping"], check=False).returncode == 0, timeout, "slurmctld")
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])

        def node_ready() -> bool:
            out = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
            return out in ("idle", "mixed", "allocated")
        self._wait(node_ready, timeout, "slurmd node idle")
        return self

    def _wait(self, cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited with {p.returncode} while waiting for {what}:\n"
                                           + self.logs())
            if cond():
                return
            time.sleep(0.2)
        raise SlurmUnavailable(f"timed out after {timeout}s waiting for {what}:\n" + self.logs())

    def logs(self, tail: int = 40) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"== {f.name} ==\n" + "\n".join(lines))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel every job, then stop the daemons we started (slurmd, slurmctld, munged), by pid."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run(["scancel", "--full", "--user", "root"], check=False, timeout=10)
            end = time.monotonic() + 10
            while time.monotonic() < end and self.run(["squeue", "-h"], check=False).stdout.strip():
                time.sleep(0.3)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()

    # -- client helpers ---------------------------------------------------------------------------------------------
    def run(self, cmd: list[str], check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, env=self.environ(**kw.pop("env", {})), capture_output=True, text=True,
                              timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def sbatch(self, args: list[str], cwd: str | os.PathLike | None = None, env: dict | None = None) -> int:
        out = self.run(["sbatch", "--parsable", *args], cwd=cwd, env=env or {}).stdout.strip()
        return int(out.split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """`scontrol show job` as a dict ({} once the job has been purged)."""
        proc = self.run(["scontrol", "show", "job", "-o", str(job_id)], check=False)
        if proc.returncode != 0:
            return {}
        fields = {}
        for tok in proc.stdout.split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                fields.setdefault(k, v)
        return fields

    def wait_job(self, job_id: int, states: tuple[str, ...], timeout: float = 120, poll: float = 0.5) -> dict:
        end = time.monotonic() + timeout
        info: dict = {}
        while time.monotonic() < end:
            info = self.job(job_id)
            if info.get("JobState") in states:
                return info
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} not in {states} after {timeout}s: {info}\n{self.logs()}")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__)
        return 2
    root = Path(argv[1])
    if argv[0] == "up":
        ensure_installed()
        root.mkdir(parents=True, exist_ok=True)
        c = SlurmCluster(root)
        c.start()
        (root / "pids").write_text(" ".join(str(p.pid) for p in c.procs.values()))
        print(f"export SLURM_CONF={c.conf}")
        return 0
    for pid in reversed((root / "pids").read_text().split()):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
