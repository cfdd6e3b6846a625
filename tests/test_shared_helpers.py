"""One home for the small helpers every stage shares (issue 16): image extensions, polling waits."""
from __future__ import annotations

import threading
import time

import numpy as np
from PIL import Image


def test_every_stage_reads_the_faces_align_writes(tmp_path):
    """`align` keeps an input's format (a .tif stays a .tif); training, embedding and align list the same files."""
    from synthfr.data.imagefolder import scan_image_folder
    from synthfr.evaluation.embed import list_images as embed_list
    from synthfr.face.align import list_images as align_list
    from synthfr.utils.images import IMAGE_EXTENSIONS, is_image_file

    img = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    for person, ext in (("a", ".tif"), ("a", ".jpg"), ("b", ".png"), ("b", ".ppm")):
        (tmp_path / person).mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / person / f"x{ext}")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    paths, labels, names = scan_image_folder(tmp_path)
    assert sorted(paths) == ["a/x.jpg", "a/x.tif", "b/x.png", "b/x.ppm"] and names == ["a", "b"]
    assert sorted(p.as_posix() for p in align_list(tmp_path)) == sorted(paths)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in embed_list(tmp_path)) == sorted(paths)
    assert is_image_file("A/B.TIFF") and not is_image_file("x.txt") and ".tif" in IMAGE_EXTENSIONS


def test_wait_until_returns_when_ready(tmp_path):
    from synthfr.utils.wait import wait_until

    target = tmp_path / "done"
    threading.Timer(0.2, target.write_text, args=("x",)).start()
    t = time.time()
    assert wait_until(target.is_file, interval=0.05) is True
    assert 0.15 < time.time() - t < 5
