"""Verification evaluation: k-fold accuracy, ROC, TPR at fixed FPR. Never imports training.

* :mod:`~synthfr.evaluation.verification`: the metrics (``evaluate_embeddings`` and friends);
* :mod:`~synthfr.evaluation.evaluate`: ``evaluate_embedder`` and ``run_eval`` (``synthfr eval``);
* :mod:`~synthfr.evaluation.embed`: ``embed_path`` (``synthfr embed``).
"""
from synthfr.evaluation.verification import (
    equal_error_rate, evaluate_embeddings, evaluate_similarities, kfold_accuracy, roc_curve, tpr_at_fpr,
)
from synthfr.evaluation.config import EmbedConfig, EvalConfig
from synthfr.evaluation.evaluate import evaluate, evaluate_embedder, resolve_embedder, run_eval
from synthfr.evaluation.embed import embed, embed_path

__all__ = [
    "evaluate_embeddings", "evaluate_similarities", "kfold_accuracy", "roc_curve", "equal_error_rate",
    "tpr_at_fpr", "evaluate_embedder", "resolve_embedder", "run_eval", "embed_path", "EvalConfig", "EmbedConfig",
    "evaluate", "embed",
]
