"""VIGFace stage 2: a diffusion transformer rendering identity prototypes (issue 19).

* :mod:`.model` — the DiT (adaLN-Zero; prototype + optional landmark conditioning, null embedding for CFG).
* :mod:`.schedule` — cosine schedule rescaled to zero terminal SNR, v-prediction, trailing DDIM, guidance.
* :mod:`.sample` — per-image seeds, fixed-size chunks (batch-invariant pixels).
* :mod:`.prototypes` — stage 1 (the ``vigface`` classifier's real and virtual rows).
* :mod:`.trainer` — ``synthfr train-dit`` (resumable, DDP, AMP); :mod:`.checkpoint` — safetensors + JSON, export.

The registered generator is :mod:`synthfr.generators.vigface_dit`.
"""
