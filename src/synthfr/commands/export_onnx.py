"""Export the backbone of a ``synthfr train`` run to ONNX (input ``N×3×112×112`` float normalised to [-1, 1],
output ``N×D`` un-normalised embeddings; dynamic batch), and check onnxruntime against PyTorch. Example:

    synthfr export-onnx runs/r50 r50.onnx
"""
from __future__ import annotations

import argparse

HELP = "export a trained backbone (run dir) to ONNX and verify it with onnxruntime"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run directory written by `synthfr train` (config.json + model.safetensors)")
    p.add_argument("out", help="ONNX file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.add_argument("--json", metavar="PATH", help="write {max_abs_diff} of the check as JSON")


def run(args: argparse.Namespace) -> int:
    from synthfr.training.export import export_onnx

    res = export_onnx(args.run_dir, args.out, opset=args.opset, check=not args.no_check)
    msg = f"wrote {args.out}"
    if "max_abs_diff" in res:
        msg += f" (onnxruntime vs torch: max |diff| = {res['max_abs_diff']:.2e})"
    print(msg)
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, res)
    return 0
