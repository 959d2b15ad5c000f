"""MultiWorkerMirroredStrategy end to end: two worker processes on 127.0.0.1, CPU only."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("mw_worker.py")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def _free_ports(n):
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(tmp_path, n=2):
    ports = ",".join(str(p) for p in _free_ports(n))
    env = dict(os.environ)
    env.update(
        CUDA_VISIBLE_DEVICES="-1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("TF_CONFIG", None)
    procs, logs = [], []
    for index in range(n):
        err = open(tmp_path / f"worker{index}.stderr", "w+")
        logs.append(err)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    str(index),
                    ports,
                    str(tmp_path / "runs"),
                    str(tmp_path / f"w{index}.npz"),
                ],
                cwd=str(REPO),
                env=env,
                stdout=err,
                stderr=subprocess.STDOUT,
            )
        )
    failed = None
    try:
        for index, proc in enumerate(procs):
            try:
                proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                failed = f"worker {index} still running after {TIMEOUT_S} s (hung?)"
                break
            if proc.returncode != 0:
                failed = f"worker {index} exited with {proc.returncode}"
                break
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    if failed:
        report = []
        for index, err in enumerate(logs):
            err.seek(0)
            report.append(f"--- worker {index} output (last 4000 chars) ---\n{err.read()[-4000:]}")
        pytest.fail(failed + "\n" + "\n".join(report))
    for err in logs:
        err.close()
    return [dict(np.load(tmp_path / f"w{index}.npz")) for index in range(n)]


@pytest.mark.slow
def test_two_workers_end_with_identical_trained_weights(tmp_path):
    w0, w1 = _run_workers(tmp_path)
    finals = sorted(k for k in w0 if k.startswith("final_"))
    assert finals, "worker saved no weights"
    for r in (w0, w1):
        assert int(r["replicas"]) == 2
        assert int(r["global_batch"]) == 8  # 4 per replica x 2 replicas
        assert int(r["epochs_run"]) == 2
    for key in finals:
        np.testing.assert_array_equal(w0[key], w1[key])
    # Initial values are broadcast from worker 0 despite different seeds per worker...
    for key in (k for k in w0 if k.startswith("initial_")):
        np.testing.assert_array_equal(w0[key], w1[key])
    # ...and training changed them.
    change = max(np.abs(w0[k] - w0[k.replace("final_", "initial_")]).max() for k in finals)
    assert change > 1e-3
    # Only the chief writes to the run directory; the other worker writes to a temp dir.
    run = tmp_path / "runs" / "mw"
    assert bool(w0["chief"]) and not bool(w1["chief"])
    assert Path(str(w0["run_path"])) == run
    assert Path(str(w1["run_path"])) != run and not str(w1["run_path"]).startswith(str(tmp_path))
    assert (run / "checkpoints" / "last.keras").is_file()
    assert (run / "config.json").is_file()
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # header + 2 epochs, written once (by the chief)
