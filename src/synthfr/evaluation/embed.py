"""The ``synthfr embed`` job. Embedding itself is a face-stage job (:mod:`synthfr.face.embed`, shared with dataset
quality); :func:`embed_path`, :func:`list_images` and :func:`sidecar_paths` are re-exported from there."""
from __future__ import annotations

from typing import Any

from synthfr.evaluation.config import EmbedConfig
from synthfr.face.embed import embed_path, list_images, sidecar_paths

__all__ = ["embed_path", "embed", "list_images", "sidecar_paths"]


def embed(cfg: EmbedConfig) -> dict[str, Any]:
    """The ``synthfr embed`` job: :func:`embed_path` with the settings of one :class:`EmbedConfig`."""
    from synthfr.utils.validate import check_range

    check_range("--batch-size", cfg.batch_size, 1, integer=True)
    return embed_path(cfg.input, cfg.embedder, cfg.out, batch_size=cfg.batch_size, flip=cfg.flip,
                      device=cfg.device, align=cfg.align, progress=cfg.progress, json_path=cfg.json)
