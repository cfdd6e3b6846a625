"""2-process CPU torchrun (gloo) follows the single-process loss trajectory on the same global batch.

Tolerance: every logged loss (6 steps, one per step) and the final class centres agree to 1e-5 relative
(observed: ~1e-7; float sums run in another order across ranks). The norm-free ``test_nonorm`` backbone is used
because BatchNorm statistics are per rank (as in insightface); Partial FC sampling is drawn per global class
index, so both runs sample the same centres.
"""
from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch

from synthfr.training.config import TrainConfig
from synthfr.training.loop import train
from synthfr.training.toy import make_toy_dataset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run):
    return [float(r["loss"]) for r in csv.DictReader(open(run / "log.csv"))]


ARGS = ["--backbone", "test_nonorm", "--embedding-size", "16", "--head", "arcface", "--scale", "16",
        "--margin", "0.3", "--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--workers", "0",
        "--log-every", "1", "--grad-clip", "5", "--aug-flip", "0.5", "--quiet", "--threads", "1",
        "--device", "cpu", "--input-size", "32"]


@pytest.mark.parametrize("sample_rate, soft_logits", [(1.0, None), (0.5, None), (0.5, "mixed")])
def test_torchrun_two_processes_match_one(tmp_path, sample_rate, soft_logits):
    # soft_logits: identity-mixup soft labels (class, next class, 0.7) whose targets may sit on different ranks,
    # with SynFace's mixed margin logits
    data = make_toy_dataset(tmp_path / "data", classes=12, per_class=2, size=32, soft_every=2 if soft_logits else 0)
    extra = ["--sample-rate", str(sample_rate), "--virtual-classes", "4"]
    extra += ["--soft-label-logits", soft_logits] if soft_logits else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "synthfr.cli", "train", "--data", str(data),
           "--out", str(tmp_path / "ddp"), *ARGS, *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    from synthfr.app.commands.train import add_arguments, build_config
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = build_config(p.parse_args(["--data", str(data), "--out", str(tmp_path / "single"), *ARGS, *extra]))
    torch.set_num_threads(1)
    train(cfg)

    single, ddp = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    assert len(single) == len(ddp) == 6
    torch.testing.assert_close(torch.tensor(ddp), torch.tensor(single), rtol=1e-5, atol=1e-6)
    # and the resulting classifier (gathered from both ranks) matches too
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "ddp" / "head.safetensors"))["weight"]
    b = load_file(str(tmp_path / "single" / "head.safetensors"))["weight"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
