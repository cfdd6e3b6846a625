"""dlib's .dat reader, the PyTorch port of dlib's ResNet, and its agreement with dlib itself."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared_file
from synthfr.face.dlib_dat import DatReader, DlibFormatError, read_dnn


# ------------------------------------------------------------------ primitives against a reference encoder
def _enc_int(v: int) -> bytes:
    """dlib's integer format, written independently: control byte (size | 0x80 if negative), LE bytes."""
    mag = abs(v)
    b = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(b) | (0x80 if v < 0 else 0)]) + b


def test_reader_primitives():
    import math

    vals = [0, 1, 2, 127, 128, 255, 256, 65535, -1, -300, 2**40 + 5, -(2**62)]
    floats = [122.782, -0.5, 1e-30, 3.0, 0.0]
    data = b"".join(_enc_int(v) for v in vals)
    for f in floats:
        m, e = math.frexp(f)
        mant = int(m * 2**53)
        data += _enc_int(mant) + _enc_int(e - 53)
    data += b"10" + _enc_int(5) + b"con_4"
    t = np.arange(6, dtype="<f4")
    data += _enc_int(2) + b"".join(_enc_int(s) for s in (1, 2, 3, 1)) + t.tobytes()
    r = DatReader(data)
    assert [r.int() for _ in vals] == vals
    for f in floats:
        assert r.float() == pytest.approx(f, rel=1e-12, abs=0)
    assert r.bool() is True and r.bool() is False
    assert r.peek_string() == "con_4" and r.string() == "con_4"
    np.testing.assert_array_equal(r.tensor(), t.reshape(1, 2, 3, 1))
    assert r.pos == len(data)
    with pytest.raises(DlibFormatError):
        DatReader(b"\x05\x01").int()  # truncated
    with pytest.raises(DlibFormatError):
        DatReader(b"x").bool()


def test_add_prev_matches_brute_force():
    from synthfr.face.dlib_resnet import _add_prev

    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    ref = np.zeros((2, 5, 4, 4), np.float32)
    for n in range(2):
        for k in range(5):
            for r in range(4):
                for c in range(4):
                    v1 = a[n, k, r, c] if k < 3 and r < 3 and c < 3 else 0.0
                    ref[n, k, r, c] = v1 + b[n, k, r, c]
    np.testing.assert_allclose(_add_prev(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ the real file
@pytest.fixture(scope="module")
def parsed():
    from synthfr.face.detect import model_path

    return read_dnn(model_path("resnet"))


def test_dat_parser_layer_shapes(parsed):
    layers = parsed["layers"]
    kinds = [l.kind for l in layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("max_pool") == 1 and kinds.count("avg_pool") == 5 and kinds[-1] == "fc"
    convs = [l for l in layers if l.kind == "con"]
    assert convs[0].tensors["weight"].shape == (32, 3, 7, 7) and convs[0].attrs["stride_y"] == 2
    assert [c.tensors["weight"].shape[0] for c in convs[1:]] == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 8
    assert sum(c.attrs["stride_y"] == 2 for c in convs) == 5
    assert layers[-1].tensors["weight"].shape == (256, 128) and "bias" not in layers[-1].tensors
    a = parsed["input"].attrs
    assert (a["nr"], a["nc"]) == (150, 150)
    np.testing.assert_allclose([a["avg_red"], a["avg_green"], a["avg_blue"]], [122.782, 117.001, 104.298], atol=1e-4)
    n_params = sum(t.size for l in layers for t in l.tensors.values())
    assert 5_500_000 < n_params < 5_700_000
    assert parsed["loss"]["version"].startswith("loss_metric")


@pytest.fixture(scope="module")
def port():
    torch.set_num_threads(2)
    from synthfr import create_embedder

    return create_embedder("dlib-torch", device="cpu")


def test_port_is_differentiable(port):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    y = port(x)
    assert y.shape == (2, 128) and torch.allclose(y.norm(dim=1), torch.ones(2), atol=1e-5)
    target = torch.nn.functional.normalize(torch.randn(2, 128), dim=1)
    loss = (y * target).sum()
    loss.backward()
    g = x.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    # directional finite difference (float64 copy) agrees with the gradient
    import copy

    m64 = copy.deepcopy(port).double()
    x64 = x[:1].detach().double().requires_grad_(True)
    t64 = target[:1].double()
    (m64(x64) * t64).sum().backward()
    d = torch.randn_like(x64) * 1e-6
    with torch.no_grad():
        f = lambda z: (m64(z) * t64).sum()
        fd = (f(x64 + d) - f(x64 - d)) / 2
    assert float(fd) == pytest.approx(float((x64.grad * d).sum()), rel=2e-2)
    feats = port.features(x.detach())
    assert [f.shape[1] for f in feats] == [32, 32, 64, 128, 256, 256]


def test_port_embed_contract(port):
    imgs = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    e = port.embed(imgs, batch_size=2)
    assert e.dtype == np.float32 and e.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(port.embed(imgs[1:2]), e[1:2], atol=1e-5)
    with pytest.raises(ValueError, match="112"):
        port.embed(np.zeros((1, 100, 100, 3), np.uint8))


def test_port_matches_dlib_on_real_faces(port):
    raw = shared_file("lfw", "raw_sample")
    from synthfr import create_embedder
    from synthfr.face.align import align_image
    from synthfr.face.embedders.dlib_native import aligned_to_dlib_chips
    from synthfr.face.landmarks import FaceLandmarker

    fl = FaceLandmarker()
    faces = []
    for p in sorted(raw.rglob("*.jpg"))[:4]:
        out, reason = align_image(p, detector=fl)
        assert out is not None, reason
        faces.append(out)
    faces = np.stack(faces)
    ref = create_embedder("dlib")
    chips = aligned_to_dlib_chips(faces)
    assert chips.shape == (4, 150, 150, 3) and chips.dtype == np.uint8
    raw_ref = ref.descriptors_from_chips(chips)
    raw_port = port.embed_chips(chips)
    np.testing.assert_allclose(raw_port, raw_ref, atol=2e-5)  # same chip: same network
    cos = (ref.embed(faces) * port.embed(faces)).sum(1)
    assert cos.min() >= 0.9999


def test_chip_warp_matches_brute_force_bilinear():
    from synthfr.face.align import template
    from synthfr.face.chip import aligned_to_chips, chip_matrix, dlib_chip_template5

    A = chip_matrix()
    # the five chip points land close to the ArcFace template (least-squares fit of two mean faces)
    mapped = dlib_chip_template5() @ A[:, :2].T + A[:, 2]
    assert np.abs(mapped - template(112)).max() < 3.0
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (112, 112, 3))
    chips = aligned_to_chips(torch.from_numpy(img).permute(2, 0, 1)[None].double())[0].permute(1, 2, 0).numpy()

    def pix(r, c):
        return img[r, c] if 0 <= r < 112 and 0 <= c < 112 else np.zeros(3)

    for y, x in rng.integers(0, 150, (200, 2)):
        u, v = A @ np.array([x, y, 1.0])
        c0, r0 = int(np.floor(u)), int(np.floor(v))
        fu, fv = u - c0, v - r0
        ref = ((1 - fu) * (1 - fv) * pix(r0, c0) + fu * (1 - fv) * pix(r0, c0 + 1)
               + (1 - fu) * fv * pix(r0 + 1, c0) + fu * fv * pix(r0 + 1, c0 + 1))
        np.testing.assert_allclose(chips[y, x], ref, atol=1e-6)
