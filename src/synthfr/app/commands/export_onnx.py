"""Export the backbone of a ``synthfr train`` run to ONNX (input ``N×3×112×112`` float normalised to [-1, 1],
output ``N×D`` un-normalised embeddings; dynamic batch), and check onnxruntime against PyTorch. Example:

    synthfr export-onnx runs/r50 r50.onnx
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "export a trained backbone (run dir) to ONNX and verify it with onnxruntime"


@dataclass
class ExportOnnxConfig:
    """``synthfr export-onnx``: a trained backbone as ONNX, checked against PyTorch."""

    run_dir: str
    """Run directory written by `synthfr train` (config.json + model.safetensors)."""
    out: str
    """ONNX file to write."""
    opset: int = 17
    """ONNX opset."""
    check: bool = True
    """Compare onnxruntime with PyTorch on random inputs."""
    json: str | None = None
    """Write {max_abs_diff} of the check as JSON to this path."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, ExportOnnxConfig, positional=("run_dir", "out"), flags={"json": {"metavar": "PATH"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.training.export import export_onnx

    cfg = config_from_args(ExportOnnxConfig, args)
    res = export_onnx(cfg.run_dir, cfg.out, opset=cfg.opset, check=cfg.check)
    msg = f"wrote {cfg.out}"
    if "max_abs_diff" in res:
        msg += f" (onnxruntime vs torch: max |diff| = {res['max_abs_diff']:.2e})"
    print(msg)
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, res)
    return 0
