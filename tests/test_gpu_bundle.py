"""benchmarks/gpu_bundle.py: the bundle covers every module the GPU check imports that the GPU image lacks, keeps
what the image has out of it, and installs a fallback wheel only where the image's version is too old. (Its
end-to-end proof is `nox -s gpu_rehearsal`, which needs PyPI and minutes: not in CI.)"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_bundle  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

# What gpu_check.sh runs: the package and these scripts (gpu_check.py's steps and what they import).
SCRIPTS = ["gpu_check.py", "bench_train_step.py", "make_subset.py", "timing.py", "gpu_bundle.py"]


def module_level_imports(path: Path) -> set[str]:
    """Top-level names imported by the statements of a module's body (function-level imports are the optional
    features: slurm, tensorboard)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports() -> set[str]:
    paths = [*(REPO / "cutmix_bench").rglob("*.py"), *(REPO / "benchmarks" / name for name in SCRIPTS)]
    local = {"cutmix_bench", *(Path(name).stem for name in SCRIPTS)}
    return {name for path in paths for name in module_level_imports(path)} - set(sys.stdlib_module_names) - local


def test_every_module_the_gpu_check_imports_is_on_the_image_or_a_root_of_the_bundle() -> None:
    roots = {canonicalize_name(req.name) for req in gpu_bundle.lacking(gpu_bundle.project_requirements())}
    # The image's package list (KINDS.md): of the project's dependencies it lacks exactly these two.
    assert roots == {"imagecorruptions", "pydantic"}
    distributions = importlib.metadata.packages_distributions()
    for name in sorted(third_party_imports()):
        assert name in distributions, f"cannot tell which distribution provides `import {name}`"
        assert any(gpu_bundle.on_image(d) or canonicalize_name(d) in roots for d in distributions[name]), \
            f"`import {name}` ({distributions[name]}): neither on the GPU image nor a dependency in pyproject.toml"
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    checked = set(re.search(r'^IMPORTS="([^"]+)"', script, re.M).group(1).split())
    # torch is checked apart; packaging (gpu_bundle.py's) comes with pytorch-lightning, which requires it.
    unchecked = third_party_imports() - {"torch", "torchvision", "packaging"} - checked
    assert not unchecked, f"gpu_check.sh would not notice {unchecked} missing"
    assert {"imagecorruptions", "pydantic"} <= checked  # imported lazily (importlib), so not in the scan above


def test_opencv_headless_on_the_image_meets_the_opencv_requirement() -> None:
    assert gpu_bundle.on_image("opencv-python") and gpu_bundle.on_image("OpenCV_Python_Headless")
    assert not gpu_bundle.on_image("pydantic-core") and gpu_bundle.on_image("PyYAML")


def report_item(name: str, version: str, requires: list[str], url_tail: str = "py3-none-any.whl") -> dict:
    return {"metadata": {"name": name, "version": version, "requires_dist": requires},
            "download_info": {"url": f"https://files.example/{name}-{version}-{url_tail}"}}


def test_split_carries_what_the_image_lacks_and_records_its_floors_on_the_image() -> None:
    report = {"install": [
        report_item("imagecorruptions", "1.1.2", ["numpy (>=1.16)", "opencv-python (>=3.4.5)"]),
        report_item("pydantic", "2.14.4", ["pydantic-core==2.50.5", "typing-extensions>=4.16.0",
                                           'email-validator>=2.0.0; extra == "email"']),
        report_item("pydantic-core", "2.50.5", ["typing-extensions>=4.16.0"], "cp312-cp312-manylinux_2_17_x86_64.whl"),
        report_item("numpy", "2.5.2", [], "cp312-cp312-manylinux_2_28_x86_64.whl"),
        report_item("opencv-python", "5.1.0.95", ["numpy>=2"], "cp37-abi3-manylinux2014_x86_64.whl"),
        report_item("typing_extensions", "4.16.0", []),
    ]}
    carried, floors = gpu_bundle.split(report)
    assert carried == {"imagecorruptions": "1.1.2", "pydantic": "2.14.4", "pydantic-core": "2.50.5"}
    assert [(f["carrier"], f["requirement"], f["resolved"]) for f in floors] == [
        ("imagecorruptions", "numpy>=1.16", "2.5.2"), ("imagecorruptions", "opencv-python>=3.4.5", "5.1.0.95"),
        ("pydantic", "typing-extensions>=4.16.0", "4.16.0"), ("pydantic-core", "typing-extensions>=4.16.0", "4.16.0")]
    # numpy's version on the image is known, opencv and numpy are no pure-Python wheels: only typing-extensions.
    assert gpu_bundle.pure_fallbacks(floors, report) == {"typing-extensions": "4.16.0"}
    report["install"].append(report_item("pydantic", "2.13.0", []))
    with pytest.raises(gpu_bundle.BundleError, match="holds pydantic twice"):
        gpu_bundle.split(report)


def fake_site(site: Path, name: str, version: str, requires: list[str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text("".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                                  *(f"Requires-Dist: {r}\n" for r in requires)]))


def test_upgrades_installs_a_fallback_only_where_this_python_is_too_old(tmp_path: Path, monkeypatch) -> None:
    site, fallback = tmp_path / "site", tmp_path / "fallback"
    fake_site(site, "pydantic", "2.14.4", ["typing-extensions>=4.16.0", 'email-validator>=2; extra == "email"'])
    fake_site(site, "imagecorruptions", "1.1.2", ["opencv-python (>=3.4.5)"])
    fallback.mkdir()
    wheel = fallback / "typing_extensions-4.16.0-py3-none-any.whl"
    wheel.touch()
    versions = {"opencv-python-headless": "4.12.0.88", "typing-extensions": "4.15.0"}

    def version(name: str) -> str:
        if name not in versions:
            raise importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(gpu_bundle.importlib.metadata, "version", version)
    assert gpu_bundle.upgrades(site, fallback) == [wheel]  # headless meets opencv-python; the extra is not needed
    versions["typing-extensions"] = "4.16.0"
    assert gpu_bundle.upgrades(site, fallback) == []
    del versions["opencv-python-headless"]
    with pytest.raises(gpu_bundle.BundleError, match=r"imagecorruptions needs opencv-python>=3.4.5; this Python has "
                                                     r"none and .*fallback holds no wheel"):
        gpu_bundle.upgrades(site, fallback)
    versions["opencv-python-headless"], versions["typing-extensions"] = "4.12.0.88", "4.10.0"
    wheel.rename(fallback / "typing_extensions-4.15.0-py3-none-any.whl")  # too old to help
    with pytest.raises(gpu_bundle.BundleError, match=r"typing-extensions>=4.16.0; this Python has 4.10.0"):
        gpu_bundle.upgrades(site, fallback)


def test_without_opencv_the_corruptions_say_which_package_to_install() -> None:
    code = "import sys; sys.modules['cv2'] = None; import cutmix_bench.corruptions"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("ImportError: cutmix_bench needs OpenCV (the cv2 module): pip "
                                                    "install opencv-python-headless (servers) or opencv-python")
