"""A suite killed at any point (kill -9) finishes on rerun with the same results as an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cutmix_bench.corruptions.parallel import SEGMENT_PREFIX, SHM_DIR, reclaim_stale_segments

from helpers import REPO, tiny_suite

TIMING = {"train_minutes", "images_per_second", "wall_seconds_this_session"}
BACKSTOP = 900  # seconds: only against a hang; the tests are triggered by crash points, never timed


def run_cli(suite: Path, out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("CUTMIX_BENCH_KILL_AT", None)
    if kill_at:
        env["CUTMIX_BENCH_KILL_AT"] = kill_at
    command = [sys.executable, "-m", "cutmix_bench", "run", str(suite), "--set", f"output_dir={out}"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=BACKSTOP)


def comparable(out: Path) -> pd.DataFrame:
    """results.csv without wall-clock measurements, in a fixed order."""
    frame = pd.read_csv(out / "results.csv")
    frame = frame[~frame["metric"].isin(TIMING)]
    return frame.sort_values(["run", "evaluation", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("reference")
    suite = tiny_suite(tmp)
    result = run_cli(suite, tmp / "out")
    assert result.returncode == 0, result.stderr
    return suite, comparable(tmp / "out")


@pytest.mark.parametrize("kill_at", [
    "epoch:baseline-s0:1",          # mid-training: epoch 1 logged, its checkpoint not yet written
    "done:baseline-s0",             # between runs
    "evaluation:cutmix-s0:clean",   # mid-evaluation: metrics computed, not yet saved
    "report",                       # mid-report: results.csv written, report.md not
])
def test_killed_suite_resumes_to_identical_results(reference, tmp_path: Path, kill_at: str) -> None:
    suite, expected = reference
    out = tmp_path / "out"
    killed = run_cli(suite, out, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_cli(suite, out)
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(comparable(out), expected)
    assert (out / "report.md").exists()
    if kill_at == "done:baseline-s0":
        assert "baseline-s0: finished earlier, skipped" in resumed.stderr
    if kill_at.startswith("epoch:"):
        log = pd.read_csv(out / "runs" / "baseline-s0" / "log.csv")
        assert log["epoch"].tolist() == [0, 1, 2]  # the replayed epoch is logged once


def test_external_kill_mid_training_resumes(reference, tmp_path: Path) -> None:
    """A real SIGKILL from outside, sent as soon as the first epoch is checkpointed."""
    suite, expected = reference
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("CUTMIX_BENCH_KILL_AT", None)
    process = subprocess.Popen([sys.executable, "-m", "cutmix_bench", "run", str(suite), "--set",
                                f"output_dir={out}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "runs" / "baseline-s0" / "last.ckpt"
    deadline = time.time() + BACKSTOP  # a backstop only: the loop ends on the checkpoint
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert checkpoint.exists()
    resumed = run_cli(suite, out)
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(comparable(out), expected)


def test_same_seed_gives_bitwise_identical_metrics(reference, tmp_path: Path) -> None:
    suite, expected = reference
    result = run_cli(suite, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(comparable(tmp_path / "out"), expected, check_exact=True)


@pytest.mark.parametrize("target", ["suite", "dir"])
def test_report_waits_while_another_command_finishes_the_folder(reference, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """`report SUITE` (or `report DIR`) started while `run` writes the suite's files (here: while its lock is held)
    writes nothing until that ends, so it never leaves a results.csv or report.md older than the run's; then it
    completes."""
    from cutmix_bench import cli, report
    from cutmix_bench.rundir import ResultsDir

    suite, _ = reference
    out = tmp_path / "out"
    shutil.copytree(suite.parent / "out", out)
    writing = threading.Event()
    build = report.build_report
    monkeypatch.setattr(report, "build_report", lambda *a: (writing.set(), build(*a))[1])
    args = ["report", str(suite), "--set", f"output_dir={out}"] if target == "suite" else ["report", str(out)]
    codes: list[int] = []
    with ResultsDir(out).finishing():
        command = threading.Thread(target=lambda: codes.append(cli.main(args)))
        command.start()
        assert not writing.wait(5), "the report was written while another command was finishing the folder"
    command.join(BACKSTOP)
    assert codes == [0] and writing.is_set()


def test_failed_run_is_isolated_and_reported(tmp_path: Path) -> None:
    """An unreadable checkpoint fails one run; the other finishes; the report lists the failure;
    exit status 1. After removing the bad file, the rerun completes the suite."""
    suite, out = tiny_suite(tmp_path), tmp_path / "out"
    bad = out / "runs" / "cutmix-s0" / "last.ckpt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    result = run_cli(suite, out)
    assert result.returncode == 1
    assert "cutmix-s0 failed: BenchError" in result.stderr and "Traceback" not in result.stderr
    assert (out / "runs" / "baseline-s0" / "DONE").exists()
    report = (out / "report.md").read_text()
    assert "## Failed or unfinished runs" in report and "not a readable checkpoint" in report
    bad.unlink()
    assert run_cli(suite, out).returncode == 0
    assert "unfinished runs" not in (out / "report.md").read_text()
    assert set(pd.read_csv(out / "results.csv")["run"]) == {"baseline-s0", "cutmix-s0"}


def test_diverging_training_is_detected(tmp_path: Path) -> None:
    suite = tiny_suite(tmp_path, methods={"baseline": {}})
    result = subprocess.run(
        [sys.executable, "-m", "cutmix_bench", "run", str(suite), "--set", "train.optimizer.lr=1.0e+30"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=BACKSTOP)
    assert result.returncode == 1
    assert "non-finite loss" in (tmp_path / "out" / "runs" / "baseline-s0" / "FAILED").read_text()


def _shm_entries() -> set[str]:
    return {p.name for p in SHM_DIR.iterdir()} if SHM_DIR.is_dir() else set()


def _corrupt(out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("CUTMIX_BENCH_KILL_AT", None)
    if kill_at:
        env["CUTMIX_BENCH_KILL_AT"] = kill_at
    root = out.parent / "data"  # 40 small images: cheap, and still 5 tasks (severities) per corruption
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        np.savez(root / f"{split}.npz", x=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y=np.arange(40) % 4)
    command = [sys.executable, "-m", "cutmix_bench", "corrupt", "--dataset", "npz", "--data-root", str(root),
               "--out", str(out), "--corruptions", "gaussian_noise,contrast", "--severities", "1", "--workers", "2"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=BACKSTOP)


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm")
def test_kill_during_corruption_generation_leaves_no_shared_memory(tmp_path: Path) -> None:
    """kill -9 of the generating process while its workers write into a shared-memory segment: its segment
    (named after its pid) is gone once the next generation has started, and that one finishes normally."""
    killed = _corrupt(tmp_path / "c", "corrupt:segment")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _corrupt(tmp_path / "c")
    assert resumed.returncode == 0, resumed.stderr
    assert not [name for name in _shm_entries() if name.startswith(SEGMENT_PREFIX) and not _alive_prefix(name)]
    assert {"gaussian_noise.npy", "contrast.npy", "labels.npy"} <= {p.name for p in (tmp_path / "c").iterdir()}


def _alive_prefix(name: str) -> bool:
    """A segment of a generator that is still running (another test session, say)."""
    from cutmix_bench.corruptions.parallel import _alive

    return _alive(int(name[len(SEGMENT_PREFIX):].split("-")[0]))


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm")
def test_stale_segment_of_a_dead_generator_is_reclaimed() -> None:
    """A kill -9 of the whole process group takes the resource tracker with it: the next generation unlinks
    the segments whose creator is gone, and leaves those of live processes alone."""
    from multiprocessing import resource_tracker
    from multiprocessing.shared_memory import SharedMemory

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale_pid = int(dead.stdout)
    stale = SharedMemory(name=f"{SEGMENT_PREFIX}{stale_pid}-0", create=True, size=4096)
    live = SharedMemory(name=f"{SEGMENT_PREFIX}{os.getpid()}-99", create=True, size=4096)
    resource_tracker.unregister(stale._name, "shared_memory")  # as after a crash: nobody will clean it
    stale.close()
    try:
        reclaimed = reclaim_stale_segments()
        assert stale.name in reclaimed and live.name not in reclaimed
        assert stale.name not in _shm_entries() and live.name in _shm_entries()
    finally:
        live.close()
        live.unlink()


def test_parallel_generation_creates_no_named_semaphores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A multiprocessing.Pool's queues hold named POSIX semaphores that a kill -9 leaks; the generator's own
    worker processes and pipes need none (and give the same bytes as one process)."""
    import multiprocessing.synchronize

    from cutmix_bench.corruptions import corrupt_all

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a named semaphore was created")

    images = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    expected = dict(corrupt_all(images, 1, names=["contrast", "gaussian_noise"], workers=1, chunk_size=5))
    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", refuse)
    got = dict(corrupt_all(images, 1, names=["contrast", "gaussian_noise"], workers=2, chunk_size=5))
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
