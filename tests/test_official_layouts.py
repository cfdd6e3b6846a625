"""Layer names and shapes of the released Vec2Face and Arc2Face checkpoints (key lists recorded from the official
code, tests/data/*_release_keys.json) against what synthfr builds and loads. The numerical equivalence with the
official code (same random weights, outputs within 1e-4) is a one-off check recorded in docs/benchmarks.md."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


def _shapes(module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_vec2face_matches_the_release_layout():
    from synthfr.generators.vec2face import build_vec2face_net

    ref = json.loads((DATA / "vec2face_release_keys.json").read_text())["keys"]
    with torch.device("meta"):
        ours = _shapes(build_vec2face_net())
    assert sorted(set(ref) - set(ours)) == [] and sorted(set(ours) - set(ref)) == []
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}
    assert len(ref) == 349


def test_arc2face_unet_and_encoder_match_the_release_layout(tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    ref = json.loads((DATA / "arc2face_release_keys.json").read_text())
    with torch.device("meta"):
        unet = _shapes(UNet2DConditionModel(**ref["unet_config"]))
        enc = _shapes(CLIPTextModel(CLIPTextConfig(**ref["encoder_config"])))
    assert unet == ref["unet"] and len(unet) == 686

    def strip(d):  # transformers >= 5 may drop the "text_model." prefix when naming the weights
        return {k.removeprefix("text_model."): v for k, v in d.items()}
    assert strip(enc) == strip(ref["encoder"]) and len(enc) == 196

    # the release was saved by transformers 4.x ("text_model."-prefixed names): the installed transformers must load
    # such a file completely (a silent partial load would leave random layers; transformers 4.36 cannot read the
    # prefix-free files transformers 5 writes)
    from safetensors.torch import save_file

    cfg = CLIPTextConfig(vocab_size=60, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=4, max_position_embeddings=77)
    torch.manual_seed(0)
    src = CLIPTextModel(cfg)
    folder = tmp_path / "encoder"
    folder.mkdir()
    cfg.to_json_file(folder / "config.json")
    sd = {("text_model." + k.removeprefix("text_model.")): v.contiguous() for k, v in src.state_dict().items()
          if not k.endswith("position_ids")}
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    loaded, info = CLIPTextModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(loaded(input_ids=ids)[0], src(input_ids=ids)[0])
