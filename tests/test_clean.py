"""Clean metrics: one top-1 rule (argmax, first of tied maxima) for the error and for ECE's correctness."""

from __future__ import annotations

import pytest
import torch

from cutmix_bench.evaluations.clean import classification_metrics, expected_calibration_error


def test_tied_logits_use_the_first_maximum_for_top1_and_ece() -> None:
    # Row 0 ties classes 0 and 1 (label 1): argmax picks 0, wrong. Row 1 ties 1 and 2 (label 1): right.
    # Row 2 ties all four (label 0): right. Row 3 has no tie (label 3): right.
    logits = torch.tensor([[2.0, 2.0, 0.0, 0.0], [0.0, 3.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0]])
    labels = torch.tensor([1, 1, 0, 3])
    got = classification_metrics(logits, labels, bins=1)
    assert got["top1_err"] == pytest.approx(25.0)
    # One bin: ECE = |accuracy - mean confidence| with the same correctness, 3 of 4.
    confidence = logits.softmax(1).max(1).values
    assert got["ece"] == pytest.approx(100 * abs(0.75 - float(confidence.mean())), abs=1e-5)
    # Against the second of the tied classes both would change together: label row 0 as class 0 instead.
    relabelled = torch.tensor([0, 1, 0, 3])
    assert classification_metrics(logits, relabelled, bins=1)["top1_err"] == 0.0
    assert expected_calibration_error(logits, relabelled, bins=1) == pytest.approx(abs(1 - float(confidence.mean())),
                                                                                   abs=1e-6)
