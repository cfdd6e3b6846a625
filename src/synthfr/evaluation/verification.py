"""Old home of the verification metrics: they are :mod:`synthfr.verification` now (shared with quality)."""
from synthfr.verification import (  # noqa: F401
    DEFAULT_FPRS, best_threshold, cosine_similarities, eer_from_scores, equal_error_rate, evaluate_embeddings,
    evaluate_similarities, fpr_key, kfold_accuracy, roc_curve, save_roc, tpr_at_fpr,
)
from synthfr.verification import __all__  # noqa: F401
