"""A real single-node Slurm cluster for the tests in this folder (one per test session, stopped at the end).

Debian's slurm-wlm and munge are installed with apt-get when missing (CI runs as root); the tests are skipped, with
the reason, only where installing is impossible (not root, no apt-get, the install failing).
"""
from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from slurmkit import SlurmCluster, SlurmUnavailable, ensure_installed  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    try:
        install_s = ensure_installed()
    except SlurmUnavailable as exc:
        pytest.skip(f"no Slurm here and it cannot be installed: {exc}")
    if install_s:
        print(f"\n[slurm] installed slurm-wlm + munge with apt-get in {install_s:.1f} s", file=sys.stderr)
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root (SlurmUser=root); not root here")
    root = tmp_path_factory.mktemp("slurm")
    cluster = SlurmCluster(root)
    atexit.register(cluster.stop)  # also when the session is interrupted before the fixture's teardown
    t0 = time.monotonic()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    print(f"[slurm] cluster up in {time.monotonic() - t0:.1f} s ({root})", file=sys.stderr)
    try:
        yield cluster
    finally:
        cluster.stop()
