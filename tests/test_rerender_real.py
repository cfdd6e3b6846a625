"""benchmarks/rerender_real.py (issue 13's diagnostic): the copy mirrors the real set's folders and file stems,
each copy is rendered from its own photo's embedding, and the photo-vs-copy linear probe reads separable and
identical sets correctly. Weight-free: the ``test_pattern`` generator and its ``test-pattern`` embedder."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("rerender_real", BENCH / "rerender_real.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


R = _load()


def test_copy_mirrors_the_real_folders_and_follows_each_photo(tmp_path):
    from PIL import Image

    from synthfr.data.writers import write_image_file
    from synthfr.face.embedders import create_embedder
    from synthfr.generators import create_generator

    gen, emb = create_generator("test_pattern"), create_embedder("test-pattern", dim=32)
    real = tmp_path / "real"
    photos = gen.generate(np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32), np.arange(5))
    for i, img in enumerate(photos):
        (real / f"id{i % 2}").mkdir(parents=True, exist_ok=True)
        write_image_file(real / f"id{i % 2}" / f"p{i}.png", img, fmt="png")
    out = tmp_path / "copy"
    assert R.main([str(real), str(out), "--generator", "test_pattern", "--embedder", "test-pattern"]) == 0
    meta = json.loads((out / "rerender.json").read_text())
    assert (meta["photos"], meta["identities"], meta["attributes"]) == (5, 2, "prior")  # no prior: none to copy
    for i in range(5):
        copy = np.asarray(Image.open(out / f"id{i % 2}" / f"p{i}.jpg"))
        # the copy's embedding is its photo's (the pattern generator renders its condition, up to JPEG noise)
        a, b = emb.embed(photos[i:i + 1])[0], emb.embed(copy[None])[0]
        assert float(a @ b) > 0.95
    assert R.main([str(real), str(out), "--generator", "test_pattern", "--embedder", "test-pattern"]) == 0  # kept


def test_linear_probe_tells_separable_sets_apart_and_not_identical_ones():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 8))
    groups = np.r_[np.arange(200), np.arange(200)] % 20
    y = np.r_[np.zeros(200), np.ones(200)]
    shifted = x + np.r_[np.zeros((200, 8)), np.full((200, 8), 2.0)]
    assert R._probe(shifted, y, groups) > 0.95
    same = np.r_[x[:200], x[:200]]
    assert R._probe(same, y, groups) <= 0.55
