"""The training setup of a run (what decides its trained model), its short hash, and the comparison of a
recorded setup with a requested one: a run folder is only resumed or reused under the setup it was made with.

`setup.json` in each run folder holds `training_setup()` byte for byte; results.csv names it, less the seed, by
`setup_hash()` and `<output_dir>/setups.json` maps each hash back to that setup, so a report can build its header
from the recorded setups and tell apart setups that must not share a row.

The data enters by identity (`suite_data.data_identity`: name, subsets, a digest of the images), not by path.
Run folders made before (their data record has `root` and no `content`) keep working: `current_form` drops their
location keys, and `same_setup` compares them with a request less its digest, which they never recorded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .config import Suite, is_path_key

HASH_CHARS = 12
TRAIN_KEYS = {"epochs", "batch_size", "optimizer", "schedule", "precision"}  # the train keys that decide the model


def training_setup(suite: Suite, run: Any) -> str:
    """What decides a run's trained model, as canonical JSON: a run folder must not be resumed or
    reported under a different setup. (Its keys and formatting are fixed: run folders hold it; older forms are
    read through `current_form`.)"""
    from .suite_data import data_identity  # torch and the data: not for the readers of recorded setups

    train = suite.train.model_dump(mode="json", include=TRAIN_KEYS)
    setup = {"data": data_identity(suite), "model": suite.model.model_dump(mode="json"),
             "train": train, "method": suite.method_spec(run.method), "seed": run.seed}
    return json.dumps(setup, sort_keys=True)


def current_form(setup: dict[str, Any]) -> dict[str, Any]:
    """A recorded setup as `training_setup` writes it today: a record from before the data entered by identity
    loses `data.root`, `data.download` and path parameters (it has no `content` to add)."""
    data = setup.get("data")
    if not isinstance(data, dict) or "content" in data:
        return setup
    data = {k: v for k, v in data.items() if k not in ("root", "download")}
    if isinstance(data.get("params"), dict):
        data["params"] = {k: v for k, v in data["params"].items() if not is_path_key(k)}
    return {**setup, "data": data}


def comparable(recorded: dict[str, Any], requested: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both setups in the current form; when one has no data digest (an older record), neither has."""
    old, new = current_form(recorded), current_form(requested)
    if "content" in old.get("data", {}) and "content" in new.get("data", {}):
        return old, new
    return _without_content(old), _without_content(new)


def _without_content(setup: dict[str, Any]) -> dict[str, Any]:
    return {**setup, "data": {k: v for k, v in setup.get("data", {}).items() if k != "content"}}


def same_setup(recorded: str, requested: str) -> bool:
    """Whether a recorded setup.json and a requested one describe one trained model (see `comparable`)."""
    if recorded == requested:
        return True
    try:
        old, new = json.loads(recorded), json.loads(requested)
    except json.JSONDecodeError:
        return False
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    old, new = comparable(old, new)
    return old == new


def row_setup(setup_json: str) -> dict[str, Any]:
    """A recorded setup without its seed: what the runs averaged in one report row must share."""
    return {k: v for k, v in json.loads(setup_json).items() if k != "seed"}


def setup_hash(setup_json: str) -> str:
    """The first 12 hex digits of the SHA-256 of the setup's canonical JSON, in its current form, without the
    seed (runs that differ only by their seed share it)."""
    setup = current_form(row_setup(setup_json))
    return hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:HASH_CHARS]


def differences(recorded: dict[str, Any], requested: dict[str, Any], label: str) -> list[str]:
    """`key: recorded (recorded) vs requested (requested)` per differing leaf, keys named as in the suite file
    (the method entry as methods.<label>.<parameter>, the seed as seeds)."""
    recorded, requested = comparable(recorded, requested)
    old, new = _flatten(_suite_keys(recorded, label)), _flatten(_suite_keys(requested, label))
    missing = object()
    return [f"{key}: {_show(old.get(key, missing))} (recorded) vs {_show(new.get(key, missing))} (requested)"
            for key in sorted(old.keys() | new.keys()) if old.get(key, missing) != new.get(key, missing)]


def _suite_keys(setup: dict[str, Any], label: str) -> dict[str, Any]:
    out = {k: v for k, v in setup.items() if k not in ("method", "seed")}
    method = setup.get("method")
    if isinstance(method, list) and len(method) == 2 and isinstance(method[1], dict):
        out[f"methods.{label}"] = {"method": method[0], **method[1]}
    elif "method" in setup:
        out[f"methods.{label}"] = method
    if "seed" in setup:
        out["seeds"] = setup["seed"]
    return out


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: node}


def _show(value: Any) -> str:
    return "(absent)" if not isinstance(value, (str, int, float, bool, list, dict, type(None))) else json.dumps(value)
