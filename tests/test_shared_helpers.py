"""One home for the small helpers every stage shares (issue 16): image extensions, polling waits, run folders
(CSV logs, safetensors weights), per-image noise, rank/world size from the environment."""
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


def test_run_dir_csv_log_truncate_and_read(tmp_path):
    """The trainers' CSV logs: header once, a resume drops rows past its checkpoint, readers get numbers."""
    from synthfr.utils.run_dir import CsvLog, append_csv_row, read_csv_rows, truncate_csv

    p = tmp_path / "log.csv"
    log = CsvLog(p, ["step", "loss", "note"], append=False)
    for s in range(1, 6):
        log.write({"step": s, "loss": 1.0 / s})
    log.close()
    truncate_csv(p, 3)  # a run resumed from step 3 re-logs 4 and 5
    log = CsvLog(p, ["step", "loss", "note"], append=True)
    log.write({"step": 4, "loss": float("nan"), "note": "x"})
    log.close()
    rows = read_csv_rows(p)
    assert [r["step"] for r in rows] == [1.0, 2.0, 3.0, 4.0]
    assert rows[1]["loss"] == 0.5 and rows[3]["loss"] is None and rows[0]["note"] is None  # nan/empty -> None
    assert read_csv_rows(p, numeric=False)[3]["note"] == "x"
    append_csv_row(tmp_path / "val.csv", ["step", "val_cos"], {"step": 2, "val_cos": 0.9, "extra": 1})
    truncate_csv(tmp_path / "val.csv", 1)
    assert read_csv_rows(tmp_path / "val.csv") == []
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    truncate_csv(tmp_path / "other.csv", 0)  # no step column: left alone
    assert (tmp_path / "other.csv").read_text() == "a,b\n1,2\n"


def test_run_dir_weights_are_safetensors(tmp_path):
    import torch
    from safetensors.torch import load_file

    from synthfr.utils.run_dir import save_safetensors, write_config

    net = torch.nn.Linear(3, 2)
    save_safetensors(tmp_path / "model.safetensors", net.state_dict(), metadata={"step": "7"})
    back = load_file(str(tmp_path / "model.safetensors"))
    assert set(back) == {"weight", "bias"} and torch.equal(back["weight"], net.weight.detach())
    write_config(tmp_path / "config.json", {"lr": np.float32(0.5), "steps": 3})
    assert (tmp_path / "config.json").read_text().strip().startswith("{")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_per_image_noise_does_not_depend_on_the_batch():
    from synthfr.genmodel.model import seed_noise
    from synthfr.utils.seeds import per_sample_randn

    a = per_sample_randn([11, 12, 13], (4,))
    assert np.array_equal(per_sample_randn([12], (4,))[0].numpy(), a[1].numpy())
    assert np.array_equal(seed_noise([11, 12, 13], 4).numpy(), a.numpy())  # the built-in model's noise is the same
    assert not np.array_equal(per_sample_randn([11], (4,), stream=1).numpy(), a[:1].numpy())


def test_env_rank_world(monkeypatch):
    from synthfr.utils.distributed import env_local_rank, env_rank_world

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert env_rank_world() == (0, 1) and env_local_rank() == 0
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_rank_world() == (2, 4) and env_local_rank() == 1


def test_run_dir_step_checkpoints(tmp_path):
    """One safetensors + one JSON per step, named by latest.json; the newest `keep` stay."""
    import torch

    from synthfr.utils.run_dir import load_latest_step, save_step

    assert load_latest_step(tmp_path) is None
    for step in (10, 20, 30):
        save_step(tmp_path, step, {"w": torch.full((2,), float(step))}, {"step": step, "config": {"lr": 0.1}}, keep=2)
    tensors, state = load_latest_step(tmp_path)
    assert state["step"] == 30 and torch.equal(tensors["w"], torch.full((2,), 30.0))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "step-00000020.json", "step-00000020.safetensors", "step-00000030.json", "step-00000030.safetensors"]
