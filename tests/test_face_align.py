"""Five-point alignment: template maths, Umeyama against brute-force least squares, folder robustness."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_file
from synthfr.face.align import (ARCFACE_DST, align_face, align_folder, align_image, estimate_transform,
                                list_images, load_image, template, umeyama)
from synthfr.face.landmarks import five_from_68


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty], [0, 0, 1.0]])


def _lstsq_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Brute-force reference: the similarity [[a, -b, tx], [b, a, ty]] minimising the squared error is a
    linear least-squares problem in (a, b, tx, ty)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty], [0, 0, 1.0]])


def test_umeyama_exact_similarity_is_recovered():
    rng = np.random.default_rng(0)
    for _ in range(20):
        T = _similarity(rng.uniform(0.2, 5), rng.uniform(-np.pi, np.pi), *rng.uniform(-100, 100, 2))
        src = rng.uniform(0, 200, (5, 2))
        dst = (T[:2, :2] @ src.T).T + T[:2, 2]
        np.testing.assert_allclose(umeyama(src, dst), T, atol=1e-8)


def test_umeyama_matches_brute_force_least_squares_on_noisy_points():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(3, 12))
        src = rng.uniform(0, 250, (n, 2))
        dst = rng.uniform(0, 112, (n, 2))  # arbitrary, far from a similarity
        ref = _lstsq_similarity(src, dst)
        got = umeyama(src, dst)
        np.testing.assert_allclose(got, ref, atol=1e-7)
        # and it is optimal: random perturbations of the parameters never lower the error
        err = lambda M: np.sum(((M[:2, :2] @ src.T).T + M[:2, 2] - dst) ** 2)
        for _ in range(5):
            d = rng.normal(0, 1e-3, 4)
            P = got.copy()
            P[0, 0] += d[0]; P[1, 1] += d[0]; P[1, 0] += d[1]; P[0, 1] -= d[1]; P[0, 2] += d[2]; P[1, 2] += d[3]
            assert err(P) >= err(got) - 1e-9


def test_template_sizes():
    np.testing.assert_allclose(template(112), ARCFACE_DST)
    np.testing.assert_allclose(template(224), ARCFACE_DST * 2)
    t128 = template(128)
    np.testing.assert_allclose(t128[:, 1], ARCFACE_DST[:, 1])
    np.testing.assert_allclose(t128[:, 0], ARCFACE_DST[:, 0] + 8)
    with pytest.raises(ValueError):
        estimate_transform(np.zeros((4, 2)))


def _blob_face(size: int = 112) -> np.ndarray:
    """A smooth synthetic 'face': Gaussian blobs of different colours at the template points."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((size, size, 3))
    colours = np.eye(3)[[0, 1, 2, 0, 1]] * 0.8 + 0.2
    for (x, y), c in zip(template(size), colours):
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 6.0 ** 2))[..., None] * c
    img += np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (2 * 40.0 ** 2))[..., None] * 0.3
    return np.clip(img / img.max() * 255, 0, 255).astype(np.uint8)


def test_warped_face_realigns_to_the_template():
    import cv2

    face = _blob_face()
    S = _similarity(1.7, np.deg2rad(23), 60, 20)  # maps aligned coordinates into a 300×300 "photo"
    photo = cv2.warpAffine(face, S[:2], (300, 300), flags=cv2.INTER_LINEAR)
    lm = (S[:2, :2] @ template(112).T).T + S[:2, 2]
    M = estimate_transform(lm, 112)
    np.testing.assert_allclose(M, np.linalg.inv(S)[:2], atol=1e-9)
    back = align_face(photo, lm, 112)
    diff = np.abs(back.astype(int) - face.astype(int))[8:-8, 8:-8]
    assert diff.mean() < 2.0 and diff.max() < 40


def test_five_from_68_order_and_means():
    p = np.arange(136, dtype=float).reshape(68, 2)
    f = five_from_68(p)
    np.testing.assert_allclose(f[0], p[36:42].mean(0))
    np.testing.assert_allclose(f[1], p[42:48].mean(0))
    np.testing.assert_allclose(f[2:], p[[30, 48, 54]])


def test_load_image_conversions(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((40, 50), 77, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((40, 50, 4), np.uint8)).save(tmp_path / "rgba.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    g = load_image(tmp_path / "g.png")
    assert g.shape == (40, 50, 3) and g.dtype == np.uint8 and (g == 77).all()
    assert load_image(tmp_path / "rgba.png").shape == (40, 50, 3)
    with pytest.raises(ValueError, match="bad.jpg"):
        load_image(tmp_path / "bad.jpg")
    assert load_image(np.ones((8, 8), np.float32)).max() == 255


def _make_bad_tree(root):
    from PIL import Image

    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    (root / "a" / "b" / "empty.png").write_bytes(b"")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(root / "a" / "b" / "grey.png")
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(root / "blank.jpg")
    Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).save(root / "tiny.jpg")
    (root / "notes.txt").write_text("not an image, ignored")


def test_align_folder_never_stops_on_bad_files(tmp_path):
    """Two worker processes (the in-process path runs in the real-faces test below)."""
    src, dst = tmp_path / "in", tmp_path / "out"
    _make_bad_tree(src)
    report = align_folder(src, dst, json_path=tmp_path / "r.json", workers=2, progress=False)
    assert report["images"] == 5 and report["aligned"] == 0
    reasons = {f["path"]: f["reason"] for f in report["failed"]}
    assert set(reasons) == {"a/broken.jpg", "a/b/empty.png", "a/b/grey.png", "blank.jpg", "tiny.jpg"}
    assert reasons["a/broken.jpg"].startswith("unreadable")
    assert reasons["a/b/empty.png"].startswith("unreadable")
    assert reasons["tiny.jpg"].startswith("too small")
    assert reasons["blank.jpg"] == "no face detected"
    assert reasons["a/b/grey.png"] == "no face detected"
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == report["failed"]


def test_align_folder_real_faces_tree_and_greyscale(tmp_path):
    from PIL import Image

    raw = shared_file("lfw", "raw_sample")
    names = sorted(p for p in raw.rglob("*.jpg"))[:2]
    src, dst = tmp_path / "in", tmp_path / "out"
    (src / "x").mkdir(parents=True)
    Image.open(names[0]).save(src / "x" / "colour.jpg")
    Image.open(names[1]).convert("L").save(src / "grey.jpg")
    _make_bad_tree(src / "bad")
    from synthfr.app.cli import main

    assert main(["align", str(src), str(dst), "--json", str(tmp_path / "r.json"), "--workers", "1"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 7 and report["aligned"] == 2 and len(report["failed"]) == 5
    for rel in ("x/colour.jpg", "grey.jpg"):
        im = np.asarray(Image.open(dst / rel))
        assert im.shape == (112, 112, 3)
    assert list_images(dst) == sorted([__import__("pathlib").Path("grey.jpg"),
                                       __import__("pathlib").Path("x/colour.jpg")])
    # a second run keeps existing outputs
    again = align_folder(src, dst, workers=1, progress=False)
    assert again["aligned"] == 2


def test_landmarks_close_to_reference_on_raw_sample():
    """A handful of raw LFW images: detected five points within a few pixels of the reference file."""
    ref_file = shared_file("lfw", "raw_sample_landmarks.txt")
    from synthfr.face.landmarks import FaceLandmarker

    lines = [l.split("\t") for l in ref_file.read_text().strip().splitlines()][:12]
    fl = FaceLandmarker()
    errs = []
    for line in lines:
        ref = np.array(line[1:], float).reshape(5, 2)
        five, reason = fl.five_points(load_image(ref_file.parent / "raw_sample" / line[0]))
        assert five is not None, reason
        errs.append(np.linalg.norm(five - ref, axis=1))
    assert np.median(errs) < 3.0


def test_align_image_on_array_and_reason():
    out, reason = align_image(np.zeros((100, 100, 3), np.uint8))
    assert out is None and reason == "no face detected"
