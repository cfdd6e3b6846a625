"""Export a trained backbone to ONNX (``synthfr export-onnx``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["export_onnx", "load_backbone"]


def load_backbone(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The backbone of a run dir (eval mode, CPU) and its ``config.json``."""
    import json

    from safetensors.torch import load_file

    from synthfr.models.embedders import find_run_files
    from synthfr.models.backbones import create_backbone

    cfg_path, weights = find_run_files(run_dir)
    meta = json.loads(Path(cfg_path).read_text())
    model = create_backbone(meta["backbone"], **meta.get("backbone_kwargs", {}))
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), meta


def export_onnx(run_dir: str | Path, out: str | Path, opset: int = 17, check: bool = True,
                atol: float = 1e-4) -> dict[str, Any]:
    """Write ``out`` (ONNX, dynamic batch) from the run's backbone; with ``check``, compare onnxruntime and torch
    on random inputs and raise when they differ by more than ``atol`` (relative to the output scale)."""
    model, meta = load_backbone(run_dir)
    size = int(meta.get("input", {}).get("size", 112))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    import warnings

    kw: dict[str, Any] = dict(input_names=["input"], output_names=["embedding"], opset_version=opset,
                              dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, do_constant_folding=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # torch >= 2.5: keep the TorchScript exporter (the dynamo one needs onnxscript)
            torch.onnx.export(model, (x,), str(out), dynamo=False, **kw)
        except TypeError:  # older torch without the dynamo argument
            torch.onnx.export(model, (x,), str(out), **kw)
    res: dict[str, Any] = {"path": str(out), "input_size": size, "embedding_size": int(meta.get("embedding_size", 0))}
    if check:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        xb = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
        with torch.no_grad():
            ref = model(xb).numpy()
        got = sess.run(None, {"input": xb.numpy()})[0]
        diff = float(np.abs(ref - got).max())
        scale = float(np.abs(ref).max()) or 1.0
        res["max_abs_diff"] = diff
        if diff > atol * max(1.0, scale):
            raise RuntimeError(f"onnxruntime output differs from torch by {diff:.3g} (scale {scale:.3g}); "
                               f"try another --opset")
    return res
