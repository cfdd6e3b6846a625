"""Configs of the evaluation jobs (``synthfr eval``, ``synthfr embed``); one docstring under every field.

The command line of each job is generated from these fields (:func:`synthfr.config.add_config_arguments`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["EvalConfig", "EmbedConfig"]


@dataclass
class EvalConfig:
    """``synthfr eval``: 10-fold verification of one embedder or trained model on benchmarks."""

    benchmarks: list[str]
    """Benchmark: an insightface .bin file, or a folder of Name/Name_0001.jpg images with a pairs.txt
    (repeatable)."""
    embedder: str | None = None
    """Registered embedder NAME[:key=value,...] to evaluate, e.g. dlib-torch or onnx:path=MODEL.onnx
    (`synthfr list embedder`); give this or checkpoint."""
    checkpoint: str | None = None
    """A run directory of a face-recognition model trained by synthfr; give this or embedder."""
    flip: bool = False
    """Flip test-time augmentation: add the embedding of the mirrored image and re-normalise."""
    batch_size: int = 64
    """Images per embedder call."""
    device: str = "auto"
    """Torch device for torch embedders: auto, cpu, cuda, ..."""
    align: Literal["auto", "always", "never"] = "auto"
    """Folders only: align images that are not 112x112 (auto), every image, or none."""
    pairs: str | None = None
    """Folders only: pairs file to use instead of FOLDER/pairs.txt."""
    roc: str | None = None
    """Folder where <benchmark>.roc.csv and <benchmark>.roc.png are written."""
    json: str | None = None
    """Write the metrics as JSON to this path."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class EmbedConfig:
    """``synthfr embed``: embed a folder of faces or an insightface .bin."""

    input: str
    """Folder of images (aligned 112x112 or raw) or an insightface .bin."""
    embedder: str
    """Registered embedder NAME[:key=value,...], e.g. dlib-torch or onnx:path=MODEL.onnx
    (`synthfr list embedder`)."""
    out: str
    """Output .npy file (OUT.paths.txt, and for identity trees OUT.labels.npy and OUT.classes.txt, beside it)."""
    batch_size: int = 64
    """Images per embedder call."""
    device: str = "auto"
    """Torch device for torch embedders: auto, cpu, cuda, ..."""
    flip: bool = False
    """Add the mirrored image's embedding and re-normalise."""
    align: Literal["auto", "always", "never"] = "auto"
    """Align images that are not 112x112 (auto), every image, or none (failures)."""
    json: str | None = None
    """Write a summary (counts, failures with reasons) as JSON to this path."""
    progress: bool = True
    """Show a progress bar."""
