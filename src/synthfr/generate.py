"""Compatibility: the generation stage lives in :mod:`synthfr.generation` (scripts that import
``synthfr.generate`` keep working)."""
from synthfr.generation import (RUN_ONLY_FIELDS, GenerateConfig, LandmarkAlignmentCheck, generate_dataset,
                                image_seed, merge_shards, validate_generate_config)
from synthfr.registry import parse_spec

__all__ = ["GenerateConfig", "generate_dataset", "validate_generate_config", "merge_shards", "parse_spec",
           "image_seed", "LandmarkAlignmentCheck", "RUN_ONLY_FIELDS"]
