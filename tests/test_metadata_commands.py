"""`--version`, `list` and `status` answer without torch: metadata should not cost the ~4 s of CPU that
importing torch and Lightning does (measured side by side: benchmarks/ or the note of issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutmix_bench import __version__
from cutmix_bench.cli import main
from cutmix_bench.listing import cache_file, listing

from helpers import REPO, tiny_suite

HEAVY = ("torch", "pytorch_lightning", "pandas", "matplotlib")


def heavy_imports(args: list[str], tmp_path: Path) -> tuple[str, list[str]]:
    """Run the CLI in a fresh process; return its stdout and which heavy modules it imported."""
    code = ("import sys; from cutmix_bench.cli import main; code = main(sys.argv[1:]); "
            f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    out, _, heavy = done.stdout.rpartition("HEAVY ")
    return out, eval(heavy)  # noqa: S307 (our own printed list)


def test_version_prints_the_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"cutmix-bench {__version__}"


def test_status_reads_run_folders_without_torch(tmp_path: Path) -> None:
    out, heavy = heavy_imports(["status", str(tiny_suite(tmp_path))], tmp_path)
    assert "2 run(s): 0 done, 2 to do" in out and heavy == []


def test_a_repeated_list_reads_the_cache_and_says_the_same(tmp_path: Path, monkeypatch) -> None:
    first, heavy_first = heavy_imports(["list"], tmp_path)
    second, heavy_second = heavy_imports(["list"], tmp_path)
    # the first process built the listing from the registries (it imported torch), the second read the cache;
    # built here instead, the listing would include what other tests registered in this process
    assert first == second and first.startswith("methods:\n")
    assert "torch" in heavy_first and heavy_second == []


def test_the_cache_key_follows_the_package_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = cache_file()
    source = Path(__file__).resolve().parents[1] / "cutmix_bench" / "listing.py"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    try:
        assert cache_file() != before  # an edited component file is a new key: the listing is rebuilt
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache_file() == before


def test_a_plugin_listing_is_built_not_cached(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plugin = tmp_path / "my_models.py"
    plugin.write_text('"""A plug-in model module written by the listing test, with one model in it."""\n'
                      'from cutmix_bench.models import MODELS\n\n'
                      '@MODELS.register("listed_plugin_model")\ndef build(num_classes):\n'
                      '    """A one-layer model for the listing test, long enough to describe."""\n    return None\n')
    assert "listed_plugin_model" in listing([str(plugin)])
    assert not cache_file().exists()  # nothing cached from a plug-in run
