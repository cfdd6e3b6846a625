"""Verification evaluation: k-fold accuracy, ROC, TPR at fixed FPR. Never imports training."""
