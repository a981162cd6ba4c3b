"""Reports that cannot be misread: what ran (not `auto`), the suite's wall time apart from the summed run time,
no absolute paths, intervals inside the metric's range with a note at 2 seeds, synthetic data said on the first
screen, and the noise sets reported as "noise", never as "far"."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cutmix_bench.aggregate import Difference
from cutmix_bench.evaluations.ood import auroc_rows, noise_as_such, set_group
from cutmix_bench.evaluations.tables import format_difference, portable_paths
from cutmix_bench.report import ran_precision, suite_wall_time


def test_the_command_row_names_no_absolute_path() -> None:
    command = ("cutmix-bench run suites/cifar100-cpu.yaml --set data.root=/home/ada/work/../shared/data/cifar100 "
               "--set output_dir=/work/longrun/cifar100-cpu --set 'model.name=resnet8'")
    assert portable_paths(command) == ("cutmix-bench run suites/cifar100-cpu.yaml --set data.root=…/data/cifar100 "
                                         "--set output_dir=…/longrun/cifar100-cpu --set 'model.name=resnet8'")
    assert "/home" not in portable_paths("cutmix-bench run /home/ada/s.yaml")


@pytest.mark.parametrize("requested,infos,shown", [
    ("auto", [{"precision": "32-true"}, {"precision": "32-true"}], "fp32 (requested auto)"),
    ("auto", [{"precision": "bf16-mixed"}], "bf16 autocast (requested auto)"),
    ("32", [], "fp32"),
    ("auto", [], "auto (as requested; what ran was not recorded)"),
])
def test_the_schedule_row_says_what_ran(requested: str, infos: list[dict], shown: str) -> None:
    assert ran_precision(requested, {f"r{i}": info for i, info in enumerate(infos)}) == shown


@pytest.mark.parametrize("devices,nodes,infos,shown", [
    (1, 1, [{"devices": 1, "strategy": "single_device", "nodes": 1}], ""),  # one device: the row names it
    (1, 1, [], ""),
    (2, 1, [{"devices": 2, "strategy": "ddp_spawn", "nodes": 1}] * 2, "; trained on 2 devices per run (strategy "
                                                                      "ddp_spawn)"),
    (8, 2, [{"devices": 8, "strategy": "ddp", "nodes": 2}], "; trained on 8 devices per run over 2 nodes (strategy "
                                                            "ddp)"),
    (2, 1, [{"devices": 1, "strategy": "single_device", "nodes": 1}, {"devices": 2, "strategy": "ddp_spawn",
                                                                      "nodes": 1}],
     "; trained on 1 device per run / trained on 2 devices per run (strategy ddp_spawn)"),  # resumed elsewhere
    (2, 1, [], "; trained on 2 devices per run (as requested; not recorded)"),
])
def test_the_device_row_says_how_many_devices_and_which_strategy_ran(devices: int, nodes: int, infos: list[dict],
                                                                    shown: str) -> None:
    from test_report import SUITE

    from cutmix_bench.config import Suite
    from cutmix_bench.report import ran_devices

    suite = Suite.model_validate({**SUITE, "train": {"epochs": 2, "devices": devices},
                                  "executor": {"name": "slurm", "nodes": nodes, "gpus_per_run": devices}})
    assert ran_devices(suite, {f"r{i}": info for i, info in enumerate(infos)}) == shown


def test_the_wall_time_is_the_suites_not_the_sum_of_its_runs() -> None:
    env = {"started": "2026-12-07 10:00:00 UTC", "finished": "2026-12-07 10:25:30 UTC"}
    assert suite_wall_time(env).startswith("25.5 min for the suite")
    assert suite_wall_time({"started": env["started"]}).startswith("not recorded")


def test_intervals_stay_inside_the_range_of_a_percentage_difference() -> None:
    wide = Difference(-16.66, -179.55, 146.24, "paired-t", 2)
    assert format_difference(wide, 100.0) == "-16.66 [-100.00, +100.00]"
    assert format_difference(wide) == "-16.66 [-179.55, +146.24]"  # no bound: a metric without a range


def ood_rows(far_sets: list[str], skipped: list[str] = ()) -> pd.DataFrame:
    rows = [{"run": "a-s0", "metric": "auroc", "value": 40.0 + i, "subset": name, "group": "far", "score": "msp"}
            for i, name in enumerate(far_sets)]
    rows += [{"run": "a-s0", "metric": "skipped", "value": math.nan, "subset": name, "group": "far", "score": ""}
             for name in skipped]
    rows += [{"run": "a-s0", "metric": "mean_auroc", "value": 40.5, "subset": "far", "group": "far", "score": "msp"}]
    return pd.DataFrame(rows)


def test_noise_sets_are_their_own_group_in_new_and_recorded_results() -> None:
    assert set_group("gaussian", "far") == set_group("uniform", "far") == "noise"
    assert set_group("svhn", "far") == "far" and set_group("cifar10", "near") == "near"
    recorded = ood_rows(["gaussian", "uniform"], skipped=["svhn", "places365"])  # what the committed runs hold
    read = noise_as_such(recorded)
    assert set(read["group"]) - {"far"} == {"noise"} and (read[read["metric"] != "skipped"]["group"] == "noise").all()
    assert auroc_rows(recorded, "far").empty and auroc_rows(recorded, "noise")["value"].tolist() == [40.5]
    with_real_far = noise_as_such(ood_rows(["gaussian", "svhn"]))  # a real far set scored: the far mean stays
    assert with_real_far.set_index("subset")["group"].to_dict() == {"gaussian": "noise", "svhn": "far", "far": "far"}


def test_a_synthetic_data_report_says_so_before_any_number(tmp_path) -> None:
    from test_report import SUITE, results_table, write_dir

    from cutmix_bench.report import report_from_dir

    report = report_from_dir(write_dir(tmp_path / "syn", SUITE, results_table([0, 1, 2]))).read_text()
    assert report.index("**Synthetic data.**") < report.index("## Summary")
    real = report_from_dir(write_dir(tmp_path / "real", {**SUITE, "data": {"name": "cifar100"}},
                                     results_table([0, 1, 2]))).read_text()
    assert "Synthetic data" not in real


def test_the_committed_report_names_no_path_of_the_machine_that_made_it() -> None:
    import re

    from helpers import REPO

    report = (REPO / "results" / "cifar100-cpu" / "report.md").read_text()
    assert not re.findall(r"(?<![\w.…])/(?:work|home|root|tmp|Users)/\S*", report)
