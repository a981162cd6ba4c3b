"""Out-of-distribution detection: the CutMix paper's protocol (MSP; TNR at 95% TPR, AUROC, detection accuracy
averaged over the OOD sets) and OpenOOD v1.5's (near / far AUROC and FPR@95, unweighted means over sets).

Scores live in ood/scores.py, metrics in ood/metrics.py, sets in ood/sets.py. Each run also saves every score
array to `<run>/ood_scores.npz` (keys `in__<score>` and `<set>__<score>`) so the ROC figure is drawn at
report time and the numbers can be recomputed.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .. import intervals
from ..data import Split
from ..data.cifar import Cifar10
from ..errors import BenchError
from ..io import atomic_write
from ..ood.fitted import FeatureScore
from ..ood.metrics import METRICS, Sweep, ood_metrics, roc_curve
from ..ood.scores import SCORES, Score
from ..ood.sets import SetSpec, load_set, parse_spec
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Headline, Plan, ReportContext, Row
from .budget import CPU_DEFAULT_IMAGES, scored_positions
from .engine import Positions
from .figures import new_figure, save_figure
from .tables import cell_stats, display_name, mean_std, mean_std_table, portable_paths, sampling_note, save_table

log = logging.getLogger("cutmix_bench")
CPU_FAR_IMAGES = CPU_DEFAULT_IMAGES  # far sets per set on CPU by default (in-distribution and near sets: all)

SCORES_FILE = "ood_scores.npz"
GROUPS = ("near", "far", "noise")
DEFAULT_SCORES = ("msp", "maxlogit", "energy")
SCORE_NAMES = {"msp": "MSP", "maxlogit": "MaxLogit", "energy": "Energy", "odin": "ODIN", "mahalanobis": "Mahalanobis",
               "knn": "KNN", "vim": "ViM", "react": "ReAct"}
METRIC_NAMES = {"auroc": "AUROC ↑", "aupr_in": "AUPR-In ↑", "aupr_out": "AUPR-Out ↑", "fpr95": "FPR@95 ↓",
                "tnr95": "TNR@TPR95 ↑", "detection_acc": "Det. acc ↑"}
SHOWN = ("auroc", "fpr95")  # in the per-set markdown table; the CSV has all of METRICS
CONVENTIONS = (
    "Scores: higher = more in-distribution. All metrics in percent, exact over the unique score thresholds "
    "(ties included, no interpolation). **TNR@TPR95** (CutMix paper, ODIN: in-distribution positive) = share of "
    "OOD images rejected at the largest threshold that accepts >= 95% of in-distribution test images. "
    "**FPR@95** (OpenOOD v1.5: OOD positive) = share of in-distribution images flagged as OOD at the largest "
    "threshold (on the negated score) that flags >= 95% of OOD images. AUROC and detection accuracy "
    "(max over thresholds of (TPR + TNR) / 2) do not depend on the convention. AUPR-In / AUPR-Out are average "
    "precision (sklearn's `average_precision_score`) with in-distribution / OOD as the positive class.")


def parse_scores(raw: Any) -> dict[str, Score]:
    """`[msp, energy, {odin: {temperature: 1000}}]` or `{msp: {}, odin: {epsilon: 0.002}}` -> built scores."""
    if raw is None:
        raw = list(DEFAULT_SCORES)
    items: dict[str, dict[str, Any]] = {}
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, str):
            items[item] = {}
        elif isinstance(item, dict):
            items.update({name: params or {} for name, params in item.items()})
        else:
            raise ValueError(f"scores: expected score names or {{name: params}} mappings, got {item!r}")
    if not items:
        raise ValueError("scores: expected at least one score, e.g. [msp, maxlogit, energy]")
    try:
        return {name: SCORES.create(name, f"scores.{name}", **params) for name, params in items.items()}
    except BenchError as exc:
        raise ValueError(str(exc)) from None


def default_sets(dataset: Any, ood_root: Path | None) -> tuple[list[SetSpec], list[SetSpec]]:
    """OpenOOD v1.5's CIFAR sets: near = the other CIFAR, Tiny ImageNet; far = ODIN's noise sets, SVHN,
    Textures, Places365 (those absent under `ood_root` are skipped with a note)."""

    def at(folder: str) -> dict[str, str]:
        return {"root": str(ood_root / folder)} if ood_root else {}

    other = "cifar100" if isinstance(dataset, Cifar10) else "cifar10"
    near = [{"name": other, **at(other)}, {"name": "tinyimagenet", **at("tinyimagenet32")}]
    far = ["gaussian", "uniform", {"name": "svhn", **at("svhn")},
           {"name": "imagedir", "label": "textures", **at("textures")},
           {"name": "imagedir", "label": "places365", "params": {"max_images": 10000}, **at("places365")}]
    return ([parse_spec(s, f"near[{i}]") for i, s in enumerate(near)],
            [parse_spec(s, f"far[{i}]") for i, s in enumerate(far)])


NOISE_SETS = ("gaussian", "uniform")  # ood/sets.py's synthetic sets: reported as "noise", never as "far"


def set_group(name: str, listed: str) -> str:
    """The group a set is reported in: a synthetic noise set is "noise" wherever the suite lists it (OpenOOD's far
    group holds real images: MNIST, SVHN, Textures, Places365); any other set keeps its list's name."""
    return "noise" if name in NOISE_SETS else listed


def noise_as_such(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows written before the noise sets had their own group listed them under "far": their per-set rows, and a
    run's far means when every far set it scored (skipped sets aside) was synthetic, are read as "noise"."""
    if "group" not in rows or "subset" not in rows or not (rows["group"] == "far").any():
        return rows
    rows = rows.copy()
    rows.loc[(rows["group"] == "far") & rows["subset"].isin(NOISE_SETS), "group"] = "noise"
    means = (rows["group"] == "far") & (rows["subset"] == "far")
    real_far = rows[(rows["group"] == "far") & (rows["subset"] != "far") & (rows["metric"] != "skipped")]
    for run in rows.loc[means, "run"].unique():
        if not (real_far["run"] == run).any():
            rows.loc[means & (rows["run"] == run), ["group", "subset"]] = "noise"
    return rows


def auroc_rows(rows: pd.DataFrame, group: str) -> pd.DataFrame:
    """The summary's OOD row: AUROC of the MSP detector (else the first score) over the group's sets: the
    evaluation's own `mean_auroc` row (one per run, with its bootstrap interval) when recorded, else the per-set
    rows, averaged per run."""
    if "group" not in rows or "score" not in rows:
        return rows.iloc[0:0]
    rows = noise_as_such(rows)
    means = rows[(rows["metric"] == "mean_auroc") & (rows["group"] == group)]
    scored = means if len(means) else rows[(rows["metric"] == "auroc") & (rows["group"] == group)]
    scores = list(dict.fromkeys(scored["score"]))
    return scored[scored["score"] == ("msp" if "msp" in scores else scores[0])] if scores else scored


@EVALUATIONS.register("ood")
class OOD(Evaluation):
    title = "Out-of-distribution detection"
    units = {**{metric: "percent" for metric in METRICS}, **{f"mean_{metric}": "percent" for metric in METRICS},
             "n_images": "count", "skipped": "none"}
    headlines = (Headline("auroc_near", "OOD AUROC near (%)", False, lambda rows: auroc_rows(rows, "near")),
                 Headline("auroc_far", "OOD AUROC far (%)", False, lambda rows: auroc_rows(rows, "far"),
                          optional=True),
                 Headline("auroc_noise", "OOD AUROC noise (%)", False, lambda rows: auroc_rows(rows, "noise"),
                          optional=True))

    def __init__(self, near: list | None = None, far: list | None = None, scores: Any = None,
                 max_images: int | None = None, ood_root: str | None = None) -> None:
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                       or max_images < 1):
            raise ValueError(f"max_images: expected a number >= 1 (or none), got {max_images!r}")
        if ood_root is not None and not isinstance(ood_root, str):
            raise ValueError(f"ood_root: expected a folder path, got {ood_root!r}")
        self.near = self._specs(near, "near")
        self.far = self._specs(far, "far")
        labels = [s.label for s in (self.near or []) + (self.far or [])]
        duplicate = next((label for label in labels if labels.count(label) > 1), None)
        if duplicate:
            raise ValueError(f"near/far: set label {duplicate!r} appears twice; give one of them a `label`")
        if near == [] and far == []:
            raise ValueError("near/far: expected at least one OOD set")
        self.scores = parse_scores(scores)
        self.max_images, self.ood_root = max_images, ood_root

    @staticmethod
    def _specs(raw: list | None, key: str) -> list[SetSpec] | None:
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise ValueError(f"{key}: expected a list of OOD sets, got {raw!r}")
        return [parse_spec(item, f"{key}[{i}]") for i, item in enumerate(raw)]

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        n = test_size if self.max_images is None else min(test_size, self.max_images)
        near = len(self.near) if self.near is not None else 2
        far = len(self.far) if self.far is not None else 5
        far_n = min(n, CPU_FAR_IMAGES) if device_type == "cpu" and self.max_images is None else n
        images = n * (1 + near) + far_n * far
        return Plan(images, images, f"{n:,} in-distribution images, {near} near sets of up to {n:,}, {far} far sets "
                                    f"of up to {far_n:,}")

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        """The in-distribution images: all, or `max_images` of them (`budget.scored_positions`)."""
        return None if self.max_images is None else scored_positions(len(test), self.max_images, device_type)

    def run(self, ctx: EvalContext) -> list[Row]:
        data_root = getattr(ctx.dataset, "root", None)
        ood_root = Path(self.ood_root) if self.ood_root else Path(data_root).parent if data_root else None
        default_near, default_far = default_sets(ctx.dataset, ood_root)
        groups = {"near": default_near if self.near is None else self.near,
                  "far": default_far if self.far is None else self.far}
        positions = self.clean_positions(ctx.test, ctx.device.type)
        test = ctx.test_at(positions)
        cap = self.max_images if len(test) == len(ctx.test) else len(test)  # OOD sets no larger than in-dist
        if ctx.train is None and any(type(s).setup is not Score.setup for s in self.scores.values()):
            raise BenchError("evaluations.ood: a score with a fit stage needs the training split; none was given")
        for score in self.scores.values():
            if ctx.train is not None:
                score.setup(ctx, ctx.train)
        featured = any(isinstance(score, FeatureScore) for score in self.scores.values())
        in_logits = ctx.clean_logits(positions)
        in_features = ctx.clean_features(positions) if featured else None
        in_scores = {name: scored(score, ctx, test.x, in_logits, in_features) for name, score in self.scores.items()}
        arrays = {f"in__{name}": values for name, values in in_scores.items()}
        # One resample of the in-distribution images for every set and score, so that means over sets are
        # resampled jointly; each OOD set has its own (independent) stream.
        in_counts = list(intervals.resample_counts(len(test)))
        replicates: dict[tuple[str, str, str], np.ndarray] = {}  # (set, score, metric) -> [resamples]
        rows: list[Row] = []
        for group, specs in groups.items():
            far_on_cpu = cap is None and group == "far" and ctx.device.type == "cpu"
            for spec in specs:
                ood = load_set(spec, tuple(test.x.shape[1:]), len(test), CPU_FAR_IMAGES if far_on_cpu else cap,
                               ood_root)
                base = {"subset": spec.label, "group": set_group(spec.name, group)}
                if ood.images is None:
                    log.warning("ood: set %s skipped: %s", spec.label, ood.note)
                    rows.append({"metric": "skipped", "value": float("nan"), **base, "score": "", "note": ood.note})
                    continue
                n = len(ood.images)
                rows.append({"metric": "n_images", "value": n, **base, "score": "", "note": "", "n": n})
                logits, features = ctx.logits_features(ood.images) if featured else (ctx.logits(ood.images), None)
                ood_counts = list(intervals.resample_counts(n, [intervals.SEED, zlib.crc32(spec.label.encode())]))
                for name, score in self.scores.items():
                    values = scored(score, ctx, ood.images, logits, features)
                    arrays[f"{spec.label}__{name}"] = values
                    spread = bootstrap_metrics(in_scores[name], values, in_counts, ood_counts)
                    for metric, value in ood_metrics(in_scores[name], values).items():
                        replicates[spec.label, name, metric] = 100 * spread[metric]
                        rows.append({"metric": metric, "value": 100 * value, **base, "score": name, "note": "",
                                     **intervals.percentile(100 * spread[metric], n), "n_in": len(test)})
        rows += set_means(rows, replicates, len(test))
        atomic_write(ctx.run_dir / SCORES_FILE, lambda tmp: _save_npz(tmp, arrays))
        return rows

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        rows = noise_as_such(rows.assign(value=pd.to_numeric(rows["value"], errors="coerce")))
        parts = [CONVENTIONS]
        skipped = rows[rows["metric"] == "skipped"].drop_duplicates(["subset", "note"])
        if len(skipped):
            notes = "\n".join(f"- `{r.subset}` ({r.group}): {portable_paths(r.note)}" for r in skipped.itertuples())
            parts.append(f"**Skipped sets** (not in any average):\n\n{notes}")
        scored = rows[rows["metric"].isin(METRICS)]
        if scored.empty:
            return "\n\n".join(parts)
        scores = list(dict.fromkeys(scored["score"]))
        sets = list(dict.fromkeys(scored["subset"]))
        parts.append(paper_table(scored, ctx.methods, "msp" if "msp" in scores else scores[0], sets))
        parts.append(openood_tables(scored, ctx.methods, scores))
        figure = roc_figure(scored, ctx, "msp" if "msp" in scores else scores[0])
        if figure:
            parts.append(figure)
        parts.append(appendix_table(rows, ctx.methods, scores, sets))
        note = sampling_note(scored)
        parts.append(f"{'Metrics: ' + note + ' ' if note else ''}All six metrics per (set, score, method), "
                     f"mean / std / seeds: {save_table(ctx.out_dir, 'ood', cell_stats(scored))}.")
        return "\n\n".join(parts)


def scored(score: Score, ctx: EvalContext, images: Any, logits: Any, features: Any) -> np.ndarray:
    """A score's values for images whose logits (and, for a feature score, features) this forward computed."""
    return score.from_features(logits, features) if isinstance(score, FeatureScore) else score(ctx, images, logits)


def bootstrap_metrics(in_scores: np.ndarray, ood_scores: np.ndarray, in_counts: list[np.ndarray],
                      ood_counts: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each metric of `ood_metrics` (fraction) on every resample: [resamples] arrays."""
    sweep = Sweep(in_scores, ood_scores)
    blocks = [sweep.replicates(a, b) for a, b in zip(in_counts, ood_counts)]
    return {metric: np.concatenate([block[metric] for block in blocks]) for metric in METRICS}


def set_means(rows: list[Row], replicates: dict[tuple[str, str, str], np.ndarray], n_in: int) -> list[Row]:
    """Rows `mean_<metric>` per score over the scored sets of each group (subset near / far / noise) and of all of
    them (subset all): the unweighted mean over sets that the report tables show, with its bootstrap interval
    (in-distribution images resampled jointly across sets); `n` = OOD images over those sets, `sets` = count."""
    scored = [r for r in rows if r["metric"] in METRICS]
    sizes = {r["subset"]: r["n"] for r in scored}
    out: list[Row] = []
    for group in (*GROUPS, "all"):
        of_group = [r for r in scored if group == "all" or r["group"] == group]
        for score in dict.fromkeys(r["score"] for r in of_group):
            for metric in METRICS:
                chosen = [r for r in of_group if r["score"] == score and r["metric"] == metric]
                sets = [r["subset"] for r in chosen]
                mean = np.mean([replicates[label, score, metric] for label in sets], axis=0)
                total = sum(sizes[label] for label in sets)
                out.append({"metric": f"mean_{metric}", "value": float(np.mean([r["value"] for r in chosen])),
                            "subset": group, "group": group, "score": score, "note": "", "sets": len(sets),
                            **intervals.percentile(mean, total), "n_in": n_in})
    return out


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object, so numpy does not append ".npz" to the temporary name
        np.savez_compressed(handle, **arrays)


def _score_name(score: str) -> str:
    return SCORE_NAMES.get(score, score)


def paper_table(scored: pd.DataFrame, methods: list[str], score: str, sets: list[str]) -> str:
    """CutMix paper Table: one score, three metrics averaged over every OOD set of a run."""
    per_run = scored[scored["score"] == score].groupby(["run", "method", "metric"], as_index=False)["value"].mean()
    columns = {"tnr95": "TNR at TPR 95% ↑", "auroc": "AUROC ↑", "detection_acc": "Detection acc. ↑"}
    table = mean_std_table(per_run, columns, methods)
    return (f"### Paper protocol ({_score_name(score)} detector, mean over {len(sets)} OOD sets: "
            f"{', '.join(sets)})\n\n{table}")


def openood_tables(scored: pd.DataFrame, methods: list[str], scores: list[str]) -> str:
    """OpenOOD v1.5: per score, near and far (and noise) AUROC / FPR@95 as unweighted means over the group's sets."""
    grouped = scored.groupby(["run", "method", "score", "group", "metric"], as_index=False)["value"].mean()
    grouped["key"] = grouped["score"] + ":" + grouped["group"]
    present = [(s, g) for s in scores for g in GROUPS if ((grouped.score == s) & (grouped.group == g)).any()]
    columns = {f"{s}:{g}": f"{_score_name(s)} {g}" for s, g in present}
    auroc = mean_std_table(grouped[grouped["metric"] == "auroc"], columns, methods, column="key")
    fpr = mean_std_table(grouped[grouped["metric"] == "fpr95"], columns, methods, column="key")
    return (f"### OpenOOD v1.5 protocol (near / far = unweighted mean over the group's sets; noise = the synthetic "
            f"sets, which OpenOOD does not score, in a group of their own)\n\n"
            f"AUROC (%) ↑\n\n{auroc}\n\nFPR@95 (%, OOD positive) ↓\n\n{fpr}")


def appendix_table(rows: pd.DataFrame, methods: list[str], scores: list[str], sets: list[str]) -> str:
    """Every (set, score, method): AUROC and FPR@95, mean ± std over seeds (all six metrics go to the CSV)."""
    body = []
    for label in sets:
        of_set = rows[rows["subset"] == label]
        group = of_set["group"].iloc[0]
        count = of_set[of_set["metric"] == "n_images"]["value"]
        for score in scores:
            for method in methods:
                selected = of_set[(of_set["score"] == score) & (of_set["method"] == method)]
                if selected.empty:
                    continue
                cells = [mean_std(selected[selected["metric"] == m]["value"]) for m in SHOWN]
                body.append([label, group, int(count.max()) if len(count) else "", _score_name(score),
                             display_name(method), *cells])
    header = ["Set", "Group", "Images", "Score", "Method", *(METRIC_NAMES[m] for m in SHOWN)]
    return f"### Per-set results (%)\n\n{tabulate(body, header, tablefmt='github', disable_numparse=True)}"


def roc_figure(scored: pd.DataFrame, ctx: ReportContext, score: str) -> str:
    """ROC of `score` against the first near-OOD set (else the first set): one curve per method, from the
    lowest seed's saved scores. Returns the markdown link, or "" when no run saved its scores."""
    near = scored[scored["group"] == "near"]
    label = (near if len(near) else scored)["subset"].iloc[0]
    curves = {}
    for method in ctx.methods:
        runs = scored[(scored["method"] == method) & (scored["subset"] == label)].sort_values("seed")["run"]
        for run in dict.fromkeys(runs):
            path = ctx.run_dir(run).path / SCORES_FILE
            if path.is_file():
                try:
                    with np.load(path, allow_pickle=False) as saved:
                        if f"{label}__{score}" in saved.files:
                            curves[method] = roc_curve(saved[f"in__{score}"], saved[f"{label}__{score}"])[:2]
                            break
                except Exception as exc:  # zip, format, pickle (object arrays) and key errors alike
                    raise BenchError(f"{path}: unreadable OOD score file ({type(exc).__name__}: {exc}); expected "
                                     f"numeric arrays in__<score> and <set>__<score>; delete it and the run's "
                                     f"eval/ood.csv to score the run again") from None
    if not curves:
        return ""
    figure, axes = new_figure(1, 1, width=4.5, height=4.2)
    ax = axes[0][0]
    for method, (fpr, tpr) in curves.items():
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        ax.plot(100 * fpr, 100 * tpr, label=f"{display_name(method)} (AUROC {100 * area:.1f})")
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls=":")
    ax.axhline(95, color="grey", lw=0.8, ls="--")
    ax.set(xlabel=f"OOD ({label}) accepted, %  (= 100 − TNR)", ylabel="in-distribution accepted, % (TPR)",
           title=f"ROC, {_score_name(score)} vs {label}")
    ax.legend(loc="lower right")
    return (f"ROC of {_score_name(score)} against {label} (in-distribution positive; dashed line: TPR 95%; "
            f"lowest seed of each method):\n\n{save_figure(figure, ctx.figures_dir, 'ood_roc', 'OOD ROC')}")
