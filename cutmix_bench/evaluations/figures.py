"""Every report figure goes through here: one matplotlib style, figures built without pyplot (no global
backend state), saved as PNG under the report's figures/ folder with a link relative to the report.
Also the report-level figures: training curves, the summary bar chart and the grid of training inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..aggregate import spread, spread_by
from .tables import display_name, keyed

# matplotlib (0.8 s) is imported when a figure is drawn, not when the evaluations are (every suite check, --dry-run)
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "lines.markersize": 3, "savefig.dpi": 120}
DPI = 120


def new_figure(rows: int, cols: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list[list[Axes]]]:
    """A rows x cols grid of axes of `width` x `height` inches each, in the report style."""
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(STYLE)  # read when artists are created, so set before building the figure
    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, [list(row) for row in axes]


def save_figure(figure: Figure, figures_dir: Path, name: str, alt: str | None = None) -> str:
    """Save `name`.png into figures_dir; return the markdown image link relative to the report, which
    lies in figures_dir's parent."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / f"{name}.png"
    figure.savefig(path, dpi=DPI)
    return f"![{alt or name}]({Path(os.path.relpath(path, figures_dir.parent)).as_posix()})"


def training_curves(curves: pd.DataFrame, methods: list[str], figures_dir: Path) -> str:
    """Train loss and test accuracy per epoch: mean over seeds per method, +- std shaded."""

    figure, axes = new_figure(1, 2)
    for ax, column, label in zip(axes[0], ("train_loss", "test_acc"), ("train loss", "test accuracy (%)")):
        for method in methods:
            mine = curves[curves["method"] == method]
            stats = spread_by(mine, "epoch", column).dropna(subset=["mean"])
            if stats.empty:
                continue
            epochs = stats.index + 1
            line, = ax.plot(epochs, stats["mean"], marker="o", label=display_name(method))
            if stats["std"].notna().any():
                ax.fill_between(epochs, stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0),
                                color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set(xlabel="epoch", ylabel=label, title=label)
    axes[0][0].legend()
    return save_figure(figure, figures_dir, "training_curves", "training curves")


def summary_bars(values: pd.DataFrame, headlines: list, methods: list[str], figures_dir: Path) -> str:
    """One panel per headline metric: a bar per method (mean over seeds), error bars = std over seeds."""

    shown = [h for h in headlines if (values["headline"] == h.key).any()]
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    figure, axes = new_figure(rows, cols, width=2.6, height=2.4)
    flat = [ax for row in axes for ax in row]
    for ax, headline in zip(flat, shown):
        mine = values[values["headline"] == headline.key]
        stats = [spread(mine[mine["method"] == m]["value"]) for m in methods]
        ax.bar(range(len(methods)), [s["mean"] for s in stats], yerr=[0 if pd.isna(s["std"]) else s["std"]
               for s in stats], color=[f"C{i}" for i in range(len(methods))], capsize=3)
        ax.set_xticks(range(len(methods)), [display_name(m) for m in methods], rotation=30)
        ax.set_title(f"{headline.label} {headline.arrow}")
    for ax in flat[len(shown):]:
        ax.set_visible(False)
    return save_figure(figure, figures_dir, "summary", "summary")


def training_inputs(images: np.ndarray, labels: np.ndarray, mean: tuple, std: tuple, methods: dict,
                    num_classes: int, class_names: list[str] | None, figures_dir: Path, seed: int = 0) -> str:
    """What each method feeds the model: the same uint8 NHWC images through every method (one row per
    method, a NumPy generator seeded by `seed`), label weights written under each image."""
    import torch

    from ..methods.base import output_problem

    x01 = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    target = torch.nn.functional.one_hot(torch.as_tensor(labels), num_classes).float()
    figure, axes = new_figure(len(methods), len(images), width=1.25, height=1.55)
    for row, (label, method) in zip(axes, methods.items()):
        with torch.no_grad():
            batch = (x01 - m) / s
            mixed, weights = method(batch, target.clone(), np.random.default_rng(seed))
        if output_problem(batch, target, mixed, weights):  # a plug-in's broken output: its run fails, the row says so
            for ax in row:
                ax.axis("off")
            row[0].set_title(f"{display_name(label)}: output breaks the method contract", fontsize=7, loc="left")
            continue
        shown = ((mixed * s + m).clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for i, ax in enumerate(row):
            ax.imshow(shown[i].squeeze(), cmap="gray" if shown.shape[-1] == 1 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            top = [(float(w), k) for k, w in enumerate(weights[i]) if w > 1e-4]
            top.sort(reverse=True)
            text = "\n".join(f"{w:.2f} {class_names[k] if class_names else f'class {k}'}" for w, k in top[:2])
            ax.set_xlabel(text, fontsize=7)
        row[0].set_ylabel(display_name(label))
    return save_figure(figure, figures_dir, "training_inputs", "training inputs")


def plot_curves(ax: Axes, rows: pd.DataFrame, metric: str, subset: str, methods: list[str]) -> None:
    """One line per method: mean over seeds against the level, with a +- std band when there are >= 2 seeds."""
    selected = keyed(rows, metric, subset)
    for method in methods:
        stats = spread_by(selected[selected["method"] == method], "level").sort_index()
        if stats.empty:
            continue
        line, = ax.plot(stats.index, stats["mean"], marker="o", markersize=3, label=display_name(method))
        if stats["std"].notna().any():
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.grid(alpha=0.3)
