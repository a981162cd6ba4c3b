"""cutmix-bench: train and compare mixing-based augmentations, then score robustness."""

__version__ = "0.1.0"
