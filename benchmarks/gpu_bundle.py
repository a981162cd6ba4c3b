"""The GPU bundle: what the GPU machine's image lacks, downloaded here and installed there without a network.

The GPU machine lent to this project (docs/performance.md, "GPU check") reaches no network. Its Python 3.12 has
torch and most of the project's dependencies (IMAGE below: its package list), but not all of them. Two commands:

    python benchmarks/gpu_bundle.py make       # here, with PyPI (nox -s gpu_bundle); writes gpu-check-data/
    python benchmarks/gpu_bundle.py upgrades gpu-check-data SITE   # there, called by benchmarks/gpu_check.sh

`make` fills the git-ignored folder that travels with the tree (`carry`):

    wheels/      the wheels of the project's dependencies that the image lacks, with those of their own
                 dependencies that it lacks too: cp312, manylinux x86_64, one version each
    fallback/    pure-Python wheels of image packages that a carried wheel needs at a version floor that the
                 image's (unknown) version may not meet; installed there only when it does not
    cifar100/ cifar10/ tinyimagenet32/ subset.json   the real-data subset (make_subset.py)
    bundle.json  what was downloaded, the floors on image packages, the sizes

`upgrades` runs after gpu_check.sh installed wheels/ into SITE (`pip install --no-index --no-deps --target`, a
folder on PYTHONPATH, so the machine's torch is never replaced). It checks each requirement of the wheels in SITE
against this Python and prints the fallback wheels that must be installed too; a requirement that is neither met
nor in fallback/ is one `gpu_bundle: error:` line and exit 2. That side uses the standard library and
`packaging` only (on the image, and vendored by pip).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "gpu-check-data"  # as make_subset.DEFAULT_OUT: the data and the wheels travel as one folder
TREE_LIMIT_MIB = 64  # the device tool's cap on the tree that travels, carried folders included
PYTHON_VERSION = "3.12"
PLATFORMS = ["manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(17, 29))]  # torch 2.11 needs 2.28
# The GPU image's Python packages (/work/.library/device/KINDS.md, "Python packages already there", read on a
# machine on 2026-11-17); its python3 is Python 3.12.3.
IMAGE = frozenset(canonicalize_name(name) for name in """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp""".split())
# Versions on the image where a session read them (KINDS.md's pip list): the resolution here must agree with them.
IMAGE_VERSIONS = {"torch": "2.11.0", "torchvision": "0.26.0", "pytorch-lightning": "2.6.6", "numpy": "2.5.2"}
# A requirement on the key is met by any of the values: the same import (cv2) from another build. imagecorruptions
# names opencv-python; the image has opencv-python-headless.
PROVIDED_BY = {"opencv-python": ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                                 "opencv-contrib-python-headless")}


class BundleError(Exception):
    """One line for the user: what is wrong and what was expected."""


def on_image(name: str) -> bool:
    """Whether the image has the distribution `name` or one that provides the same import."""
    name = canonicalize_name(name)
    return any(canonicalize_name(n) in IMAGE for n in PROVIDED_BY.get(name, (name,)))


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """pyproject's dependencies as parsed requirements. (No optional extra: the GPU check needs none, and timm of
    `bench` is on the image anyway.)"""
    import tomllib  # Python >= 3.11; only `make` (here) reads pyproject

    return [Requirement(text) for text in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]


def lacking(requirements: list[Requirement]) -> list[Requirement]:
    """The requirements whose distribution the image does not have: the roots of the bundle."""
    return [req for req in requirements if not on_image(req.name)]


def target_environment() -> dict[str, str]:
    """PEP 508 marker values of the GPU machine's Python (CPython 3.12 on Linux x86_64)."""
    return {"python_version": PYTHON_VERSION, "python_full_version": f"{PYTHON_VERSION}.3", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def split(report: dict) -> tuple[dict[str, str], list[dict]]:
    """From pip's installation report of the roots' whole closure: ({name: version} to carry: every distribution
    the image lacks, [{carrier, requirement, resolved}: the floors that carried wheels put on image packages])."""
    carried, versions, floors = {}, {}, []
    for item in report["install"]:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        if name in versions and versions[name] != meta["version"]:
            raise BundleError(f"the resolution holds {name} twice ({versions[name]}, {meta['version']})")
        versions[name] = meta["version"]
        if not on_image(name):
            carried[name] = meta["version"]
    for item in report["install"]:
        meta = item["metadata"]
        if canonicalize_name(meta["name"]) not in carried:
            continue
        for text in meta.get("requires_dist") or []:
            req = Requirement(text)
            if (req.marker and not req.marker.evaluate(target_environment())) or not on_image(req.name):
                continue
            if req.specifier:
                floors.append({"carrier": meta["name"], "requirement": str(req),
                               "resolved": versions.get(canonicalize_name(req.name))})
    return carried, floors


def pip_target_options() -> list[str]:
    """pip options that select wheels for the GPU machine's Python, whatever Python runs pip here."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", *platforms]


def resolve(roots: list[Requirement], work: Path) -> dict:
    """pip's resolution of the roots for the GPU machine's Python, the image's known versions as constraints
    (a dry run: only metadata is fetched)."""
    constraints = work / "image-versions.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in IMAGE_VERSIONS.items()))
    report = work / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--report",
               str(report), "--target", str(work / "target"), *pip_target_options(), "-c", str(constraints),
               *map(str, roots)]
    if subprocess.run(command, check=False).returncode != 0:
        raise BundleError(f"pip could not resolve {' '.join(map(str, roots))} for CPython {PYTHON_VERSION}")
    return json.loads(report.read_text())


def download(pins: dict[str, str], folder: Path) -> list[Path]:
    """`pip download --no-deps` of exactly these versions into an emptied `folder`; one wheel per name."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if not pins:
        return []
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *pip_target_options(), "-d",
               str(folder), *(f"{name}=={version}" for name, version in sorted(pins.items()))]
    if subprocess.run(command, check=False).returncode != 0:
        raise BundleError(f"pip could not download {sorted(pins)} into {folder}")
    wheels = sorted(folder.glob("*.whl"))
    names = sorted(str(canonicalize_name(parse_wheel_filename(w.name)[0])) for w in wheels)
    if names != sorted(pins):
        raise BundleError(f"{folder}: expected one wheel of each of {sorted(pins)}, found {[w.name for w in wheels]}")
    return wheels


def pure_fallbacks(floors: list[dict], report: dict) -> dict[str, str]:
    """{name: version} of the image packages under a floor whose version there is not known and whose resolved
    wheel is pure Python (one of any Python runs there): the fallback/ folder. (A requirement met by another
    build, opencv-python by the image's headless one, gets none.)"""
    pure = {canonicalize_name(item["metadata"]["name"]) for item in report["install"]
            if item["download_info"]["url"].endswith("-none-any.whl")}
    picked = {}
    for floor in floors:
        name = canonicalize_name(Requirement(floor["requirement"]).name)
        if name in pure and name in IMAGE and name not in IMAGE_VERSIONS and floor["resolved"]:
            picked[name] = floor["resolved"]
    return picked


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def tree_mib(root: Path = ROOT) -> float:
    """What travels without `carry`: tracked files and untracked files git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((root / name).stat().st_size for name in listed if name and (root / name).is_file()) / 2**20


def run_call(folder: str) -> str:
    """The device tool call that runs the GPU check there (docs/performance.md, "The call")."""
    command = ("G=/tmp/gpu-check; PYTHONUNBUFFERED=1 PYTHON=python3 OUT=$G bash benchmarks/gpu_check.sh --mode gpu; "
               "rc=$?; tar czf $OUT/gpu-check.tgz --exclude='*.ckpt' --exclude='*.npz' --exclude='*.npy' -C $G .; "
               "cp $G/summary.md $G/gpu_check.log $OUT/; exit $rc")
    return f"run(command={json.dumps(command)}, carry=[{json.dumps(folder)}], timeout_s=500)"


def make(out: Path, source: Path, train_per_class: int, test_per_class: int) -> dict:
    """Download the wheels, cut the subset, write bundle.json; refuse a bundle that would not travel."""
    import make_subset  # numpy; only here

    roots = lacking(project_requirements())
    with tempfile.TemporaryDirectory() as work:
        report = resolve(roots, Path(work))
    carried, floors = split(report)
    fallback = pure_fallbacks(floors, report)
    wheels = download(carried, out / "wheels")
    extra = download(fallback, out / "fallback")
    subset = make_subset.make_subset(source, out, train_per_class, test_per_class, seed=0)
    bundle, tree = folder_mib(out), tree_mib()
    info = {"python": PYTHON_VERSION, "platforms": PLATFORMS, "roots": [str(r) for r in roots],
            "wheels": [w.name for w in wheels], "fallback": [w.name for w in extra], "floors": floors,
            "subset": subset["files"], "bundle_mib": round(bundle, 1), "tree_mib": round(tree, 1)}
    (out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    if bundle + tree > TREE_LIMIT_MIB:
        raise BundleError(f"{out} ({bundle:.1f} MiB) and the tree ({tree:.1f} MiB) exceed the {TREE_LIMIT_MIB} MiB "
                          "that travel; cut a smaller subset (--train-per-class, --test-per-class)")
    return info


def installed_version(name: str) -> str | None:
    """The version of `name` (or of a build that provides its import) importable in this Python, else None."""
    for candidate in PROVIDED_BY.get(canonicalize_name(name), (name,)):
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def upgrades(site: Path, fallback: Path) -> list[Path]:
    """The fallback wheels that the requirements of the distributions installed in `site` need, because this
    Python's version of that package is missing or too old. Raises BundleError for one that no wheel meets."""
    wheels = {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in sorted(fallback.glob("*.whl"))}
    needed = []
    for dist in importlib.metadata.distributions(path=[str(site)]):
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            have = installed_version(req.name)
            if have is not None and req.specifier.contains(have, prereleases=True):
                continue
            wheel = wheels.get(canonicalize_name(req.name))
            if wheel is None or not req.specifier.contains(str(parse_wheel_filename(wheel.name)[1]), prereleases=True):
                raise BundleError(f"{dist.metadata['Name']} needs {req}; this Python has "
                                  f"{have or 'none'} and {fallback} holds no wheel that meets it")
            if wheel not in needed:
                needed.append(wheel)
    return needed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make_cmd = commands.add_parser("make", help="here: download the wheels and cut the subset into --out")
    make_cmd.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle folder (default %(default)s)")
    make_cmd.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data",
                          help="the shared data folder (default %(default)s)")
    make_cmd.add_argument("--train-per-class", type=int, default=80)
    make_cmd.add_argument("--test-per-class", type=int, default=30)
    check = commands.add_parser("upgrades", help="there: print the fallback wheels the installed wheels need")
    check.add_argument("bundle", type=Path)
    check.add_argument("site", type=Path, help="the --target folder that wheels/ was installed into")
    opts = parser.parse_args(argv)
    try:
        if opts.command == "upgrades":
            print("\n".join(map(str, upgrades(opts.site, opts.bundle / "fallback"))))
            return 0
        info = make(opts.out, opts.source, opts.train_per_class, opts.test_per_class)
    except BundleError as error:
        print(f"gpu_bundle: error: {error}", file=sys.stderr)
        return 2
    print(f"gpu_bundle: {opts.out}: wheels {', '.join(info['wheels'])}; fallback {', '.join(info['fallback']) or '-'}")
    print(f"gpu_bundle: {info['bundle_mib']} MiB bundle + {info['tree_mib']} MiB tree of {TREE_LIMIT_MIB} MiB")
    out = opts.out.resolve()
    carried = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out  # carry takes paths in the repository
    print(f"gpu_bundle: the call there (device tool):\n{run_call(str(carried))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
