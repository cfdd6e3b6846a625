"""Export a training run's generator (EMA weights, no encoder) into a weights folder ``synthfr-small`` loads."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from synthfr.utils.io import atomic_write_bytes, read_json, write_json

__all__ = ["export_generator", "default_weights_dir", "load_generator_folder"]

WEIGHTS_NAME = "synthfr-small"


def default_weights_dir(name: str = WEIGHTS_NAME) -> Path:
    """The folder inside the installed package that holds a built-in generator's weights."""
    import synthfr.weights

    return Path(synthfr.weights.__file__).resolve().parent / name


def export_generator(run: str | Path, out: str | Path | None = None, *, ema: bool = True, half: bool = False,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` of ``run``'s latest checkpoint into ``out``.

    ``out`` defaults to the package's own weights folder. ``half`` stores float16 (half the size; the loader
    converts back to float32). The model card (``MODEL_CARD.md``) is written by hand beside them.
    """
    from safetensors.torch import save

    from synthfr.genmodel.checkpoint import load_checkpoint_model, load_latest

    run = Path(run)
    g = load_checkpoint_model(run, ema=ema)
    tensors, state = load_latest(run)  # type: ignore[misc]
    # a model with attribute inputs is synthfr-v2 and ships its attribute prior beside the network
    name = "synthfr-v2" if g.cfg.attr_dim else WEIGHTS_NAME
    out = Path(out) if out is not None else default_weights_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in g.state_dict().items()}
    atomic_write_bytes(out / "model.safetensors", save(sd, metadata={"format": "pt", "generator": name}))
    files = ["model.safetensors", "config.json"]
    prior = {k: v.contiguous() for k, v in tensors.items() if k.startswith("attr_prior.")}
    if prior:
        atomic_write_bytes(out / "attributes.safetensors", save(prior, metadata={"format": "pt"}))
        files.append("attributes.safetensors")
    tcfg = state["config"]
    lineage = _lineage(run, state)
    write_json(out / "config.json", {
        "generator": name, "embedder": tcfg.get("embedder", "dlib-torch"), "dim": g.cfg.cond_dim,
        "model": g.cfg.to_json(), "weights": "ema" if ema else "raw", "dtype": "float16" if half else "float32",
        "trained_steps": int(state["step"]), "training_hours": round(float(state.get("elapsed_s", 0)) / 3600, 3),
        **_cpu_hours(state),
        "batch_size": tcfg.get("batch_size"), "n_train_images": state.get("n_train"),
        "data": tcfg.get("data"), "lineage": lineage,
        "total_steps": sum(r["steps"] for r in lineage),
        "total_hours": round(sum(r["hours"] for r in lineage), 3), **(extra or {}),
    })
    for f in files:
        (out / f).chmod(0o644)  # package data must be world-readable (temporary files are created 0600)
    return out


def _cpu_hours(state: dict[str, Any]) -> dict[str, Any]:
    """``training_cpu_hours`` (the process's CPU time; ``training_hours`` is wall time, which also counts pauses
    and time the cores gave other jobs) and, when the run began counting only at a resume, from which step."""
    if "cpu_s" not in state:
        return {"training_cpu_hours": None}
    out: dict[str, Any] = {"training_cpu_hours": round(float(state["cpu_s"]) / 3600, 3)}
    if int(state.get("cpu_s_from_step", 0)):
        out["cpu_hours_from_step"] = int(state["cpu_s_from_step"])
    return out


def _lineage(run: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain of runs behind ``run`` (``init_from``), oldest first, with each one's steps and hours.

    A run started with ``init_from`` counts its steps from 0; the chain keeps the total training recorded.
    Parents that are no longer on disk are listed by name with unknown (0) steps.
    """
    from synthfr.genmodel.checkpoint import load_latest

    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    cur: Path | None = run
    cur_state: dict[str, Any] | None = state
    while cur is not None and str(cur) not in seen:
        seen.add(str(cur))
        if cur_state is None:
            got = load_latest(cur) if (cur / "latest.json").is_file() else None
            if got is None:  # parent gone, or a weights folder rather than a run: keep its name only
                chain.append({"run": cur.name, "steps": 0, "hours": 0.0, "id_space": None})
                break
            cur_state = got[1]
        c = cur_state["config"]
        chain.append({"run": cur.name, "steps": int(cur_state["step"]), "id_space": c.get("id_space", "raw"),
                      "hours": round(float(cur_state.get("elapsed_s", 0)) / 3600, 3), **_cpu_hours(cur_state)})
        parent = c.get("init_from")
        cur, cur_state = (Path(parent) if parent else None), None
    return chain[::-1]


def load_generator_folder(folder: str | Path, device: Any = "cpu"):
    """Build the :class:`~synthfr.genmodel.model.FaceGenerator` stored in a weights folder (float32, eval)."""
    import torch
    from safetensors.torch import load_file

    from synthfr.genmodel.model import FaceGenerator, GenModelConfig

    folder = Path(folder)
    meta = read_json(folder / "config.json")
    cfg = GenModelConfig.from_json(meta["model"])
    g = FaceGenerator(cfg, with_encoder=False)
    sd = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    missing, unexpected = g.load_state_dict(sd, strict=False)
    unexpected = [k for k in unexpected if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ValueError(f"{folder}/model.safetensors does not match its config.json "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    g.eval().to(torch.device(device) if not isinstance(device, torch.device) else device)
    for p in g.parameters():
        p.requires_grad_(False)
    return g, meta
