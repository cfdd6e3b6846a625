"""One-command pipeline: sample identities -> generate -> quality report -> (train) -> (evaluate).

``run_pipeline(PipelineConfig)`` (CLI: ``synthfr pipeline CONFIG.yaml``) chains the library's public jobs, one
per stage (:mod:`~synthfr.app.pipeline.stages`), into one folder layout; :mod:`~synthfr.app.pipeline.run`
plans, resumes and records the stages; :mod:`~synthfr.app.pipeline.config` is the YAML's dataclass. The
demo (:mod:`synthfr.app.demo`) is this pipeline run on a shipped preset.
"""
from synthfr.app.pipeline.config import (STAGES, EvaluateStage, GenerateStage, PipelineConfig, QualityStage,
                                         SampleStage, TrainStage, load_pipeline_config, parse_overrides, stage_dir)
from synthfr.app.pipeline.run import run_pipeline, stage_configs

__all__ = ["PipelineConfig", "SampleStage", "GenerateStage", "QualityStage", "TrainStage", "EvaluateStage",
           "STAGES", "run_pipeline", "stage_configs", "load_pipeline_config", "parse_overrides",
           "stage_dir"]
