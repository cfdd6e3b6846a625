"""``onnx``: any ArcFace-style ONNX face-recognition model from a local file (extra ``[onnx]``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from synthfr.face.embedders import REGISTRY, Embedder

__all__ = ["OnnxEmbedder"]


@REGISTRY.register("onnx")
class OnnxEmbedder(Embedder):
    """ArcFace-style ONNX model (e.g. insightface's): 112×112 input, (x-127.5)/127.5, NCHW; path= required.

    Args:
        path: the ``.onnx`` file.
        bgr: feed BGR instead of RGB (some converted models were trained on OpenCV's BGR order).
        mean, std: input normalisation ``(pixel - mean) / std`` (insightface: 127.5 and 127.5).
        providers: onnxruntime execution providers (default: CUDA when available, else CPU).
        threads: intra-op threads for the CPU provider (0 = onnxruntime's default).
    """

    name = "onnx"
    differentiable = False

    def __init__(self, path: str | None = None, bgr: bool = False, mean: float = 127.5, std: float = 127.5,
                 providers: list[str] | None = None, threads: int = 0):
        if path is None:
            from synthfr.errors import UsageError

            raise UsageError("the onnx embedder needs its model file: pass --embedder onnx:path=MODEL.onnx "
                             "(Python: create_embedder('onnx', path='model.onnx'))")
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"ONNX model {p} not found (give the path of an ArcFace-style .onnx file)")
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise RuntimeError("the onnx embedder needs onnxruntime: pip install 'synthfr[onnx]'") from e
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        avail = ort.get_available_providers()
        if providers is None:
            providers = [pr for pr in ("CUDAExecutionProvider", "CPUExecutionProvider") if pr in avail]
        self.session = ort.InferenceSession(str(p), sess_options=opts, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] not in (3, "3") and not isinstance(shape[1], str):
            raise ValueError(f"ONNX model {p}: expected an N×3×112×112 input, found {shape}")
        if all(isinstance(s, int) for s in shape[2:]) and tuple(shape[2:]) != (112, 112):
            raise ValueError(f"ONNX model {p} takes {shape[2]}×{shape[3]} input; synthfr aligns faces to 112×112")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        out_shape = self.session.get_outputs()[0].shape
        self.dim = int(out_shape[-1]) if isinstance(out_shape[-1], int) else 0
        self.bgr, self.mean, self.std = bool(bgr), float(mean), float(std)
        self.path = str(p)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        if self.bgr:
            arr = arr[..., ::-1]
        step = self.fixed_batch or batch_size
        outs = []
        for i in range(0, len(arr), step):
            x = (arr[i:i + step].astype(np.float32) - self.mean) / self.std
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            n = len(x)
            if self.fixed_batch and n < self.fixed_batch:  # pad a fixed-batch model's last batch
                x = np.concatenate([x, np.zeros((self.fixed_batch - n,) + x.shape[1:], np.float32)])
            y = np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)[:n]
            outs.append(y.reshape(n, -1))
        out = np.concatenate(outs) if outs else np.zeros((0, self.dim), np.float32)
        self.dim = out.shape[1] if len(out) else self.dim
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norm, 1e-12)).astype(np.float32)
