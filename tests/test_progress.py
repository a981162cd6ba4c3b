"""Progress of `cutmix-bench run`: the model read from run folders (units done / total, current step, ETA
arithmetic), and the command: bars on a terminal, plain lines elsewhere, nothing with --quiet, and the same
results whichever is shown."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cutmix_bench.progress import RunState, Snapshot, clock, eta, run_state, snapshot
from cutmix_bench.rundir import Run, RunDir
from cutmix_bench.suite_file import load_suite

from helpers import REPO, tiny_suite

ANSI = re.compile(r"\x1b\[")


def test_run_state_follows_the_run_folder(tmp_path: Path) -> None:
    folder, labels, since = RunDir(tmp_path / "cutmix-s0"), ["clean", "occlusion"], time.time()
    (folder.path / "eval").mkdir(parents=True)
    assert run_state(folder, 5, labels, since).state == "waiting"
    folder.setup.write_text("{}")  # written when a process starts on the run
    folder.log.write_text("epoch,train_loss\n0,1.0\n1,0.9\n")
    state = run_state(folder, 5, labels, since)
    assert (state.state, state.epochs_done, state.current, state.units, state.units_done) == \
        ("running", 2, "epoch 3/5", 7, 2)
    folder.train_rows.write_text("evaluation\n")  # training finished: every epoch counts
    folder.eval_file("clean").write_text("metric\n")
    state = run_state(folder, 5, labels, since)
    assert (state.current, state.units_done) == ("evaluation occlusion", 6)
    folder.eval_file("occlusion").write_text("metric\n")
    folder.done.write_text("complete\n")
    state = run_state(folder, 5, labels, since)
    assert (state.state, state.units_done, state.current) == ("done", 7, "")


def test_files_of_an_earlier_session_do_not_count_as_this_one(tmp_path: Path) -> None:
    folder = RunDir(tmp_path / "baseline-s0")
    folder.path.mkdir()
    folder.setup.write_text("{}")
    folder.failed.write_text("BenchError: earlier\n")
    old = time.time() - 3600
    for path in (folder.setup, folder.failed):
        os.utime(path, (old, old))
    assert run_state(folder, 3, ["clean"], time.time() - 60).state == "waiting"
    folder.failed.write_text("BenchError: now\n")  # failed in this session: worked off, 4 of 4 units
    state = run_state(folder, 3, ["clean"], time.time() - 60)
    assert (state.state, state.units_done) == ("failed", 4)


def test_eta_is_the_remaining_units_at_this_sessions_rate() -> None:
    assert eta(elapsed=60, units_at_start=2, units_now=5, units_total=11) == pytest.approx(6 * 60 / 3)
    assert eta(60, 2, 2, 11) is None  # nothing done yet in this session: no rate
    assert eta(60, 0, 11, 11) == 0


def test_snapshot_counts_and_summary() -> None:
    runs = [RunState("a", "done", 3, 3, 1, 1, ""), RunState("b", "failed", 0, 3, 0, 1, ""),
            RunState("c", "running", 1, 3, 0, 1, "epoch 2/3"), RunState("d", "waiting", 0, 3, 0, 1, "")]
    # a was finished before: 4 + 4 + 1 units now; work on runs began 50 s ago, 15 s after the command
    now = Snapshot(runs, elapsed=65, units_at_start=4, working=50)
    assert (now.units_now, now.units_total) == (9, 16)
    assert now.eta == pytest.approx((16 - 9) * 50 / 5)
    assert now.summary() == "1/4 runs done, 1 failed, elapsed 1:05, ETA 1:10"
    assert now.summary(final=True) == "1/4 runs done, 1 failed, elapsed 1:05"
    assert (clock(59.6), clock(3723)) == ("1:00", "1:02:03")


def test_the_rate_clock_starts_when_work_on_a_run_begins(tmp_path: Path) -> None:
    """Data loading and worker start-up happen once: the ETA's rate is measured from the first setup.json this
    session wrote, the elapsed time from the command's start."""
    suite, since = load_suite(tiny_suite(tmp_path)), time.time() - 100
    folder = RunDir.of(tmp_path / "out", Run("baseline", 0))
    folder.path.mkdir(parents=True)
    folder.setup.write_text("{}")
    os.utime(folder.setup, (since + 40, since + 40))
    now = snapshot(suite, since)
    assert now.elapsed == pytest.approx(100, abs=2) and now.working == pytest.approx(60, abs=2)
    assert [r.state for r in now.runs] == ["running", "waiting"] and now.units_at_start == 0


def run_cli(suite: Path, out: Path, *flags: str, terminal: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "TTY_COMPATIBLE": "1" if terminal else "0"}
    env.pop("CUTMIX_BENCH_KILL_AT", None)
    command = [sys.executable, "-m", "cutmix_bench", "run", str(suite), "--set", f"output_dir={out}", *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def test_bars_plain_lines_and_quiet_show_what_they_should_and_change_no_result(tmp_path: Path) -> None:
    from test_reliability import comparable  # results.csv less its wall-clock rows

    suite = tiny_suite(tmp_path)
    bars = run_cli(suite, tmp_path / "bars", terminal=True)
    assert bars.returncode == 0, bars.stderr
    assert "suite tiny" in bars.stderr and ANSI.search(bars.stderr) and "runs done" not in bars.stdout
    assert "baseline-s0: finished" in bars.stderr

    plain = run_cli(suite, tmp_path / "plain", "--jobs", "2", terminal=False)
    assert plain.returncode == 0, plain.stderr
    assert not ANSI.search(plain.stderr + plain.stdout)  # a log file gets no control characters
    assert re.search(r"progress: 2/2 runs done, elapsed \d+:\d\d\n", plain.stderr)

    quiet = run_cli(suite, tmp_path / "quiet", "--quiet", terminal=True)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout == f"report: {tmp_path / 'quiet' / 'report.md'}\n"

    expected = comparable(tmp_path / "quiet")
    for shown in ("bars", "plain"):
        pd.testing.assert_frame_equal(comparable(tmp_path / shown), expected, check_exact=True)
