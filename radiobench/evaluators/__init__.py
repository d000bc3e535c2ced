"""Evaluator networks (trained on a dataset's train split, cached by content fingerprint)."""
