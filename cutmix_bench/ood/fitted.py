"""OOD scores fitted on penultimate features of the training split (OpenOOD v1.5's "setup" postprocessors):
Mahalanobis, KNN, ViM and ReAct. Higher = more in-distribution, as every score.

Features are the input of the classifier head (OpenOOD's `net(x, return_feature=True)`), from the evaluation
engine's one forward per image (`EvalContext.clean_features` / `split_features`); the OOD evaluation hands
cached logits and features to `from_features`. The formulas follow OpenOOD at commit 3c35632
(openood/postprocessors/{mds,knn,vim,react}_postprocessor.py, configs/postprocessors/*.yml), in float64.
Differences, all stated: ReAct's clipping threshold is fitted on the training split (OpenOOD: its ID
validation split, which we do not hold out); KNN searches exactly with torch (OpenOOD: faiss IndexFlatL2,
also exact); ViM's and ReAct's logits are the model's own / the head applied in float64.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from ..data import Split
from .scores import SCORES, Score, ScoringContext


class FeatureScore(Score):
    """A score of (logits, penultimate features), fitted on the training split's features in `setup`."""

    def setup(self, ctx: ScoringContext, train: Split) -> None:
        logits, features = ctx.split_features(train)
        weight, bias = ctx.head()
        self.fit(features.double().numpy(), np.asarray(train.y), weight.numpy(), bias.numpy())

    def fit(self, features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        raise NotImplementedError

    def __call__(self, ctx: ScoringContext, images: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        """Standalone use forwards the images for their features; the OOD evaluation calls `from_features`."""
        return self.from_features(logits, ctx.logits_features(images)[1])

    def from_features(self, logits: torch.Tensor, features: torch.Tensor) -> np.ndarray:
        raise NotImplementedError


def check_fitted_on(features: np.ndarray, score: str, needed: int = 1) -> None:
    if features.shape[1] == 0:
        raise ValueError(f"{score}: the model has no penultimate features (no final nn.Linear)")
    if len(features) < needed:
        raise ValueError(f"{score}: needs at least {needed} training images, got {len(features)}")


@SCORES.register("mahalanobis")
class Mahalanobis(FeatureScore):
    """Mahalanobis distance (Lee et al., NeurIPS 2018; OpenOOD's `mds`): class means of the training features
    (true labels) and one shared covariance (sklearn `EmpiricalCovariance`, maximum likelihood, of the
    class-centred features; its pseudo-inverse as precision); score = max over classes of -(f - mu_c)' P (f - mu_c).
    Penultimate layer only, no input perturbation, as OpenOOD v1.5. Classes absent from the split are left out."""

    def fit(self, features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        check_fitted_on(features, "mahalanobis", 2)
        classes = np.unique(labels)
        self.means = np.stack([features[labels == c].mean(0) for c in classes])
        centred = features - self.means[np.searchsorted(classes, labels)]
        from sklearn.covariance import EmpiricalCovariance  # here: sklearn loads scipy.stats (--dry-run)

        self.precision = EmpiricalCovariance(assume_centered=True).fit(centred).precision_

    def from_features(self, logits: torch.Tensor, features: torch.Tensor) -> np.ndarray:
        f = features.double().numpy()
        # (f - mu)' P (f - mu) for every class at once: f'Pf - 2 f'P mu + mu'P mu
        fp, mp = f @ self.precision, self.means @ self.precision
        distances = (fp * f).sum(1)[:, None] - 2 * fp @ self.means.T + (mp * self.means).sum(1)
        return -distances.min(1)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm. (OpenOOD adds 1e-10 to every component after dividing, which moves both
    ends of a distance alike and so changes no KNN distance.)"""
    return features / np.linalg.norm(features, axis=1, keepdims=True)


@SCORES.register("knn")
class KNN(FeatureScore):
    """Deep nearest neighbours (Sun et al., ICML 2022): score = -(squared Euclidean distance from the
    L2-normalised feature to its k-th nearest L2-normalised training feature); k = 50 as OpenOOD's CIFAR
    configuration (configs/postprocessors/knn.yml; faiss returns squared distances, as here)."""

    def __init__(self, k: int = 50) -> None:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"knn k must be an integer >= 1, got {k!r}")
        self.k = k

    def fit(self, features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        check_fitted_on(features, "knn", self.k)
        self.bank = torch.from_numpy(unit_rows(features))

    def from_features(self, logits: torch.Tensor, features: torch.Tensor, chunk: int = 256) -> np.ndarray:
        queries = torch.from_numpy(unit_rows(features.double().numpy()))
        out = []
        for start in range(0, len(queries), chunk):  # [chunk, train] distances at a time
            q = queries[start:start + chunk]
            squared = (q * q).sum(1, keepdim=True) - 2 * q @ self.bank.T + (self.bank * self.bank).sum(1)
            out.append(-squared.kthvalue(self.k, 1).values)
        return torch.cat(out).numpy() if out else np.empty(0)


@SCORES.register("vim")
class ViM(FeatureScore):
    """Virtual-logit matching (Wang et al., CVPR 2022), as OpenOOD's `vim`: origin u = -pinv(W) b; principal
    subspace of the training features' uncentred covariance about u (its `dim` largest eigenvalues); residual
    norm ||(f - u) R|| on the rest, scaled by alpha = mean max training logit / mean training residual norm;
    score = logsumexp(logits) - alpha * residual. `dim` defaults to half the feature dimension (OpenOOD: 256 of
    ResNet-18's 512)."""

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (not isinstance(dim, int) or dim < 1):
            raise ValueError(f"vim dim must be an integer >= 1 (or none: half the feature dimension), got {dim!r}")
        self.dim = dim

    def fit(self, features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        check_fitted_on(features, "vim")
        dim = self.dim if self.dim is not None else features.shape[1] // 2
        if not 0 < dim < features.shape[1]:
            raise ValueError(f"vim dim must be between 1 and the feature dimension - 1 ({features.shape[1] - 1}), "
                             f"got {dim}")
        self.origin = -np.linalg.pinv(weight) @ bias
        from sklearn.covariance import EmpiricalCovariance

        covariance = EmpiricalCovariance(assume_centered=True).fit(features - self.origin).covariance_
        values, vectors = np.linalg.eigh(covariance)
        self.residual_space = np.ascontiguousarray(vectors[:, np.argsort(-values, kind="stable")[dim:]])
        train_logits = features @ weight.T + bias
        self.alpha = train_logits.max(1).mean() / self.residual(features).mean()

    def residual(self, features: np.ndarray) -> np.ndarray:
        return np.linalg.norm((features - self.origin) @ self.residual_space, axis=1)

    def from_features(self, logits: torch.Tensor, features: torch.Tensor) -> np.ndarray:
        return logsumexp(logits.double().numpy(), axis=1) - self.alpha * self.residual(features.double().numpy())


@SCORES.register("react")
class ReAct(FeatureScore):
    """ReAct (Sun et al., NeurIPS 2021), as OpenOOD's `react`: features clipped above the `percentile`-th
    percentile (90, OpenOOD's configuration) of all training feature values, the head applied to them, then
    the energy score logsumexp(logits)."""

    def __init__(self, percentile: float = 90.0) -> None:
        if not 0 < percentile <= 100:  # NaN too
            raise ValueError(f"react percentile must be in (0, 100], got {percentile!r}")
        self.percentile = percentile

    def fit(self, features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        check_fitted_on(features, "react")
        self.threshold = float(np.percentile(features.ravel(), self.percentile))
        self.weight, self.bias = weight, bias

    def from_features(self, logits: torch.Tensor, features: torch.Tensor) -> np.ndarray:
        clipped = np.minimum(features.double().numpy(), self.threshold)
        return logsumexp(clipped @ self.weight.T + self.bias, axis=1)
