"""Multi-host training path: two MultiWorkerMirroredStrategy workers on 127.0.0.1 ports, on CPU."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_worker_training(data_root, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": i}}),
               "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "model_training.cli.train", "--data", str(data_root), "--arch", "pathcnn-small",
               "--limit", "256", "--val-limit", "64", "--epochs", "1", "--batch-size", "32",
               "--distribute", "multiworker", "--out", str(tmp_path / f"worker{i}"), "--verbose", "0"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=600)
        finally:
            if p.poll() is None:
                p.kill()
        outputs.append(out)
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"worker {i} failed:\n{out[-3000:]}"
    card = json.loads((tmp_path / "worker0" / "model_card.json").read_text())
    # 2 workers x batch 32: the global batch doubles and the steps per epoch halve
    assert card["training"]["batch_size"] == 64
    assert card["data"]["train_count"] == 256
