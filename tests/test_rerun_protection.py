"""Committed results are never overwritten by a rerun: the published suites write to runs/<name>, and any
command that would rewrite a results folder whose runs are not there (a published copy) refuses it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cutmix_bench.cli import main
from cutmix_bench.suite_file import load_suite

from helpers import REPO, tiny_suite

PUBLISHED = REPO / "results" / "cifar100-cpu"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_published_results_folder_is_refused_and_left_byte_identical(tmp_path: Path, capsys, command: str) -> None:
    copy = tmp_path / "cifar100-cpu"
    shutil.copytree(PUBLISHED, copy)
    before = snapshot(copy)
    suite = tiny_suite(tmp_path)
    assert main([command, str(suite), "--set", f"output_dir={copy}"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "holds the results of 12 run(s) that are not under" in error
    assert "cutmix-bench compare" in error
    assert snapshot(copy) == before


@pytest.mark.parametrize("name", ["cifar100-cpu", "cifar100-cpu-r20", "cifar100-r20-crd"])
def test_the_published_suites_write_beside_not_over_their_results(name: str) -> None:
    suite = load_suite(REPO / "suites" / f"{name}.yaml", build=False)
    assert Path(suite.output_dir).resolve() == REPO / "runs" / name
