"""No mixing: the reference every method is compared against."""

from . import METHODS
from .base import Method


@METHODS.register("baseline", display="Baseline")
class Baseline(Method):
    """No mixing: the batch unchanged (plain ERM with one-hot targets)."""

    reference = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (the standard CIFAR recipe)"
