"""Sampling error of a number measured on a finite set of images: the `n`, `ci_low`, `ci_high` columns
of an evaluation row (a 95% interval in the units of `value`).

- A share of images (an error rate, an accuracy): the exact binomial (Clopper-Pearson) interval.
- Anything else (ECE, NLL, OOD metrics, means over cells that score the same images): a percentile
  bootstrap over images with `RESAMPLES` seeded resamples. A resample is a matrix of how often each image
  is drawn (`resample_counts`), so a statistic that is a weighted sum over images is one matrix product,
  and statistics of the same images share one resample (their joint error is then in the replicates).

scipy's `stats.bootstrap` would redo the statistic once per resample in Python and cannot share one
resample between statistics; hence the counts matrix here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0
CHUNK = 100  # resamples per block, so that [CHUNK, images] arrays stay small

Interval = dict[str, float]


def columns(n: int, low: float = float("nan"), high: float = float("nan")) -> Interval:
    """The three row columns."""
    return {"n": n, "ci_low": float(low), "ci_high": float(high)}


def binomial(successes: int, n: int, scale: float = 100.0) -> Interval:
    """`n` and the exact binomial (Clopper-Pearson) interval of the share successes / n, times `scale`
    (percent): the beta quantiles that define it, 0 and 1 at the ends. The same interval as scipy's
    `binomtest(...).proportion_ci(method="exact")`, which finds it by root search, 1000 times slower."""
    from scipy import stats  # here, not at the top: scipy.stats takes 1 s to import (every suite check)

    k, tail = int(successes), (1 - LEVEL) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - tail, k + 1, n - k))
    return columns(n, scale * low, scale * high)


def percentile(replicates: np.ndarray, n: int) -> Interval:
    """`n` and the central `LEVEL` percentile interval of bootstrap replicates (a 1-d array)."""
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(np.asarray(replicates, dtype=np.float64), [tail, 100 - tail])
    return columns(n, low, high)


def resample_counts(n: int, seed: int | list[int] = SEED, resamples: int = RESAMPLES) -> Iterator[np.ndarray]:
    """Blocks of at most `CHUNK` bootstrap resamples of `n` images: int32 [block, n], how many times each
    image is drawn (each row sums to n). The same seed gives the same resamples, so statistics of the same
    images computed from separate calls are resampled jointly."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK):
        block = min(CHUNK, resamples - start)
        draws = rng.integers(0, n, (block, n)) + n * np.arange(block)[:, None]
        yield np.bincount(draws.ravel(), minlength=block * n).reshape(block, n).astype(np.int32)


def mean_replicates(values: np.ndarray, seed: int | list[int] = SEED, resamples: int = RESAMPLES) -> np.ndarray:
    """Bootstrap replicates of the per-image mean of `values` ([n] or [n, k] for k statistics of the same
    images, resampled jointly): [resamples] or [resamples, k]."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    return np.concatenate([counts @ values / n for counts in resample_counts(n, seed, resamples)])
