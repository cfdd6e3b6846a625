"""Shared by the fault-injection tests (tests/test_faults*.py): run the CLI in-process or as a subprocess
and check that a failure is one line naming its input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthfr.app.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(**kw):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONWARNINGS": "ignore"}
    env.pop("SYNTHFR_DEBUG", None)
    env.update(kw)
    return env


def _cli(args, cwd=None, timeout=240, **env):
    return subprocess.run([sys.executable, "-m", "synthfr.cli", *map(str, args)], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def _fails(capsys, argv, code, *needles):
    """main(argv) exits with ``code`` and one stderr line (no traceback) containing every needle."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def ids(tmp_path):
    from synthfr.samplers import sample_identities

    p = tmp_path / "ids.npy"
    sample_identities("uniform", 4, dim=16, seed=0, out=p)
    return p


def _gen(ids, out, *extra):
    return ["generate", "--identities", ids, "--generator", "test_pattern", "--images-per-id", "2", "--out", out,
            "--no-progress", *extra]
