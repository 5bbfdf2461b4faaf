"""Fitted scorers kept as plain numbers (JSON beside the code): a standardised logistic model,
gradient-boosted trees and a blend of them on the log-odds. A leaf module: evidence scoring
(`rag.evidence`) and the passage ranker (`rag.passage_rank`) read them, `rag.calibrate` fits them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

PRODUCT = "*"  # a feature named `a*b` is the product of `a` and `b`


def feature_value(features: dict[str, float], name: str) -> float:
    """A feature by name; `a*b` is the product of two."""
    if PRODUCT in name:
        value = 1.0
        for part in name.split(PRODUCT):
            value *= features.get(part, 0.0)
        return value
    return features.get(name, 0.0)


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic model: p = sigmoid(b + sum w_i (x_i - mean_i) / scale_i)."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def mean_of(self, name: str) -> float:
        """The feature's average in the training data (0 when the model does not use it)."""
        return self.mean[self.names.index(name)] if name in self.names else 0.0

    def log_odds(self, features: dict[str, float]) -> float:
        z = self.bias
        for name, w, m, s in zip(self.names, self.weights, self.mean, self.scale):
            z += w * (feature_value(features, name) - m) / (s or 1.0)
        return z

    def probability(self, features: dict[str, float]) -> float:
        return sigmoid(self.log_odds(features))

    @classmethod
    def from_dict(cls, data: dict) -> Logistic:
        return cls(tuple(data["names"]), tuple(data["weights"]), float(data["bias"]), tuple(data["mean"]), tuple(data["scale"]))

    def to_dict(self) -> dict:
        return {"names": list(self.names), "weights": list(self.weights), "bias": self.bias, "mean": list(self.mean), "scale": list(self.scale)}


Node = tuple[int, float, int, int, float]  # (feature index, or -1 at a leaf; threshold; left child; right child; leaf value)


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted regression trees on the log-odds (fitted by scikit-learn, kept as plain
    numbers): p = sigmoid(bias + the leaf value each tree reaches; a node goes left when the feature
    is at most its threshold). Trees weigh combinations a linear model cannot (a count asked for
    and nothing counted in the asked unit, yet a close sentence)."""

    names: tuple[str, ...]
    bias: float
    trees: tuple[tuple[Node, ...], ...]

    def mean_of(self, name: str) -> float:
        return 0.0

    def log_odds(self, features: dict[str, float]) -> float:
        values = [feature_value(features, name) for name in self.names]
        z = self.bias
        for nodes in self.trees:
            i = 0
            while nodes[i][0] >= 0:
                feature, threshold, left, right, _ = nodes[i]
                i = left if values[feature] <= threshold else right
            z += nodes[i][4]
        return z

    def probability(self, features: dict[str, float]) -> float:
        return sigmoid(self.log_odds(features))

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, ...]:
        """The trees as padded arrays (tree x node): feature, threshold, left, right, value."""
        width = max((len(nodes) for nodes in self.trees), default=1)
        table = np.zeros((len(self.trees), width, 5))
        table[:, :, 0] = -1
        for t, nodes in enumerate(self.trees):
            table[t, : len(nodes)] = nodes
        feature = table[:, :, 0].astype(int)
        return feature, table[:, :, 1], table[:, :, 2].astype(int), table[:, :, 3].astype(int), table[:, :, 4]

    def log_odds_matrix(self, x: np.ndarray) -> np.ndarray:
        """`log_odds` of many rows at once (columns in the order of `names`): every tree walked for
        every row together, one level at a time."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.names))
        if not self.trees or not len(x):
            return np.full(len(x), self.bias)
        feature, threshold, left, right, value = self._arrays
        trees = np.arange(len(self.trees))[:, None]
        rows = np.arange(len(x))[None, :]
        node = np.zeros((len(self.trees), len(x)), dtype=int)
        while True:
            f = feature[trees, node]
            inner = f >= 0
            if not inner.any():
                break
            goes_left = x[rows, np.maximum(f, 0)] <= threshold[trees, node]
            node = np.where(inner, np.where(goes_left, left[trees, node], right[trees, node]), node)
        return self.bias + value[trees, node].sum(axis=0)

    @classmethod
    def from_dict(cls, data: dict) -> Trees:
        trees = tuple(tuple((int(n[0]), float(n[1]), int(n[2]), int(n[3]), float(n[4])) for n in tree) for tree in data["trees"])
        return cls(tuple(data["names"]), float(data["bias"]), trees)

    def to_dict(self) -> dict:
        return {"kind": "trees", "names": list(self.names), "bias": self.bias, "trees": [[list(n) for n in tree] for tree in self.trees]}


@dataclass(frozen=True)
class Blend:
    """Models averaged on the log-odds scale with fixed shares (a linear model and trees: each
    corrects where the other generalises badly)."""

    members: tuple[Logistic | Trees | Blend, ...]
    shares: tuple[float, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for m in self.members for n in m.names))

    def mean_of(self, name: str) -> float:
        for member in self.members:
            if name in member.names and isinstance(member, Logistic):
                return member.mean_of(name)
        return 0.0

    def log_odds(self, features: dict[str, float]) -> float:
        return sum(share * member.log_odds(features) for member, share in zip(self.members, self.shares))

    def probability(self, features: dict[str, float]) -> float:
        return sigmoid(self.log_odds(features))

    @classmethod
    def from_dict(cls, data: dict) -> Blend:
        return cls(tuple(scorer_from_dict(m) for m in data["members"]), tuple(float(s) for s in data["shares"]))

    def to_dict(self) -> dict:
        return {"kind": "blend", "members": [m.to_dict() for m in self.members], "shares": list(self.shares)}


Scorer = Logistic | Trees | Blend


def scorer_from_dict(data: dict) -> Scorer:
    """A fitted model from its JSON form (`kind`: logistic, the default, trees or blend)."""
    kind = data.get("kind", "logistic")
    if kind == "trees":
        return Trees.from_dict(data)
    if kind == "blend":
        return Blend.from_dict(data)
    return Logistic.from_dict(data)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


