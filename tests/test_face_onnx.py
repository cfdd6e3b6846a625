"""The ``onnx`` embedder with a tiny model exported from torch in the test."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 8, stride=8)
        self.fc = torch.nn.Linear(4 * 14 * 14, 16)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = _Tiny().eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3, 112, 112),), str(path), input_names=["data"],
                          output_names=["emb"], dynamic_axes={"data": {0: "n"}, "emb": {0: "n"}}, dynamo=False)
    return model, path


def test_onnx_embedder_matches_torch(tiny_onnx):
    from synthfr import create_embedder

    model, path = tiny_onnx
    emb = create_embedder("onnx", path=str(path))
    imgs = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    out = emb.embed(imgs, batch_size=2)
    assert out.shape == (5, 16) and out.dtype == np.float32 and emb.dim == 16
    with torch.no_grad():
        x = (torch.from_numpy(imgs).float().permute(0, 3, 1, 2) - 127.5) / 127.5
        ref = torch.nn.functional.normalize(model(x), dim=1).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
    bgr = create_embedder("onnx", path=str(path), bgr=True).embed(imgs[:, :, :, ::-1].copy())
    np.testing.assert_allclose(bgr, out, atol=1e-6)


def test_onnx_embedder_errors(tmp_path):
    from synthfr import create_embedder

    with pytest.raises(ValueError, match="path"):
        create_embedder("onnx")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        create_embedder("onnx", path=str(tmp_path / "missing.onnx"))
