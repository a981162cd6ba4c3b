"""`train.precision: bf16` on a CPU: used where the CPU has native bf16 instructions, refused with one clear
line elsewhere (autocast would emulate bf16, slower than fp32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cutmix_bench import cli
from cutmix_bench.errors import BenchError
from cutmix_bench.rundir import Run
from cutmix_bench.runner import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import fit, train_run

from helpers import tiny_suite

CPU = torch.device("cpu")
FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n"


def fake_cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(FLAGS.format(extra=extra))
    monkeypatch.setattr(fit, "CPUINFO", path)


@pytest.mark.parametrize("extra", ["avx512_bf16", "amx_tile amx_bf16"])
def test_cpu_bf16_is_autocast_where_the_cpu_has_native_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            extra: str) -> None:
    fake_cpuinfo(tmp_path, monkeypatch, extra)
    assert fit.precision("bf16", CPU) == "bf16-mixed"
    assert fit.precision("auto", CPU) == "32-true" and fit.precision("32", CPU) == "32-true"


def test_cpu_bf16_without_native_support_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    fake_cpuinfo(tmp_path, monkeypatch, "avx512bw amx_tile")
    with pytest.raises(BenchError, match=r"train.precision: 'bf16' on a CPU needs .*avx512_bf16 or amx_bf16"):
        fit.precision("bf16", CPU)
    monkeypatch.setattr(fit, "CPUINFO", tmp_path / "absent")  # not Linux: nothing to tell, so refused
    with pytest.raises(BenchError, match="train.precision"):
        fit.precision("bf16", CPU)
    suite = tiny_suite(tmp_path, device="cpu")
    assert cli.main(["run", str(suite), "--set", "train.precision=bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cutmix-bench: error: train.precision: 'bf16' on a CPU needs")
    assert not (tmp_path / "out" / "runs").exists()  # refused before any run started


@pytest.mark.skipif(not fit.cpu_flags() & set(fit.CPU_BF16_FLAGS), reason="this CPU has no native bf16")
def test_cpu_bf16_training_runs_in_bf16(tmp_path: Path) -> None:
    """Same seed and data: the bf16 run trains (finite loss) and ends at other weights than the fp32 run, which
    it could not if autocast were silently off (CPU training is bitwise deterministic)."""
    weights = {}
    for choice in ("32", "bf16"):
        suite = validate({
            "name": "bf16", "device": "cpu", "seeds": [0], "methods": {"cutmix": {"alpha": 1.0}},
            "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 16, "size": 16}},
            "model": {"name": "tiny", "params": {"width": 4}},
            "train": {"epochs": 1, "batch_size": 32, "precision": choice, "eval_every": 0},
        })
        rows = train_run(suite, Run("cutmix", 0), load_data(suite), CPU, tmp_path / choice)
        assert torch.isfinite(torch.tensor(rows[2]["value"]))  # final_train_loss
        weights[choice] = torch.load(tmp_path / choice / "last.ckpt", weights_only=True)["state_dict"]
    assert weights["32"].keys() == weights["bf16"].keys()
    assert any(not torch.equal(weights["32"][k], weights["bf16"][k]) for k in weights["32"])
    assert all(v.dtype == torch.float32 for v in weights["bf16"].values() if v.is_floating_point())  # master weights
