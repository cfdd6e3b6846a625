"""Arc2Face (Papantoniou et al., ECCV 2024), the generator HyperFace uses, through diffusers + transformers.

Design (as released): a unit 512-D ArcFace identity vector replaces the embedding of the token ``id`` in
the prompt "photo of a id person" (zero-padded to the CLIP width, 768), the prompt runs through Arc2Face's
fine-tuned CLIP text encoder, and the resulting 77×768 sequence conditions a Stable-Diffusion-1.5 UNet
(Arc2Face's own weights). Sampling uses a configurable scheduler (DPM-Solver++ multistep by default, 25
steps, classifier-free guidance 3.0 against the encoded empty prompt), SD-1.5's VAE decodes 512×512 images.

Alignment to 112×112: ``align="detect"`` (default) runs synthfr's five-point aligner
(:mod:`synthfr.face.align`, dlib landmarks) on each 512×512 output; when no face is found the image falls
back to ``"resize"`` (counted in ``align_fallbacks``). ``align="resize"`` shrinks the whole frame to
112×112: Arc2Face is trained on aligned crops, so its outputs are already roughly in the ArcFace template
(faster, no detector, slightly different geometry).

Determinism: each image's initial latent is drawn from ``torch.Generator("cpu").manual_seed(seed)`` (the
same numbers as ``StableDiffusionPipeline(..., generator=[torch.Generator().manual_seed(s) ...])``), and
DPM-Solver++ is deterministic, so an image depends on (vector, seed) only, up to floating-point differences
between batch sizes on some hardware; the pipeline therefore batches such generators per identity
(``batch_invariant = False``).

Weights folder (``weights=DIR``; see docs/generators.md for the download commands)::

    DIR/arc2face/config.json, diffusion_pytorch_model.safetensors     <- FoivosPar/Arc2Face
    DIR/encoder/config.json, model.safetensors | pytorch_model.bin      <- FoivosPar/Arc2Face
    DIR/vae/config.json, diffusion_pytorch_model.safetensors           <- stable-diffusion-v1-5
    DIR/tokenizer/vocab.json, merges.txt, ...                          <- stable-diffusion-v1-5
    DIR/scheduler/scheduler_config.json                                <- stable-diffusion-v1-5

Condition vectors live in the space of Arc2Face's ArcFace model (``arcface.onnx`` from FoivosPar/Arc2Face,
an IResNet-100 trained on WebFace42M); they are L2-normalised before use, as Arc2Face does.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.generators import REGISTRY
from synthfr.generators.base import Generator, per_sample_randn, require_weights, to_uint8_images

__all__ = ["Arc2Face", "ARC2FACE_FILES", "SCHEDULERS"]

ARC2FACE_FILES = (
    "arc2face/config.json", "arc2face/diffusion_pytorch_model.safetensors|arc2face/diffusion_pytorch_model.bin",
    "encoder/config.json", "encoder/model.safetensors|encoder/pytorch_model.bin",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors|vae/diffusion_pytorch_model.bin",
    "tokenizer/vocab.json|tokenizer/tokenizer.json", "scheduler/scheduler_config.json",
)

#: scheduler option -> diffusers class name
SCHEDULERS = {
    "dpm": "DPMSolverMultistepScheduler", "dpm++": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
    "pndm": "PNDMScheduler", "lms": "LMSDiscreteScheduler", "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}

_HELP = ("Arc2Face needs the FoivosPar/Arc2Face weights (arc2face/, encoder/) and Stable Diffusion 1.5's vae/, "
         "tokenizer/ and scheduler/ in one folder; docs/generators.md gives the exact download commands "
         "(`pip install synthfr[arc2face]` for diffusers and transformers).")


@REGISTRY.register("arc2face")
class Arc2Face(Generator):
    """Arc2Face: ArcFace vector -> CLIP text encoder -> SD-1.5 UNet (diffusers; extra [arc2face])."""

    dim = 512
    embedder = "onnx"  # Arc2Face's arcface.onnx; embedder_spec_for names the file when it is in the weights folder
    batch_invariant = False
    weights_help = _HELP
    #: what its images inherit (the dataset card shows it)
    sources = {
        "datasets": ["WebFace42M", "FFHQ", "CelebA-HQ"],
        "trained_on": "Arc2Face: WebFace42M (restored/upsampled), fine-tuned on FFHQ and CelebA-HQ; base model "
                      "Stable Diffusion 1.5; conditioned on an ArcFace (insightface) network",
        "licences": "WebFace42M: non-commercial research only; FFHQ: CC BY-NC-SA 4.0; CelebA-HQ: non-commercial "
                    "research only; Stable Diffusion 1.5 weights: CreativeML OpenRAIL-M; insightface ArcFace "
                    "models: non-commercial research only",
        "commercial": False,
    }

    @classmethod
    def embedder_spec_for(cls, weights: str | Path | None = None) -> str:
        """``onnx:path=WEIGHTS/arcface.onnx`` when Arc2Face's ArcFace is in the weights folder, else ``onnx``."""
        onnx = Path(weights).expanduser() / "arcface.onnx" if weights is not None else None
        return f"onnx:path={onnx}" if onnx is not None and onnx.is_file() else cls.embedder

    def __init__(self, weights: str | Path | None = None, device: Any = "auto", steps: int = 25,
                 guidance: float = 3.0, scheduler: str = "dpm", align: str = "detect", dtype: str = "auto",
                 prompt: str = "photo of a id person", id_token: str = "id", **kwargs: Any):
        super().__init__(weights=weights, device=device, **kwargs)
        root = require_weights(weights, ARC2FACE_FILES, generator="arc2face", help=_HELP)
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        if align not in ("detect", "resize"):
            raise ValueError(f"align must be 'detect' or 'resize', got {align!r}")
        self.steps, self.guidance, self.scheduler_name = int(steps), float(guidance), scheduler
        self.align, self.prompt, self.id_token = align, prompt, id_token
        self.align_fallbacks = 0
        try:
            import diffusers
            import transformers
        except ImportError as e:
            raise ImportError(f"arc2face needs diffusers and transformers: pip install 'synthfr[arc2face]' ({e})") from e
        import torch

        dev = self.device
        if dtype == "auto":
            tdtype = torch.float16 if dev.type == "cuda" else torch.float32
        else:
            tdtype = getattr(torch, dtype)
        self.dtype = tdtype
        self.unet = diffusers.UNet2DConditionModel.from_pretrained(root / "arc2face", torch_dtype=tdtype).to(dev).eval()
        self.vae = diffusers.AutoencoderKL.from_pretrained(root / "vae", torch_dtype=tdtype).to(dev).eval()
        self.text_encoder = transformers.CLIPTextModel.from_pretrained(root / "encoder").to(dev, tdtype).eval()
        self.tokenizer = transformers.CLIPTokenizer.from_pretrained(root / "tokenizer")
        sched_cls = getattr(diffusers, SCHEDULERS[scheduler])
        self.scheduler_config = dict(sched_cls.load_config(root / "scheduler"))
        self._sched_cls = sched_cls
        self.hidden = int(self.text_encoder.config.hidden_size)
        if self.hidden < self.dim:
            raise ValueError(f"{root / 'encoder'}: CLIP width {self.hidden} < ArcFace dimension {self.dim}")
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.latent_size = int(self.unet.config.sample_size)
        self._prompt_ids, self._uncond = None, None
        self._landmarker = None

    def options(self) -> dict[str, Any]:
        return {"steps": self.steps, "guidance": self.guidance, "scheduler": self.scheduler_name,
                "align": self.align, "prompt": self.prompt, "dtype": str(self.dtype).replace("torch.", "")}

    # -- conditioning ----------------------------------------------------------------------------
    def _ids(self, text: str):
        import torch

        tok = self.tokenizer(text, truncation=True, padding="max_length", max_length=self.tokenizer.model_max_length,
                             return_tensors="pt")
        return tok.input_ids.to(self.device)

    def encode(self, conditions):
        """Unit 512-D vectors (torch B×512) -> prompt embeddings B×77×768 (Arc2Face's ``project_face_embs``)."""
        import torch
        import torch.nn.functional as F

        if self._prompt_ids is None:
            self._prompt_ids = self._ids(self.prompt)
            tid = self.tokenizer.encode(self.id_token, add_special_tokens=False)
            if len(tid) != 1 or int((self._prompt_ids == tid[0]).sum()) != 1:
                raise ValueError(f"the prompt {self.prompt!r} must contain the token {self.id_token!r} once")
            self._id_token_id = tid[0]
        b = conditions.shape[0]
        ids = self._prompt_ids.repeat(b, 1)
        face = F.normalize(conditions.to(self.device, torch.float32), dim=1)
        face = F.pad(face, (0, self.hidden - self.dim)).to(self.dtype)
        mask = ids == self._id_token_id
        tm = getattr(self.text_encoder, "text_model", self.text_encoder)
        emb_layer = tm.embeddings.token_embedding

        def hook(_mod, _inp, out):  # put the face vectors where the "id" token embedding was
            out = out.clone()
            out[mask] = face
            return out

        h = emb_layer.register_forward_hook(hook)
        try:
            out = self.text_encoder(input_ids=ids)[0]
        finally:
            h.remove()
        return out

    def _uncond_embeds(self, b: int):
        if self._uncond is None:
            self._uncond = self.text_encoder(input_ids=self._ids(""))[0]
        return self._uncond.expand(b, -1, -1)

    # -- sampling ------------------------------------------------------------------------------------
    def sample(self, conditions, seeds):
        """Float images in [0, 1], B×3×H×W at the model's resolution (512 for the real weights)."""
        import torch

        with torch.no_grad():
            cond = self.encode(conditions)
            b = cond.shape[0]
            do_cfg = self.guidance > 1.0
            if do_cfg:
                cond = torch.cat([self._uncond_embeds(b), cond])
            sched = self._sched_cls.from_config(self.scheduler_config)
            sched.set_timesteps(self.steps, device=self.device)
            c = int(self.unet.config.in_channels)
            latents = per_sample_randn(seeds, (c, self.latent_size, self.latent_size), device=self.device,
                                       dtype=self.dtype)
            latents = latents * sched.init_noise_sigma
            step_kw = {}
            if "generator" in inspect.signature(sched.step).parameters:
                # stochastic schedulers (euler_a, lcm, ...) draw step noise: one generator per image
                from synthfr.utils.seeds import derive_seed

                step_kw["generator"] = [torch.Generator("cpu").manual_seed(derive_seed(int(s), "step"))
                                        for s in np.asarray(seeds).reshape(-1)]
            for t in sched.timesteps:
                inp = torch.cat([latents] * 2) if do_cfg else latents
                inp = sched.scale_model_input(inp, t)
                eps = self.unet(inp, t, encoder_hidden_states=cond).sample
                if do_cfg:
                    e_u, e_c = eps.chunk(2)
                    eps = e_u + self.guidance * (e_c - e_u)
                latents = sched.step(eps, t, latents, **step_kw).prev_sample
            img = self.vae.decode(latents / self.vae.config.scaling_factor).sample
            return (img.float() / 2 + 0.5).clamp(0, 1)

    def _to_112(self, images: np.ndarray) -> np.ndarray:
        import cv2

        out = np.empty((images.shape[0], 112, 112, 3), np.uint8)
        for j, img in enumerate(images):
            aligned = None
            if self.align == "detect":
                if self._landmarker is None:
                    from synthfr.face.landmarks import FaceLandmarker

                    self._landmarker = FaceLandmarker.from_config(_align_config())
                from synthfr.face.align import align_face

                five, _ = self._landmarker.five_points(img)
                if five is not None:
                    aligned = align_face(img, five, 112)
                else:
                    self.align_fallbacks += 1
            if aligned is None:
                aligned = img if img.shape[:2] == (112, 112) else cv2.resize(img, (112, 112),
                                                                                interpolation=cv2.INTER_AREA)
            out[j] = aligned
        return out

    def _generate(self, conditions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        import torch

        imgs = to_uint8_images(self.sample(torch.from_numpy(conditions), seeds))
        return self._to_112(imgs)


def _align_config():
    from synthfr.face.align import AlignConfig

    return AlignConfig(size=112)
