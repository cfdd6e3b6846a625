"""Record the state-dict keys/shapes of Arc2Face's released checkpoints as the official pins build them
(tests/data/arc2face_release_keys.json); run in the official environment."""
import json, torch
import diffusers, transformers
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
SD15_UNET = {"act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
             "center_input_sample": False, "cross_attention_dim": 768,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
             "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
             "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
CLIP_L_TEXT = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
               "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768}
with torch.device("meta"):
    unet = UNet2DConditionModel(**SD15_UNET)
    enc = CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))
out = {"_about": "state-dict keys and shapes of Arc2Face's released checkpoints (FoivosPar/Arc2Face: arc2face/ = "
                 "an SD-1.5 UNet, encoder/ = a CLIP ViT-L/14 text encoder), as the official code's pinned libraries "
                 f"build them (diffusers {diffusers.__version__}, transformers {transformers.__version__}) from the "
                 "released configs below",
       "unet_config": SD15_UNET, "encoder_config": CLIP_L_TEXT,
       "unet": {k: list(v.shape) for k, v in unet.state_dict().items()},
       "encoder": {k: list(v.shape) for k, v in enc.state_dict().items()}}
json.dump(out, open("arc2face_release_keys.json", "w"))
print(len(out["unet"]), len(out["encoder"]))
