"""Run folders of the three trainers (FR ``synthfr train``, the generator's ``train-generator``, the pose
estimator's ``train-pose``): one set of helpers for what they all write.

* weights: ``*.safetensors`` written atomically (never pickles), with the resolved config as JSON beside them;
* logs: ``log.csv``/``val.csv`` with a ``step`` column, one header, appended row by row; a resumed run first
  drops the rows past its checkpoint (:func:`truncate_csv`) so every step appears once;
* readers: :func:`read_csv_rows` turns such a CSV back into numbers (report, summaries).

Step checkpoints keep each trainer's own layout (FR: ``checkpoints/step_N/`` with model, classifier, optimiser
and RNG states; generator: ``ckpt/step-N.safetensors`` + ``.json`` named by ``latest.json``), so runs started
before this module keep resuming; both are safetensors + JSON written through :func:`save_safetensors`-style
atomic writes.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

__all__ = ["save_safetensors", "write_config", "save_step", "load_latest_step", "CsvLog", "append_csv_row",
           "truncate_csv", "read_csv_rows"]


def save_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (name -> torch tensor) as a safetensors file atomically (contiguous CPU copies)."""
    from safetensors.torch import save

    from synthfr.utils.io import atomic_write_bytes

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    return atomic_write_bytes(path, data)


def write_config(path: str | Path, doc: dict[str, Any]) -> Path:
    """The resolved config (or any JSON record) of a run, written atomically with plain floats."""
    from synthfr.utils.io import write_json

    return write_json(path, doc)


def save_step(run: str | Path, step: int, tensors: dict[str, Any], state: dict[str, Any], keep: int = 2) -> Path:
    """A step checkpoint as one safetensors file + one JSON file: ``ckpt/step-N.safetensors`` and
    ``ckpt/step-N.json``, then ``latest.json`` (``{"step", "tensors", "state"}``, relative paths) is replaced
    atomically, so a kill at any moment leaves the previous checkpoint named; the ``keep`` newest are kept.
    This is both generator trainers' layout (``train-generator``, ``train-dit``); the FR trainer keeps
    ``checkpoints/step_N/`` (several files, renamed into place as one folder) with every file written by
    :func:`save_safetensors` too."""
    from synthfr.utils.io import write_json

    run = Path(run)
    ck = run / "ckpt"
    ck.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    save_safetensors(ck / f"{name}.safetensors", tensors)
    write_json(ck / f"{name}.json", state)
    write_json(run / "latest.json", {"step": step, "tensors": f"ckpt/{name}.safetensors",
                                     "state": f"ckpt/{name}.json"})
    # by step number, not name: train-dit runs from before this layout hold unpadded names (step-2308)
    for p in sorted(ck.glob("step-*.safetensors"), key=lambda q: int(q.stem.split("-")[1]))[:-keep] if keep > 0 else []:
        for q in (p, p.with_suffix(".json")):
            if q.exists():
                q.unlink()
    return ck / f"{name}.safetensors"


def load_latest_step(run: str | Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(tensors, state)`` of the checkpoint ``latest.json`` names (see :func:`save_step`); None without one."""
    from safetensors.torch import load_file

    from synthfr.utils.io import read_json

    paths = latest_step_paths(run)
    if paths is None:
        return None
    return load_file(str(paths[0])), read_json(paths[1])


def latest_step_paths(run: str | Path) -> tuple[Path, Path] | None:
    """``(tensors, state)`` paths of the checkpoint ``latest.json`` names; None without one. Also reads the
    ``{"step", "name"}`` form that ``train-dit`` runs wrote before they shared this layout."""
    from synthfr.utils.io import read_json

    run = Path(run)
    latest = run / "latest.json"
    if not latest.is_file():
        return None
    info = read_json(latest)
    if "name" in info and "tensors" not in info:
        return run / "ckpt" / f"{info['name']}.safetensors", run / "ckpt" / f"{info['name']}.json"
    return run / info["tensors"], run / info["state"]


def module_tensors(m: Any, prefix: str) -> dict[str, Any]:
    """A module's state as flat ``prefix.name`` CPU tensors (for one safetensors file)."""
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in m.state_dict().items()}


def load_module(m: Any, prefix: str, tensors: dict[str, Any]) -> None:
    m.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})


def optimizer_tensors(opt: Any, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimiser's state as ``prefix.<param>.<state>`` tensors + its JSON-able rest (groups, scalar state)."""
    import torch

    sd = opt.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: Any, prefix: str, tensors: dict[str, Any], meta: dict[str, Any], device: Any) -> None:
    """Inverse of :func:`optimizer_tensors` (Adam's ``step`` counters stay on the CPU, as torch keeps them)."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v if k == "step" else v.to(device)
    for pid, d in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class CsvLog:
    """Append rows to a CSV file kept open (header written once; missing keys are left empty)."""

    def __init__(self, path: str | Path, fields: list[str], append: bool):
        self.path, self.fields = Path(path), list(fields)
        new = not (append and self.path.is_file())
        self.f = open(self.path, "w" if new else "a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=self.fields)
        if new:
            self.w.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self.w.writerow({k: row.get(k, "") for k in self.fields})
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def append_csv_row(path: str | Path, fields: list[str], row: dict[str, Any]) -> None:
    """Append one row to ``path`` (opened and closed; header first when the file is new; extra keys ignored)."""
    path = Path(path)
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def truncate_csv(path: str | Path, after: int) -> None:
    """Drop the rows of ``path`` (CSV with a ``step`` column) past step ``after``: a resumed run re-logs them,
    so every step appears once. Files without a ``step`` column are left alone."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "step" not in rows[0]:
        return
    i = rows[0].index("step")
    keep = [rows[0]] + [r for r in rows[1:] if len(r) > i and r[i] and int(float(r[i])) <= after]
    if len(keep) != len(rows):
        from synthfr.utils.io import atomic_write_text

        buf = io.StringIO()
        csv.writer(buf).writerows(keep)
        atomic_write_text(path, buf.getvalue())


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def read_csv_rows(path: str | Path, numeric: bool = True) -> list[dict[str, Any]]:
    """Rows of a run's CSV (``log.csv``, ``val.csv``, ...) as dicts; with ``numeric`` every value is a float
    (None when empty, not a number or not finite), else the strings as written."""
    with open(path, newline="") as f:
        rows = [{k: v for k, v in r.items() if k} for r in csv.DictReader(f)]
    return [{k: _num(v) for k, v in r.items()} for r in rows] if numeric else rows
