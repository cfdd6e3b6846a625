"""A reader for dlib's DNN serialisation format (the ``.dat`` files of ``dlib::serialize(net)``).

Written from the format as dlib's sources define it (``dlib/serialize.h``, ``dlib/cuda/tensor.h``,
``dlib/dnn/core.h``, ``dlib/dnn/layers.h``, ``dlib/dnn/input.h``, ``dlib/dnn/loss.h``):

* integers: a control byte (low 4 bits = number of following bytes, bit 7 = negative) then the magnitude,
  little-endian; ``bool``: the ASCII byte ``'0'``/``'1'``; ``float``/``double``: a ``float_details`` pair,
  mantissa (int64) then exponent (int16), value = mantissa·2^exponent; ``std::string``: length, bytes.
* tensors: version 2, then ``num_samples, k, nr, nc`` and ``n·k·nr·nc`` raw little-endian float32;
  alias tensors (views into a layer's ``params``): version 1 and the four sizes.
* a network is nested: ``add_loss_layer`` writes its version, its loss details, then its sub-network;
  ``add_layer`` writes its version, **its sub-network first**, then its layer details and bookkeeping
  (three bools and cached tensors); ``add_tag_layer``/``add_skip_layer`` write a version and the sub-network.
  So the file holds all wrapper versions first (outermost first), then the input layer, then the layers'
  details from the input upwards.
* every layer's details start with a version string naming the layer (``con_4``, ``affine_``, ``relu_``,
  ``max_pool_2``, ``avg_pool_2``, ``add_prev_``, ``fc_2``, ...).

Tags and skips leave no details, so the graph (which ``add_prev`` adds which tagged output) is not in the
file; :mod:`synthfr.face.embedders.dlib_torch` supplies it from dlib's face-recognition example and checks
it against the layer sequence read here.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DatReader", "DlibLayer", "read_dnn", "DlibFormatError"]


class DlibFormatError(ValueError):
    """The bytes do not follow dlib's serialisation format where expected."""


@dataclass
class DlibLayer:
    """One layer's details as stored in the file."""

    kind: str
    """Version string without its version suffix: ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``,
    ``add_prev``, ``fc``, ``input_rgb_image_sized``."""
    version: str
    """The full version string as written by dlib (``con_4``, ``fc_2``...)."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """Scalar settings (filter counts, strides, paddings, ...)."""
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    """Parameter arrays, already split and shaped (``weight``/``bias``, ``gamma``/``beta``)."""
    offset: int = 0
    """Byte offset of the version string in the file."""


class DatReader:
    """Sequential reader of dlib's primitive serialisation formats over a bytes buffer."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = memoryview(data)
        self.pos = pos

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos} (needed {n} more bytes)")

    def int(self) -> int:
        self._need(1)
        ctrl = self.data[self.pos]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise DlibFormatError(f"bad integer control byte 0x{ctrl:02x} at byte {self.pos}")
        self._need(1 + size)
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if ctrl & 0x80 else value

    def bool(self) -> bool:
        self._need(1)
        ch = self.data[self.pos]
        if ch not in (0x30, 0x31):
            raise DlibFormatError(f"bad bool byte 0x{ch:02x} at byte {self.pos}")
        self.pos += 1
        return ch == 0x31

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise DlibFormatError(f"old ASCII float format at byte {self.pos} is not supported")
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.int()
        if n < 0 or n > 1 << 20:
            raise DlibFormatError(f"implausible string length {n} at byte {self.pos}")
        self._need(n)
        s = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        try:
            return s.decode("ascii")
        except UnicodeDecodeError as e:
            raise DlibFormatError(f"non-ASCII string at byte {self.pos - n}") from e

    def peek_string(self) -> str | None:
        """The string at the current position if there is a plausible one, without consuming it."""
        pos = self.pos
        try:
            s = self.string()
        except DlibFormatError:
            s = None
        self.pos = pos
        return s if s and s.replace("_", "a").isalnum() else None

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        n = int(np.prod(shape))
        self._need(4 * n)
        arr = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32).reshape(shape)
        self.pos += 4 * n
        return arr

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} at byte {self.pos} (expected 1)")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ layer details
def _read_con(r: DatReader, version: str) -> DlibLayer:
    if version not in ("con_4", "con_5", "con_6"):
        raise DlibFormatError(f"unsupported convolution version {version!r}")
    params = r.tensor().reshape(-1)
    attrs: dict[str, Any] = {"num_filters": r.int(), "nr": r.int(), "nc": r.int(), "stride_y": r.int(),
                             "stride_x": r.int(), "padding_y": r.int(), "padding_x": r.int()}
    fshape = r.alias_tensor()
    bshape = r.alias_tensor()
    for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        attrs[k] = r.float()
    attrs["use_bias"] = r.bool() if version in ("con_5", "con_6") else True
    if version == "con_6":
        attrs["use_relu"] = r.bool()
    nf = int(np.prod(fshape))
    nb = int(np.prod(bshape))
    if nf + (nb if attrs["use_bias"] else 0) != params.size and nf + nb != params.size:
        raise DlibFormatError(f"convolution params hold {params.size} values, filters {fshape} + biases {bshape}")
    tensors = {"weight": params[:nf].reshape(fshape)}
    if attrs["use_bias"]:
        tensors["bias"] = params[nf:nf + nb].reshape(-1)
    return DlibLayer("con", version, attrs, tensors)


def _read_affine(r: DatReader, version: str) -> DlibLayer:
    if version not in ("affine_", "affine_2"):
        raise DlibFormatError(f"unsupported affine version {version!r} (batch-norm layers are not supported)")
    params = r.tensor().reshape(-1)
    gshape = r.alias_tensor()
    bshape = r.alias_tensor()
    attrs: dict[str, Any] = {"mode": r.int()}  # 0 = FC_MODE, 1 = CONV_MODE
    if version == "affine_2":
        attrs["disabled"] = r.bool()
    ng, nb = int(np.prod(gshape)), int(np.prod(bshape))
    if ng + nb != params.size:
        raise DlibFormatError(f"affine params hold {params.size} values, gamma {gshape} + beta {bshape}")
    return DlibLayer("affine", version, attrs, {"gamma": params[:ng].reshape(gshape),
                                                "beta": params[ng:].reshape(bshape)})


def _read_pool(r: DatReader, version: str) -> DlibLayer:
    kind = version.rsplit("_", 1)[0]
    if version not in ("max_pool_2", "avg_pool_2"):
        raise DlibFormatError(f"unsupported pooling version {version!r}")
    attrs = {"nr": r.int(), "nc": r.int(), "stride_y": r.int(), "stride_x": r.int(), "padding_y": r.int(),
             "padding_x": r.int()}
    return DlibLayer(kind, version, attrs)


def _read_relu(r: DatReader, version: str) -> DlibLayer:
    attrs = {}
    if version == "relu_2":
        attrs["disabled"] = r.bool()
    elif version != "relu_":
        raise DlibFormatError(f"unsupported relu version {version!r}")
    return DlibLayer("relu", version, attrs)


def _read_add_prev(r: DatReader, version: str) -> DlibLayer:
    return DlibLayer("add_prev", version)


def _read_fc(r: DatReader, version: str) -> DlibLayer:
    if version not in ("fc_2", "fc_3"):
        raise DlibFormatError(f"unsupported fc version {version!r}")
    attrs: dict[str, Any] = {"num_outputs": r.int(), "num_inputs": r.int()}
    params = r.tensor().reshape(-1)
    wshape = r.alias_tensor()
    bshape = r.alias_tensor()
    attrs["bias_mode"] = r.int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
    for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        attrs[k] = r.float()
    if version == "fc_3":
        attrs["use_bias"] = r.bool()
    nw = int(np.prod(wshape))
    # dlib's fc computes output = input · W with W of shape (num_inputs, num_outputs)
    tensors = {"weight": params[:nw].reshape(attrs["num_inputs"], attrs["num_outputs"])}
    if attrs["bias_mode"] == 0:
        tensors["bias"] = params[nw:nw + int(np.prod(bshape))].reshape(-1)
    return DlibLayer("fc", version, attrs, tensors)


def _read_input_rgb_sized(r: DatReader, version: str) -> DlibLayer:
    attrs = {"avg_red": r.float(), "avg_green": r.float(), "avg_blue": r.float(), "nr": r.int(), "nc": r.int()}
    return DlibLayer("input_rgb_image_sized", version, attrs)


_READERS = {
    "con": _read_con, "affine": _read_affine, "max_pool": _read_pool, "avg_pool": _read_pool,
    "relu": _read_relu, "add_prev": _read_add_prev, "fc": _read_fc,
}


def _kind_of(version: str) -> str | None:
    for k in sorted(_READERS, key=len, reverse=True):
        if version == k + "_" or (version.startswith(k + "_") and version[len(k) + 1:].isdigit()):
            return k
    return None


def _skip_add_layer_trailer(r: DatReader) -> None:
    """Skip ``add_layer``'s bookkeeping after a layer's details: three bools, then cached tensors
    (``x_grad``, ``cached_output``, ``params_grad``/``grad_final``) and, in newer files, the sample expansion
    factor."""
    for _ in range(3):
        r.bool()
    while r.pos < len(r.data):
        pos = r.pos
        try:
            v = r.int()
        except DlibFormatError:
            r.pos = pos
            return
        if v != 2:  # not a tensor: either the sample-expansion factor or the next layer's version string
            r.pos = pos
            if r.peek_string() is None:
                r.int()  # _sample_expansion_factor (add_layer version 3)
            return
        r.pos = pos
        if r.peek_string() is not None:  # a 2-character version string would be ambiguous; none exist
            return
        r.tensor()


def read_dnn(path: str | Path) -> dict[str, Any]:
    """Parse a dlib DNN ``.dat`` file.

    Returns ``{"loss": {"version", "margin", "dist_thresh"}, "wrapper_versions": [...], "input": DlibLayer,
    "layers": [DlibLayer, ...]}`` with ``layers`` ordered from the input upwards.
    """
    data = Path(path).read_bytes()
    r = DatReader(data)
    if r.int() != 1:
        raise DlibFormatError(f"{path}: not a dlib network with a loss layer (add_loss_layer version 1 expected)")
    loss_version = r.string()
    loss: dict[str, Any] = {"version": loss_version}
    if loss_version == "loss_metric_2":
        loss["margin"], loss["dist_thresh"] = r.float(), r.float()
    elif loss_version == "loss_metric_":
        loss["margin"], loss["dist_thresh"] = 0.1, 0.75
    else:
        raise DlibFormatError(f"{path}: unsupported loss {loss_version!r} (this reader handles loss_metric)")
    wrappers = []
    while True:
        s = r.peek_string()
        if s is not None and s.startswith("input_"):
            break
        wrappers.append(r.int())
        if len(wrappers) > 10000:
            raise DlibFormatError(f"{path}: no input layer found")
    version = r.string()
    if version != "input_rgb_image_sized":
        raise DlibFormatError(f"{path}: unsupported input layer {version!r}")
    inp = _read_input_rgb_sized(r, version)  # the input layer has no add_layer bookkeeping of its own
    layers = []
    while r.pos < len(data):
        offset = r.pos
        version = r.string()
        kind = _kind_of(version)
        if kind is None:
            raise DlibFormatError(f"{path}: unsupported layer {version!r} at byte {offset}")
        layer = _READERS[kind](r, version)
        layer.offset = offset
        layers.append(layer)
        _skip_add_layer_trailer(r)
    return {"loss": loss, "wrapper_versions": wrappers, "input": inp, "layers": layers}
