"""Weights of a network trained elsewhere, read from the checkpoint formats researchers have, onto this package's
models through explicit key maps, with the normalisation and input size each format implies.

Formats (each named in the README with its source):

- `cutmix-official`: clovaai/CutMix-PyTorch `train.py` saves `{'epoch', 'arch', 'state_dict', 'best_err1',
  'best_err5', 'optimizer'}` of a `DataParallel` model (keys start with `module.`); its CIFAR `pyramidnet.py`
  (conv1 / bn1 / layer1-3 of blocks bn1, conv1, bn2, conv2, bn3[, conv3, bn4] / bn_final / fc) maps onto
  `pyramidnet`, its CIFAR `resnet.py` basic-block ResNet (`--no-bottleneck`) onto `resnet<depth>`, its ImageNet
  `resnet.py` (torchvision's names) onto `torchvision:resnet<depth>`. Normalisation: its CIFAR mean / std
  (125.3, 123.0, 113.9) / 255, (63.0, 62.1, 66.7) / 255 on 32x32 inputs; ImageNet's on 224x224 for 1,000 classes.
- `openood`: OpenOOD v1.5 `ResNet18_32x32` (openood/networks/resnet18_32x32.py), a plain `state_dict` (with
  `module.` when saved from a multi-GPU run), onto `resnet18`. Normalisation: OpenOOD's
  `preprocessors/transform.py` CIFAR-10 / CIFAR-100 statistics (chosen by the class count); 32x32 inputs.
- `state-dict`: a plain `state_dict` with this package's (or timm's, or torchvision's) own key names: timm
  (`timm:` models) and torchvision save these. Normalisation and input size: timm's `pretrained_cfg`, else stated.
- `lightning`: a PyTorch Lightning checkpoint (`{'state_dict': ...}`, keys under the LightningModule attribute
  that holds the network, `model.` by default, as this tool's own last.ckpt).

A key of the checkpoint that maps nowhere, or a parameter of the model that the checkpoint does not give, is an
error naming it: never a silently random layer. (BatchNorm's `num_batches_tracked` counter alone may be absent,
as in checkpoints older than PyTorch 0.4.1: evaluation does not read it.) Nothing is unpickled:
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import BenchError

Normalisation = tuple[list[float], list[float]]

CUTMIX_CIFAR: Normalisation = ([x / 255.0 for x in (125.3, 123.0, 113.9)], [x / 255.0 for x in (63.0, 62.1, 66.7)])
OPENOOD = {10: ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
           100: ([0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761])}
NORMALISATIONS: dict[str, Normalisation] = {
    "cutmix-cifar": CUTMIX_CIFAR, "openood-cifar10": OPENOOD[10], "openood-cifar100": OPENOOD[100],
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}

KeyMap = Callable[[str], str | None]


@dataclass(frozen=True)
class Format:
    name: str
    source: str
    container: str | None  # the entry of the saved dict that holds the state dict (None: the file is the state dict)
    input_size: int | None  # the image side the format's networks take (None: the model's, or stated)

    def normalisation(self, num_classes: int) -> Normalisation | None:
        if self.name == "cutmix-official":  # its ImageNet models (1,000 classes) use the ImageNet statistics
            return NORMALISATIONS["imagenet"] if num_classes == 1000 else CUTMIX_CIFAR
        if self.name == "openood":
            return OPENOOD.get(num_classes)
        return None

    def image_side(self, num_classes: int) -> int | None:
        if self.name == "cutmix-official" and num_classes == 1000:
            return 224
        return self.input_size


FORMATS = {f.name: f for f in (
    Format("cutmix-official", "clovaai/CutMix-PyTorch train.py (pyramidnet.py, resnet.py)", "state_dict", 32),
    Format("openood", "Jingkang50/OpenOOD v1.5 openood/networks/resnet18_32x32.py", None, 32),
    Format("state-dict", "model.state_dict() of this package's, timm's or torchvision's model", None, None),
    Format("lightning", "PyTorch Lightning checkpoint (this tool's last.ckpt too)", "state_dict", None),
)}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise BenchError(f"--format: unknown checkpoint format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


def read_state(path: Path, fmt: Format) -> dict[str, torch.Tensor]:
    """The state dict inside the file, loaded without unpickling code."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BenchError(f"{path}: checkpoint file not found") from None
    except Exception as exc:  # pickle, zip and weights_only refusals all mean: not a plain tensor checkpoint
        raise BenchError(f"{path}: not a checkpoint loadable with torch.load(weights_only=True) "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if fmt.container is not None:
        if not isinstance(saved, dict) or fmt.container not in saved:
            keys = ", ".join(map(str, list(saved)[:5])) if isinstance(saved, dict) else type(saved).__name__
            raise BenchError(f"{path}: a {fmt.name} checkpoint holds its weights under {fmt.container!r}; this "
                             f"file has {keys}")
        saved = saved[fmt.container]
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise BenchError(f"{path}: expected a state dict of tensors ({fmt.name} format)")
    return dict(saved)


def key_map(fmt: Format, model_name: str, model: nn.Module, prefix: str) -> KeyMap:
    """A function from the checkpoint's key to the model's (None: the key maps nowhere)."""
    if fmt.name == "cutmix-official":
        if model_name == "pyramidnet":
            return _pyramidnet_map(len(model.blocks) // 3, _bottleneck(model))
        if re.fullmatch(r"resnet\d+", model_name) and model_name != "resnet18":
            return _cifar_resnet_map(len(model.layers) // 3)
        if re.fullmatch(r"torchvision:resnet\d+", model_name):  # its ImageNet resnet.py is torchvision's, key for key
            return lambda key: key
        raise BenchError(f"--model: the cutmix-official format maps onto pyramidnet, a CIFAR resnet<depth> "
                         f"(resnet20, resnet110, ...) or an ImageNet torchvision:resnet<depth>, not {model_name}")
    if fmt.name == "openood":
        if model_name != "resnet18":
            raise BenchError(f"--model: the openood format (ResNet18_32x32) maps onto resnet18, not {model_name}")
        return _openood_resnet18_map
    if fmt.name == "lightning":
        return lambda key: key.removeprefix(prefix) if key.startswith(prefix) else None
    return lambda key: key


def _strip_data_parallel(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`module.` on every key (nn.DataParallel / DDP), or on none."""
    wrapped = [k.startswith("module.") for k in state]
    if any(wrapped) and not all(wrapped):
        first = next(k for k in state if not k.startswith("module."))
        raise BenchError(f"checkpoint: key {first!r} lacks the 'module.' prefix that other keys have; expected "
                         f"all keys of one model")
    return {k.removeprefix("module."): v for k, v in state.items()} if all(wrapped) and state else state


def _bottleneck(model: nn.Module) -> bool:
    return sum(isinstance(m, nn.Conv2d) for m in model.blocks[0].body) == 3


def _pyramidnet_map(per_stage: int, bottleneck: bool) -> KeyMap:
    # The official block's modules in forward order -> their index in our block's `body` Sequential
    names = ["bn1", "conv1", "bn2", None, "conv2", "bn3"] + ([None, "conv3", "bn4"] if bottleneck else [])
    body = {name: i for i, name in enumerate(names) if name}
    fixed = {"conv1": "stem.0", "bn1": "stem.1", "bn_final": "head.0", "fc": "head.4"}

    def convert(key: str) -> str | None:
        module, _, param = key.rpartition(".")
        if module in fixed:
            return f"{fixed[module]}.{param}"
        match = re.fullmatch(r"layer([1-3])\.(\d+)\.(\w+)", module)
        if match and match[3] in body and int(match[2]) < per_stage:
            return f"blocks.{(int(match[1]) - 1) * per_stage + int(match[2])}.body.{body[match[3]]}.{param}"
        return None

    return convert


def _cifar_resnet_map(per_stage: int) -> KeyMap:
    fixed = {"conv1": "stem.0", "bn1": "stem.1", "fc": "head.2"}
    inner = {"conv1": "conv1", "bn1": "bn1", "conv2": "conv2", "bn2": "bn2", "downsample.0": "shortcut.0",
             "downsample.1": "shortcut.1"}

    def convert(key: str) -> str | None:
        module, _, param = key.rpartition(".")
        if module in fixed:
            return f"{fixed[module]}.{param}"
        match = re.fullmatch(r"layer([1-3])\.(\d+)\.(.+)", module)
        if match and match[3] in inner and int(match[2]) < per_stage:
            return f"layers.{(int(match[1]) - 1) * per_stage + int(match[2])}.{inner[match[3]]}.{param}"
        return None

    return convert


def _openood_resnet18_map(key: str) -> str | None:
    module, _, param = key.rpartition(".")
    fixed = {"conv1": "stem.0", "bn1": "stem.1", "fc": "head.2"}
    if module in fixed:
        return f"{fixed[module]}.{param}"
    match = re.fullmatch(r"layer([1-4])\.([01])\.(conv1|bn1|conv2|bn2|shortcut\.0|shortcut\.1)", module)
    if match:
        return f"layers.{(int(match[1]) - 1) * 2 + int(match[2])}.{match[3]}.{param}"
    return None


def load_weights(model: nn.Module, model_name: str, path: Path, fmt: Format, prefix: str = "model.") -> None:
    """Load the checkpoint at `path` (format `fmt`) into `model`, every key mapped and checked: an unmapped or
    unexpected key, a parameter left without weights or a shape that differs is one BenchError naming it."""
    state = read_state(path, fmt)
    if fmt.name in ("cutmix-official", "openood"):
        state = _strip_data_parallel(state)
    convert = key_map(fmt, model_name, model, prefix)
    wanted = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        ours = convert(key)
        if ours is None or ours not in wanted:
            raise BenchError(f"{path}: unexpected key {key!r}: it maps to no parameter of {model_name} "
                             f"({fmt.name} format); expected the keys of {fmt.source}")
        if tuple(value.shape) != tuple(wanted[ours].shape):
            raise BenchError(f"{path}: key {key!r} has shape {list(value.shape)}, {model_name} expects "
                             f"{list(wanted[ours].shape)} ({ours}){class_hint(model, ours, value)}")
        mapped[ours] = value
    missing = [k for k in wanted if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        raise BenchError(f"{path}: missing key for {model_name}'s {missing[0]!r}"
                         f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: the checkpoint does not "
                         f"give it ({fmt.name} format); check --model and --model-params")
    model.load_state_dict({**{k: v for k, v in wanted.items() if k not in mapped}, **mapped})


def class_hint(model: nn.Module, key: str, value: torch.Tensor) -> str:
    """For the classifier's weight: the class counts of the checkpoint and of the data, said plainly."""
    last = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if last and key.startswith(f"{last[-1]}."):
        return f": the checkpoint has {value.shape[0]} classes, the data {model.state_dict()[key].shape[0]}"
    return ""


def timm_preprocessing(model: nn.Module) -> tuple[Normalisation | None, int | None]:
    """timm's `pretrained_cfg` mean / std and input side, when the model has one."""
    cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    norm = (list(cfg["mean"]), list(cfg["std"])) if "mean" in cfg and "std" in cfg else None
    size = cfg.get("input_size")
    return norm, (int(size[-1]) if size else None)
