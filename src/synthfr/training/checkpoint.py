"""Resumable training checkpoints as safetensors + JSON (never pickles).

A checkpoint is a folder ``RUN/checkpoints/step_00001234/`` holding

* ``model.safetensors`` - the backbone ``state_dict`` (parameters and buffers);
* ``classifier.safetensors`` - the whole class-centre matrix ``weight`` (gathered from every rank), the Partial FC
  step counter and the head's buffers (``head.*``, e.g. AdaFace's running norm statistics);
* ``optimizer.safetensors`` - SGD momentum buffers, one tensor per parameter (``backbone.<name>``,
  ``classifier.weight`` gathered), 
* ``rng.safetensors`` - torch CPU (and CUDA) generator states and NumPy's global MT19937 key;
* ``state.json`` - step, epoch, learning rate, parameter order, NumPy / Python RNG scalars, the AMP grad-scaler state.

It is written to a temporary folder and renamed, so a killed run never leaves half a checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from synthfr.utils import collectives as D
from synthfr.utils.run_dir import save_safetensors

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints"]


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").is_file())


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    cks = list_checkpoints(run_dir)
    return cks[-1] if cks else None


def _contig(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in d.items()}


def _gather_rows(pfc, t: torch.Tensor) -> torch.Tensor:
    """Gather a per-rank ``num_local × D`` tensor into the full ``num_classes × D`` one."""
    if not D.is_distributed():
        return t.detach()
    from synthfr.models.partial_fc import shard_range

    n_max = shard_range(pfc.num_classes, 0, pfc.world)[1]
    pad = torch.zeros((n_max,) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
    pad[: t.shape[0]] = t.detach()
    allt = D.all_gather_nograd(pad)
    return torch.cat([allt[r * n_max: r * n_max + shard_range(pfc.num_classes, r, pfc.world)[1]]
                      for r in range(pfc.world)], 0)


def classifier_state(pfc) -> dict[str, torch.Tensor]:
    """Full (gathered) classifier state: ``weight``, ``step`` and ``head.*`` buffers."""
    st = {"weight": pfc.full_weight(), "step": pfc.step.detach().reshape(1)}
    for k, v in pfc.head.state_dict().items():
        st[f"head.{k}"] = v
    return _contig(st)


def load_classifier_state(pfc, st: dict[str, torch.Tensor]) -> None:
    w = st["weight"]
    if w.shape != (pfc.num_classes, pfc.embedding_size):
        raise ValueError(f"classifier of shape {tuple(w.shape)} does not match {pfc.num_classes}×{pfc.embedding_size}")
    with torch.no_grad():
        pfc.weight.copy_(w[pfc.class_start: pfc.class_start + pfc.num_local].to(pfc.weight.device))
        pfc.step.fill_(int(st["step"].reshape(-1)[0]))
    head_sd = {k[5:]: v for k, v in st.items() if k.startswith("head.")}
    if head_sd:
        pfc.head.load_state_dict(head_sd)


def save_checkpoint(run_dir: str | Path, step: int, backbone: torch.nn.Module, pfc, optimizer, scaler=None,
                    extra: dict[str, Any] | None = None, keep: int = 2) -> Path | None:
    """Write ``checkpoints/step_<step>`` (collective when distributed; rank 0 writes). Returns its path."""
    run_dir = Path(run_dir)
    cls = classifier_state(pfc)
    mom = {}
    names = []
    bb_params = {id(p): n for n, p in backbone.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = f"backbone.{bb_params[id(p)]}" if id(p) in bb_params else "classifier.weight"
            names.append(name)
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if name == "classifier.weight":
                if buf is None:
                    buf = torch.zeros_like(p)
                    has = torch.zeros(1)
                else:
                    has = torch.ones(1)
                buf = _gather_rows(pfc, buf)
                mom["has.classifier.weight"] = has
            if buf is not None:
                mom[name] = buf
    if not D.is_main():
        D.barrier()
        return None
    name = f"step_{step:08d}"
    final = run_dir / "checkpoints" / name
    tmp = run_dir / "checkpoints" / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_safetensors(tmp / "model.safetensors", _contig(backbone.state_dict()))
    save_safetensors(tmp / "classifier.safetensors", cls)
    opt_t = _contig(mom)
    save_safetensors(tmp / "optimizer.safetensors", opt_t or {"empty": torch.zeros(1)})
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"torch_cuda_{i}"] = s
    np_state = np.random.get_state()
    rng["numpy_keys"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    save_safetensors(tmp / "rng.safetensors", _contig(rng))
    py_state = random.getstate()
    state = {
        "step": int(step), "param_order": names,
        "numpy_rng": {"algorithm": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                      "cached_gaussian": float(np_state[4])},
        "python_rng": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
        "scaler": {k: (float(v) if torch.is_tensor(v) else v) for k, v in scaler.state_dict().items()}
        if scaler is not None and scaler.is_enabled() else {},
        **(extra or {}),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    D.barrier()
    return final


def load_checkpoint(path: str | Path, backbone: torch.nn.Module, pfc, optimizer, scaler=None,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Restore everything :func:`save_checkpoint` wrote; returns ``state.json``'s content."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    backbone.load_state_dict(load_file(str(path / "model.safetensors"), device=str(device)))
    load_classifier_state(pfc, load_file(str(path / "classifier.safetensors")))
    mom = load_file(str(path / "optimizer.safetensors"))
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if len(params) != len(state["param_order"]):
        raise ValueError(f"checkpoint {path} has {len(state['param_order'])} optimised tensors, the model "
                         f"{len(params)}: was it written with another backbone or configuration?")
    for p, name in zip(params, state["param_order"]):
        if name not in mom:
            continue
        buf = mom[name]
        if name == "classifier.weight":
            if float(mom.get("has.classifier.weight", torch.ones(1))[0]) == 0:
                continue
            buf = buf[pfc.class_start: pfc.class_start + pfc.num_local]
        optimizer.state[p]["momentum_buffer"] = buf.to(p.device, p.dtype).clone()
    if scaler is not None and scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch_cpu"])
    if torch.cuda.is_available():
        states = [rng[k] for k in sorted(k for k in rng if k.startswith("torch_cuda_"))]
        if states and len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    ns = state["numpy_rng"]
    np.random.set_state((ns["algorithm"], rng["numpy_keys"].numpy().astype(np.uint32), ns["pos"],
                         ns["has_gauss"], ns["cached_gaussian"]))
    ps = state["python_rng"]
    random.setstate((ps["version"], tuple(ps["state"]), ps["gauss_next"]))
    return state
