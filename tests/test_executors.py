"""Every executor gives the same results.csv (timings aside): the local one with 2 worker processes as one run
after another, and the slurm one through submitit's local executor (jobs as processes of this machine: the code
path of a cluster with only submitit's cluster type swapped), also when a job is preempted mid-training and
requeued, or killed and resubmitted. `cutmix-bench status` reads the runs' states back."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from cutmix_bench.cli import main
from cutmix_bench.executors.slurm import RunJob
from cutmix_bench.executors.state import read_state, write_state
from cutmix_bench.rundir import Run, RunDir

from helpers import REPO

SMOKE = REPO / "suites" / "smoke.yaml"
# The smoke suite (4 methods), shrunk to what CI can afford, the same for every executor.
SHRINK = ["--set", "train.epochs=2", "--set", "seeds=[0]", "--set", "evaluations={clean: {}, inbetween: {pairs: 200}}"]
SLURM = ["--executor", "slurm", "--set", "executor.cluster=local", "--set", "executor.gpus_per_run=0"]
BASELINE_ONLY = ["--set", "methods={baseline: {}}"]
TIMING = {"train_minutes", "images_per_second", "wall_seconds_this_session"}
BACKSTOP = 900  # seconds: only against a hang


def run_cli(out: Path, *args: str, env: dict[str, str] | None = None,
            command: str = "run") -> subprocess.CompletedProcess:
    """The command's output goes through files, not pipes: a job that outlives a --no-wait command keeps the
    command's output streams open, and a pipe would make the wait last until the job ends."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    if not env:
        environ.pop("CUTMIX_BENCH_KILL_AT", None)
    argv = [sys.executable, "-m", "cutmix_bench", command, str(SMOKE), *SHRINK, "--set", f"output_dir={out}", *args]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        returncode = subprocess.run(argv, env=environ, stdout=stdout, stderr=stderr, timeout=BACKSTOP).returncode
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(argv, returncode, stdout.read(), stderr.read())


def comparable(out: Path, runs: set[str] | None = None) -> pd.DataFrame:
    frame = pd.read_csv(out / "results.csv")
    frame = frame[~frame["metric"].isin(TIMING) & (frame["run"].isin(runs) if runs else True)]
    return frame.sort_values(["run", "evaluation", "metric"]).reset_index(drop=True)


def status(out: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    capsys.readouterr()
    assert main(["status", str(SMOKE), *SHRINK, "--set", f"output_dir={out}", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def sequential_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sequential") / "out"
    result = run_cli(out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def sequential(sequential_out: Path) -> pd.DataFrame:
    frame = comparable(sequential_out)
    assert frame["run"].nunique() == 4
    return frame


@pytest.mark.slow
def test_local_executor_with_two_workers_gives_the_sequential_results(sequential_out, sequential,
                                                                      tmp_path: Path) -> None:
    """One run is finished already (copied from the sequential output): the two workers share out the other three,
    and the finished one is said to be skipped once, not once per worker."""
    finished = sorted(sequential["run"].unique())[0]
    shutil.copytree(sequential_out / "runs" / finished, tmp_path / "out" / "runs" / finished)
    result = run_cli(tmp_path / "out", "--executor", "local", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "--jobs 2: capped" not in result.stderr  # three runs to do: both workers ran
    assert result.stderr.count(f"{finished}: finished earlier, skipped") == 1
    pd.testing.assert_frame_equal(comparable(tmp_path / "out"), sequential, check_exact=True)


@pytest.mark.slow
def test_slurm_executor_through_submitit_gives_the_sequential_results(sequential, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    result = run_cli(out, *SLURM)
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(comparable(out), sequential, check_exact=True)
    jobs = set()
    for run in sequential["run"].unique():
        state = json.loads((out / "runs" / run / "state.json").read_text())
        assert state["state"] == "done" and state["attempt"] == 1 and state["cluster"] == "local"
        assert f"{run}: submitted as job {state['job_id']}" in result.stderr
        assert "Job completed successfully" in Path(state["stderr"]).read_text()  # submitit's own log of the job
        jobs.add(state["job_id"])
    assert len(jobs) == 4  # one job per run
    shown = status(out, capsys)
    assert shown.splitlines()[-1] == f"{out}: 4 run(s): 4 done, 0 to do"
    for run in sequential["run"].unique():
        line = next(line for line in shown.splitlines() if line.startswith(run + " "))
        assert line.split()[1:4] == ["done", read_state(RunDir(out / "runs" / run))["job_id"], "2/2"]


@pytest.mark.slow
def test_preempted_job_requeues_itself_and_resumes_to_the_same_results(sequential, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """Submitted with --no-wait, so the command is gone while its job runs. After epoch 0 is logged, before its
    checkpoint, the job gets submitit's preemption / time-out signal (USR2, sent by the job to itself): it
    checkpoints and requeues itself, the requeued job replays epoch 0 from last.ckpt, `status` follows it, and
    `report SUITE` gives the uninterrupted results."""
    out, once = tmp_path / "out", tmp_path / "fired"
    faults = {"CUTMIX_BENCH_KILL_AT": "epoch:baseline-s0:0", "CUTMIX_BENCH_KILL_SIGNAL": "USR2",
              "CUTMIX_BENCH_KILL_ONCE": str(once)}
    result = run_cli(out, *SLURM, *BASELINE_ONLY, "--no-wait", env=faults)
    assert result.returncode == 0, result.stderr
    assert "1 run(s) queued or running; follow with: cutmix-bench status" in result.stdout
    assert "queued as job" in (out / "report.md").read_text()  # listed as unfinished
    folder = RunDir(out / "runs" / "baseline-s0")
    shown = status(out, capsys, *BASELINE_ONLY).splitlines()  # the job still has two starts and 3 epochs ahead
    run, state, job = shown[1].split()[:3]
    assert run == "baseline-s0" and state in ("queued", "running", "requeued") and job == read_state(folder)["job_id"]
    deadline = time.time() + BACKSTOP
    while read_state(folder).get("state") not in ("done", "failed", "interrupted") and time.time() < deadline:
        time.sleep(0.5)
    state = read_state(folder)
    assert once.exists() and state["state"] == "done" and state["attempt"] == 2  # the signal fired; requeued once
    log = Path(state["stderr"]).read_text()
    assert "this job is preempted" in log and f"Requeued job {state['job_id']}" in log
    assert pd.read_csv(folder.log)["epoch"].tolist() == [0, 1]  # the replayed epoch is logged once
    assert status(out, capsys, *BASELINE_ONLY).splitlines()[-1] == f"{out}: 1 run(s): 1 done, 0 to do"
    reported = run_cli(out, *BASELINE_ONLY, command="report")
    assert reported.returncode == 0, reported.stderr
    pd.testing.assert_frame_equal(comparable(out), comparable_rows(sequential, {"baseline-s0"}), check_exact=True)


@pytest.mark.slow
def test_killed_job_is_reported_and_resubmitted_to_the_same_results(sequential, tmp_path: Path) -> None:
    """A job that dies without a word (a lost node, kill -9) mid-training: the waiting command reports the run
    unfinished (state `interrupted`, exit status 1), and the next command resubmits it; it resumes from last.ckpt."""
    out, once = tmp_path / "out", tmp_path / "fired"
    faults = {"CUTMIX_BENCH_KILL_AT": "epoch:baseline-s0:0", "CUTMIX_BENCH_KILL_ONCE": str(once)}
    result = run_cli(out, *SLURM, *BASELINE_ONLY, env=faults)
    folder = RunDir(out / "runs" / "baseline-s0")
    state = read_state(folder)
    assert once.exists() and result.returncode == 1
    assert state["state"] == "interrupted" and "ended without finishing the run" in result.stderr
    result = run_cli(out, *SLURM, *BASELINE_ONLY, env=faults)  # resubmitted: a new job; the fault is spent
    assert result.returncode == 0, result.stderr
    assert read_state(folder)["state"] == "done" and read_state(folder)["job_id"] != state["job_id"]
    assert pd.read_csv(folder.log)["epoch"].tolist() == [0, 1]
    pd.testing.assert_frame_equal(comparable(out), comparable_rows(sequential, {"baseline-s0"}), check_exact=True)


def comparable_rows(frame: pd.DataFrame, runs: set[str]) -> pd.DataFrame:
    return frame[frame["run"].isin(runs)].reset_index(drop=True)


def test_a_job_of_an_earlier_submission_leaves_its_run_alone(tmp_path: Path) -> None:
    """A run resubmitted while its old job was queued belongs to the new job: the old one does nothing (and is
    not requeued), whatever the file system's locking."""
    folder = RunDir.of(tmp_path, Run("baseline", 0))
    write_state(folder, fresh=True, state="queued", token="new-submission")

    def work(*args: object, **kwargs: object) -> dict[str, str]:
        raise AssertionError("the superseded job ran the run")

    old = RunJob(work, {"train": {}, "evaluations": {}}, tmp_path, Run("baseline", 0), token="old-submission")
    assert old() == {}
    assert old.checkpoint() is None
    assert read_state(folder)["state"] == "queued" and read_state(folder)["token"] == "new-submission"


def sbatch_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str | None, *overrides: str,
                 suite_file: Path = SMOKE, runs: int = 5) -> list[str]:
    """The sbatch file submitit would submit for the suite (a stand-in `srun` on PATH makes this machine look like a
    cluster), with its job array of `runs` runs."""
    import submitit

    from cutmix_bench.executors.slurm import SUBMITIT_DIR, parameters
    from cutmix_bench.suite_file import load_suite

    srun = tmp_path / "bin" / "srun"
    srun.parent.mkdir(exist_ok=True)
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{srun.parent}{os.pathsep}{os.environ['PATH']}")
    suite = load_suite(suite_file, [*([f"executor={executor}"] if executor else []), *overrides])
    cluster = submitit.AutoExecutor(folder=tmp_path / SUBMITIT_DIR, cluster="slurm")
    cluster.update_parameters(**parameters(suite, suite.executor))
    cluster._executor.parameters["map_count"] = runs  # as submitit's job array submission sets it
    return cluster._executor._make_submission_file_text("python -m x", "uid").splitlines()


def test_the_suite_resources_become_sbatch_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = sbatch_lines(tmp_path, monkeypatch, "{name: slurm, partition: gpu, timeout_min: 90, gpus_per_run: 2, "
                         "cpus_per_run: 8, mem_gb: 32, account: proj, qos: high, constraint: a100, exclude: node12, "
                         "mail_user: ada@lab.org, mail_type: END, array_parallelism: 3, additional_parameters: "
                         "{reservation: paper}, setup: ['module load cuda/12.4', 'source activate bench']}")
    for option in ("partition=gpu", "time=90", "gpus-per-node=2", "cpus-per-task=8", "mem=32GB", "account=proj",
                   "qos=high", "constraint=a100", "exclude=node12", "mail-user=ada@lab.org", "mail-type=END",
                   "reservation=paper", "nodes=1", "ntasks-per-node=1", "job-name=cutmix-bench-smoke",
                   "array=0-4%3", "signal=USR2@90"):  # one task: a multi-GPU run starts its own ranks; USR2: requeue
        assert f"#SBATCH --{option}" in lines
    setup = lines.index("# setup")  # the setup lines run in the job's shell before srun starts the run
    assert lines[setup + 1: setup + 3] == ["module load cuda/12.4", "source activate bench"]
    assert lines.index("source activate bench") < next(i for i, line in enumerate(lines) if line.startswith("srun"))


def test_the_lab_cluster_example_of_the_docs_is_one_task_per_device(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/scaleout.md's worked example (8 devices over 2 nodes, 9 runs): 4 tasks (ranks) on each node, each with
    its GPU and its share of the CPUs, and every sbatch option and setup line the docs name."""
    docs = (REPO / "docs" / "scaleout.md").read_text()
    example = tmp_path / "cluster.yaml"
    example.write_text(docs.split("# suites/cifar100-cluster.yaml\n", 1)[1].split("```", 1)[0])
    lines = sbatch_lines(tmp_path, monkeypatch, None, suite_file=example, runs=9)
    for option in ("nodes=2", "ntasks-per-node=4", "gpus-per-node=4", "cpus-per-task=4", "partition=gpu",
                   "account=ada-lab", "constraint=a100", "array=0-8%3", "signal=USR2@90", "mem=64GB", "qos=normal",
                   "mail-type=END,FAIL", "time=720"):
        assert f"#SBATCH --{option}" in lines
        assert f"`--{option}`" in docs or option in ("mem=64GB", "qos=normal", "mail-type=END,FAIL", "time=720")
    setup = lines.index("# setup")
    assert lines[setup + 1: setup + 4] == ["module load cuda/12.4", "source ~/miniconda3/etc/profile.d/conda.sh",
                                           "conda activate bench"]


@pytest.mark.parametrize(("executor", "devices", "expected"), [
    ("{name: slurm, nodes: 2, cluster: local}", 2,
     "executor: nodes 2: submitit's local cluster runs one node; expected nodes: 1 with cluster: local"),
    ("{name: local, nodes: 2}", 2, "executor: nodes 2: the local executor runs on this machine only"),
    ("{name: slurm, nodes: 2, gpus_per_run: 0}", 3,
     "executor: nodes 2 does not divide train.devices 3; expected train.devices = nodes x devices per node"),
    ("{name: slurm, nodes: 2, gpus_per_run: 3}", 4, "executor: gpus_per_run 3 is not divisible by nodes 2; expected "
                                                     "gpus_per_run = nodes x GPUs per node"),
])
def test_a_run_over_nodes_that_cannot_fit_is_one_clear_error(executor: str, devices: int, expected: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    assert main(["status", str(SMOKE), "--set", f"executor={executor}", "--set", f"train.devices={devices}",
                 "--set", f"train.batch_size={devices * 16}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cutmix-bench: error: {SMOKE}: {expected}") and len(err.splitlines()) == 1, err


def test_the_local_cluster_leaves_no_folder_named_after_the_job_id_pattern(tmp_path: Path) -> None:
    """submitit's local controller made the folder pattern `%j` a folder of its own; the jobs' files now lie in
    <output_dir>/submitit/ under their job ids."""
    from helpers import tiny_suite

    suite = tiny_suite(tmp_path, methods={"baseline": {}},
                       data={"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 32}},
                       train={"epochs": 1, "batch_size": 32, "threads": 1},
                       executor={"name": "slurm", "cluster": "local", "gpus_per_run": 0})
    out = tmp_path / "out"
    assert main(["run", str(suite)]) == 0
    state = read_state(RunDir(out / "runs" / "baseline-s0"))
    files = sorted(path.name for path in (out / "submitit").iterdir())
    assert files == sorted(f"{state['job_id']}_{name}" for name in ("0_log.err", "0_log.out", "0_result.pkl",
                                                                     "submitted.pkl"))
    assert Path(state["stderr"]).parent == out / "submitit" and not list(out.rglob("*%j*"))


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has SLURM")
def test_slurm_off_a_cluster_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", str(SMOKE), "--executor", "slurm", "--set", f"output_dir={tmp_path}"]) == 2
    assert capsys.readouterr().err.startswith("cutmix-bench: error: executor.cluster: slurm: Could not detect")


def test_a_run_held_by_a_live_job_is_left_to_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The local executor skips a run that a scheduler job still holds (jobs take no lock), reports it unfinished,
    and `status` shows it running under that job; once the job is gone, the run is to do again."""
    import socket

    from helpers import tiny_suite

    caplog.set_level(logging.INFO, logger="cutmix_bench")
    suite, out = tiny_suite(tmp_path), tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        held = RunDir.of(out, Run("baseline", 0))
        write_state(held, fresh=True, state="running", cluster="local", job_id=str(job.pid),
                    submit_host=socket.gethostname(), token="t")
        assert main(["run", str(suite)]) == 1
        assert "baseline-s0: held by a scheduler job (state.json), skipped" in caplog.text
        assert not held.is_done() and RunDir.of(out, Run("cutmix", 0)).is_done()
        capsys.readouterr()
        assert main(["status", str(suite)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].split()[:3] == ["baseline-s0", "running", str(job.pid)]
        assert lines[-1] == f"{out}: 2 run(s): 1 done, 1 running, 0 to do"
    finally:
        job.kill()
        job.wait()
    assert main(["status", str(suite)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["baseline-s0", "to"]
