"""`--dry-run`'s estimate: units a reader takes in, a probe that host load does not inflate, and the hint that a
suite is meant for a GPU."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

from cutmix_bench.plan import duration, gpu_hint, step_seconds


@pytest.mark.parametrize("seconds,text", [(59, "59 s"), (119.4, "119 s"), (120, "2 min"), (7199, "120 min"),
                                          (7200, "2.0 h"), (2.5 * 86400, "60.0 h"), (3 * 86400, "3.0 days"),
                                          (50416 * 3600, "2100.7 days")])
def test_durations_scale_their_unit(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_probe_counts_cpu_time_not_waiting() -> None:
    """A step that waits (as a step does while other processes hold the CPUs) costs no probe time; one that
    computes does."""
    waiting = step_seconds(lambda: time.sleep(0.05), torch.device("cpu"))
    assert len(waiting) >= 3 and waiting.max() < 0.01

    def spin() -> None:
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass

    assert step_seconds(spin, torch.device("cpu")).min() >= 0.02 / torch.get_num_threads() * 0.9


def test_a_gpu_suite_on_a_cpu_says_so_and_what_to_override() -> None:
    cpu = torch.device("cpu")
    hint = gpu_hint(SimpleNamespace(device="auto"), cpu, 50 * 86400)
    assert "meant for a GPU" in hint and "--set model.name=resnet8" in hint and "suites/cifar100-cpu.yaml" in hint
    assert gpu_hint(SimpleNamespace(device="auto"), cpu, 3600) == ""      # an hour on this CPU: no hint
    assert gpu_hint(SimpleNamespace(device="cpu"), cpu, 50 * 86400) == ""  # a CPU suite asked for the CPU
