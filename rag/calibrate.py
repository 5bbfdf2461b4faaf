"""Fit the answer-selection and answerability models on question sets (`make calibrate`, `rag calibrate`).

For every question the assistant's own pipeline gives the candidate sentences and their features;
a candidate is positive when it comes from an expected document and holds an expected string.
Two logistic models are fitted (scikit-learn), with k-fold cross-validation grouped by document:
- the sentence scorer (which candidate answers the question);
- the answerability model (does any candidate answer it), whose refusal threshold is the largest
  that keeps cross-validated false refusals at or below the target (2 %: questions in other people's
  words are refused more often than the training folds show, and refusal recall has room to spare).
Cross-validated end-to-end metrics are measured by answering each held-out fold with the models
fitted on the other folds. The fitted weights are written as data (`rag/data/answer_model.json`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluation import EvalItem, load_dataset, run_system, summarize, system_predictor
from rag.evidence import (
    QUESTION_FEATURE_SIGNS,
    QUESTION_FEATURES,
    QUESTION_PRODUCTS,
    SENTENCE_FEATURES,
    AnswerModel,
    shape_match,
)
from rag.params import AnswerParams
from rag.scorers import Blend, Logistic, Trees, feature_value
from rag.text import fold, split_sentences, squash

MAX_FALSE_REFUSALS = 0.02  # 3 % until round 6: pooled CV 0.850 -> 0.862, refusal recall 0.947 -> 0.915
FOLDS = 5
C_GRID = (0.1, 1.0, 10.0)
P_DEPENDENT = ("best_p", "second_p", "margin", "best_shape_match")
ANSWERABLE_FEATURES = QUESTION_FEATURES + QUESTION_PRODUCTS
ANSWERABLE_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
# The answerability model is the linear model with products and gradient-boosted trees over the plain
# question features, averaged on the log-odds with these shares. Measured in round 20 (training
# out-of-fold AUC grouped by document / held-out AUC, 19 held-out sets): linear 0.937 / 0.917, trees
# alone 0.921 / 0.929, the blend 0.938 / 0.930 (linear share 0.3: 0.933 / 0.931; 0.7: 0.940 / 0.926);
# trees of depth 2-4, 100-300 at rates 0.03-0.1 within 0.921-0.928 / 0.920-0.929.
TREE_DEPTH = 3
TREE_COUNT = 100
TREE_RATE = 0.1
TREE_MIN_LEAF = 20
LINEAR_SHARE = 0.5


@dataclass
class ItemData:
    """One question with what the pipeline found: the stage it stopped at and the candidates' features."""

    set_name: str
    item: EvalItem
    group: str
    stage: str  # guard | article | model
    setup: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    question: dict[str, float] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # the candidate sentences, for diagnostics
    sources: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return not self.item.refuse


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write beside, then rename: a reader never sees half a model file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def group_of(item: EvalItem, folds: int) -> str:
    """Questions are grouped by their document; questions to refuse by a stable hash of their id."""
    if item.sources:
        return item.sources[0]
    bucket = int(hashlib.sha1(item.id.encode()).hexdigest(), 16) % folds
    return f"refuse-{bucket}"


def candidate_labels(assistant, analysis, item: EvalItem) -> list[int]:
    """1 for a candidate whose answer (composed around it as the best sentence) holds every expected
    string and cites an expected document — of those, the ones whose own text holds them, when any
    does —; when no candidate's answer holds them all, 1 for those holding any."""
    from rag.citations import CitationBook

    if item.refuse:
        return [0] * len(analysis.scored)
    full: list[int] = []
    partial: list[int] = []
    for candidate in analysis.scored:
        book = CitationBook()
        text = squash(assistant.compose(analysis, book, best=candidate, alone=True))
        cited = any(c.source in item.sources for c in book.citations)
        found = [squash(c) in text for c in item.contains]
        full.append(int(cited and all(found)))
        partial.append(int(cited and any(found) and candidate.hit.source in item.sources))
    if any(full):
        # The sentences that hold the answer themselves, when some do: a heading or an article's lead
        # whose composed answer happens to take in the next sentence would teach the ranker to prefer
        # first and short sentences, and at answer time the next sentence is not always the one.
        own = [int(y and all(squash(c) in squash(candidate.text) for c in item.contains)) for y, candidate in zip(full, analysis.scored)]
        return own if any(own) else full
    return partial


def analyzed(assistant, item: EvalItem) -> tuple[Any, list[str]]:
    """An item's question, after its earlier turns, retrieved and scored as `ask` does it up to the
    candidates (`Assistant.analyze`), with the notices for the answer."""
    from rag.query import prepare_question

    cut, text, notices = prepare_question(item.question, assistant.settings.answer.max_question_chars)
    retrieval = assistant.retriever.search(assistant.resolve(text, assistant.turns(item.history)))
    return assistant.analyze(cut, retrieval, notices), notices


def extract(assistant, sets: Mapping[str, Sequence[EvalItem]], progress: Callable[[int, int], None] | None = None, setup: int = 0) -> list[ItemData]:
    """Run every question through the pipeline up to the scored candidates."""
    out: list[ItemData] = []
    total = sum(len(v) for v in sets.values())
    done = 0
    for set_name, items in sets.items():
        for item in items:
            analysis, _ = analyzed(assistant, item)
            data = ItemData(set_name, item, group_of(item, FOLDS), "model", setup)
            if analysis.refusal is not None:
                data.stage = "guard"
            elif analysis.retrieval.article_hits:
                data.stage = "article"
            else:
                data.rows = [c.features for c in analysis.scored]
                data.labels = candidate_labels(assistant, analysis, item)
                data.question = dict(analysis.question_features)
                data.texts = [c.text for c in analysis.scored]
                data.sources = [f"{c.hit.source}|{c.hit.section}" for c in analysis.scored]
            out.append(data)
            done += 1
            if progress:
                progress(done, total)
    return out


def _matrix(rows: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    return np.array([[feature_value(r, n) for n in names] for r in rows], dtype=np.float64)


def _standard(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and spread (1 where it does not vary), for standardised fits."""
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return x.mean(axis=0), scale


# ---------------------------------------------------------------- how answers are composed

COMPOSE_GRID = {  # holds AnswerParams' defaults, which the answers' length is held against
    "second_sentence_ratio": (0.3, 0.4, 0.5, 0.6, 0.75, 0.9),
    "extra_gain": (0.05, 0.1, 0.2, 0.3),
    "part_ratio": (0.05, 0.1, 0.2, 0.3),
}
MAX_LONGER = 1.15  # composed answers at most this many times as long on average as with AnswerParams' defaults


def compose_grid(current: AnswerParams) -> list[AnswerParams]:
    """`current` with each setting of COMPOSE_GRID (and `current` itself when it is off the grid)."""
    grid = [AnswerParams.from_dict({**current.to_dict(), **dict(zip(COMPOSE_GRID, values))}) for values in itertools.product(*COMPOSE_GRID.values())]
    return grid if compose_key(current) in {compose_key(p) for p in grid} else [*grid, current]


def compose_key(params: AnswerParams) -> tuple[float, ...]:
    return tuple(getattr(params, n) for n in COMPOSE_GRID)


def composed_outcome(assistant, analysis, notices: Sequence[str], item: EvalItem, params: AnswerParams) -> tuple[bool, int]:
    """Whether the answer `assistant` composes from `analysis` with `params` is right, and its length."""
    from rag.evaluation import is_correct, prediction_of

    kept = assistant.model
    assistant.model = replace(kept, params=params)
    try:
        answer, _ = assistant.answer_from(analysis, list(notices))
    finally:
        assistant.model = kept
    return is_correct(item, prediction_of(answer)), len(answer.answer)


Outcomes = Mapping[tuple[float, ...], Sequence[tuple[bool, int]]]  # per setting: each question's (right, length)


def best_compose(outcomes: Outcomes, rows: Sequence[int], current: tuple[float, ...], max_longer: float = MAX_LONGER) -> tuple[float, ...]:
    """The setting answering most of `rows` right among those whose answers are at most `max_longer` times
    as long as `current`'s (the defaults); of equals, the shortest."""

    def right(k: tuple[float, ...]) -> int:
        return sum(outcomes[k][i][0] for i in rows)

    def chars(k: tuple[float, ...]) -> int:
        return sum(outcomes[k][i][1] for i in rows)

    allowed = [k for k in outcomes if chars(k) <= max_longer * chars(current)]
    return max(allowed, key=lambda k: (right(k), -chars(k)))


def cross_validated_compose(outcomes: Outcomes, groups: Sequence[str], current: tuple[float, ...], folds: int = FOLDS) -> tuple[float, list[tuple[float, ...]]]:
    """Accuracy when each fold of documents (`groups`: each question's) is answered with the setting best
    on the other folds, and the setting each fold chose."""
    order = source_folds(groups, folds)
    right, chosen = 0, []
    for k in range(folds):
        fit = [i for i, g in enumerate(groups) if order[g] != k]
        test = [i for i, g in enumerate(groups) if order[g] == k]
        if not test:
            continue
        best = best_compose(outcomes, fit, current)
        chosen.append(best)
        right += sum(outcomes[best][i][0] for i in test)
    return right / max(1, len(groups)), chosen


def fit_logistic(rows: Sequence[dict[str, float]], labels: Sequence[int], names: Sequence[str], c: float, balanced: bool = False) -> Logistic:
    """A standardised L2 logistic regression (scikit-learn), stored as plain numbers."""
    from sklearn.linear_model import LogisticRegression

    x = _matrix(rows, names)
    y = np.asarray(labels)
    mean, scale = _standard(x)
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if balanced else None)
    model.fit((x - mean) / scale, y)
    return Logistic(tuple(names), tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]), tuple(float(m) for m in mean), tuple(float(s) for s in scale))


def fit_signed_logistic(
    rows: Sequence[dict[str, float]], labels: Sequence[int], names: Sequence[str], c: float, signs: Mapping[str, int]
) -> Logistic:
    """The balanced L2 logistic regression of `fit_logistic`, with each weight in `signs` kept at or above
    (1) or at or below (-1) zero (scipy L-BFGS-B on the same objective as scikit-learn's)."""
    from scipy.optimize import minimize

    x = _matrix(rows, names)
    y = np.asarray(labels, dtype=np.float64)
    mean, scale = _standard(x)
    z = (x - mean) / scale
    n, positives = len(y), float(y.sum())
    weight = np.where(y == 1, n / (2 * max(positives, 1.0)), n / (2 * max(n - positives, 1.0)))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        s = z @ w + b
        logloss = y * np.logaddexp(0.0, -s) + (1 - y) * np.logaddexp(0.0, s)
        residual = (1.0 / (1.0 + np.exp(-s)) - y) * weight
        return 0.5 * float(w @ w) + c * float((weight * logloss).sum()), np.append(w + c * (z.T @ residual), c * residual.sum())

    bounds = [(0.0, None) if signs.get(name) == 1 else (None, 0.0) if signs.get(name) == -1 else (None, None) for name in names]
    params = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B", bounds=bounds + [(None, None)]).x
    return Logistic(tuple(names), tuple(float(v) for v in params[:-1]), float(params[-1]), tuple(float(m) for m in mean), tuple(float(v) for v in scale))


def fit_trees(rows: Sequence[dict[str, float]], labels: Sequence[int], names: Sequence[str], seed: int = 0) -> Trees:
    """Gradient-boosted trees (scikit-learn, log-loss), stored as plain numbers; the stored model is
    checked against scikit-learn's own probabilities on the training rows."""
    from sklearn.ensemble import GradientBoostingClassifier

    x = _matrix(rows, names)
    y = np.asarray(labels)
    model = GradientBoostingClassifier(
        max_depth=TREE_DEPTH, n_estimators=TREE_COUNT, learning_rate=TREE_RATE, min_samples_leaf=TREE_MIN_LEAF, random_state=seed
    ).fit(x, y)
    trees = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        trees.append(tuple(
            (int(t.feature[i]) if t.children_left[i] >= 0 else -1, float(t.threshold[i]), int(t.children_left[i]), int(t.children_right[i]),
             float(t.value[i][0][0]) * model.learning_rate)
            for i in range(t.node_count)
        ))
    raw = model.decision_function(x)
    first = Trees(tuple(names), 0.0, tuple(trees))
    bias = float(raw[0] - first.log_odds(rows[0]))
    fitted = Trees(tuple(names), bias, tuple(trees))
    if not np.allclose([fitted.log_odds(r) for r in rows], raw, atol=1e-6):
        raise RuntimeError("梯度提升树的导出结果与 scikit-learn 不一致")
    return fitted


def fit_ranker(items: Sequence[ItemData], names: Sequence[str], c: float) -> Logistic:
    """A conditional logit (softmax over each question's candidates) for the ranking, then a
    one-feature logistic regression on its score for a calibrated probability per candidate."""
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    usable = [d for d in items if d.rows and any(d.labels)]
    mean, scale = _standard(np.vstack([_matrix(d.rows, names) for d in usable]))
    groups = [((_matrix(d.rows, names) - mean) / scale, np.asarray(d.labels, dtype=np.float64)) for d in usable]
    lam = 1.0 / c

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.5 * lam * float(w @ w), lam * w
        for z, y in groups:
            s = z @ w
            s = s - s.max()
            p = np.exp(s)
            p /= p.sum()
            t = y / y.sum()
            total -= float((t * np.log(p + 1e-12)).sum())
            grad = grad + z.T @ (p - t)
        return total, grad

    w = minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B").x
    every = [d for d in items if d.rows]
    scores = np.concatenate([((_matrix(d.rows, names) - mean) / scale) @ w for d in every])
    labels = np.concatenate([np.asarray(d.labels) for d in every])
    platt = LogisticRegression(C=100.0, max_iter=2000).fit(scores.reshape(-1, 1), labels)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return Logistic(tuple(names), tuple(float(v) * a for v in w), b, tuple(float(m) for m in mean), tuple(float(v) for v in scale))


def with_sentence_probabilities(data: ItemData, sentence: Logistic) -> dict[str, float]:
    """The question features with the probability-dependent ones recomputed for a sentence model."""
    probs = sorted(((sentence.probability(r), r) for r in data.rows), key=lambda pr: -pr[0])
    features = dict(data.question)
    best = probs[0][0] if probs else 0.0
    second = probs[1][0] if len(probs) > 1 else 0.0
    features.update({"best_p": best, "second_p": second, "margin": best - second, "best_shape_match": shape_match(probs[0][1]) if probs else 0.0})
    return features


def top1_accuracy(items: Sequence[ItemData], sentence: Logistic) -> float:
    scored = [d for d in items if d.stage == "model" and d.answerable and any(d.labels)]
    if not scored:
        return 0.0
    hits = 0
    for d in scored:
        probs = [sentence.probability(r) for r in d.rows]
        hits += d.labels[int(np.argmax(probs))]
    return hits / len(scored)


def choose_c(train: Sequence[ItemData]) -> float:
    """The regularisation that ranks the right sentence first most often (inner grouped folds)."""
    groups = sorted({d.group for d in train})
    best_c, best = C_GRID[0], -1.0
    for c in C_GRID:
        correct = 0.0
        for k in range(3):
            held = {g for i, g in enumerate(groups) if i % 3 == k}
            fit_on = [d for d in train if d.group not in held]
            [r for d in fit_on for r in d.rows]
            labels = [y for d in fit_on for y in d.labels]
            if sum(labels) == 0 or sum(labels) == len(labels):
                continue
            model = fit_ranker(fit_on, SENTENCE_FEATURES, c)
            correct += top1_accuracy([d for d in train if d.group in held], model)
        if correct > best:
            best_c, best = c, correct
    return best_c


def fit_models(train: Sequence[ItemData], c: float | None = None, answerable_c: float | None = None) -> tuple[Logistic, Blend, float]:
    """Sentence model, answerability model and the refusal threshold from the training items."""
    c = c or choose_c(train)
    answerable_c = answerable_c or choose_answerable_c(train, c)
    sentence = fit_ranker(train, SENTENCE_FEATURES, c)
    model_items = [d for d in train if d.stage == "model"]
    qrows = [with_sentence_probabilities(d, sentence) for d in model_items]
    qlabels = [int(d.answerable) for d in model_items]
    if len(set(qlabels)) < 2:
        raise ValueError("训练集中需要同时有可回答和应拒答的问题")
    linear = fit_signed_logistic(qrows, qlabels, ANSWERABLE_FEATURES, answerable_c, QUESTION_FEATURE_SIGNS)
    trees = fit_trees(qrows, qlabels, QUESTION_FEATURES)
    answerable = Blend((linear, trees), (LINEAR_SHARE, 1 - LINEAR_SHARE))
    threshold = refusal_threshold([answerable.probability(q) for q, y in zip(qrows, qlabels) if y])
    return sentence, answerable, threshold


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The chance that an answerable question scores above one to refuse (ties count half)."""
    if not positives or not negatives:
        return 0.5
    p, n = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def choose_answerable_c(train: Sequence[ItemData], c: float, folds: int = FOLDS) -> float:
    """The regularisation of the answerability model (with every product of two question features, it
    has many more weights than questions to refuse) that separates answerable questions from those to
    refuse best out of fold (AUC over grouped folds of `train`; the smaller on a tie)."""
    order = fold_of_groups(train, folds)
    scores: dict[float, tuple[list[float], list[float]]] = {value: ([], []) for value in ANSWERABLE_C_GRID}
    for k in range(folds):
        inner = [d for d in train if order[d.group] != k and d.stage == "model"]
        rest = [d for d in train if order[d.group] == k and d.stage == "model"]
        labels = [int(d.answerable) for d in inner]
        if not rest or len(set(labels)) < 2:
            continue
        sentence = fit_ranker(inner, SENTENCE_FEATURES, c)
        rows = [with_sentence_probabilities(d, sentence) for d in inner]
        held = [(with_sentence_probabilities(d, sentence), d.answerable) for d in rest]
        for value in ANSWERABLE_C_GRID:
            model = fit_signed_logistic(rows, labels, ANSWERABLE_FEATURES, value, QUESTION_FEATURE_SIGNS)
            for row, answerable in held:
                scores[value][0 if answerable else 1].append(model.probability(row))
    return max(ANSWERABLE_C_GRID, key=lambda value: (round(auc(*scores[value]), 4), -value))


def refusal_threshold(answerable_probabilities: Sequence[float], max_false: float = MAX_FALSE_REFUSALS) -> float:
    """The largest threshold that refuses at most `max_false` of the answerable questions."""
    ordered = sorted(answerable_probabilities)
    if not ordered:
        return 0.5
    allowed = int(np.floor(max_false * len(ordered)))
    return float(ordered[allowed]) - 1e-6 if allowed < len(ordered) else 0.0


def fold_of_groups(data: Sequence[ItemData], folds: int = FOLDS) -> dict[str, int]:
    """The fold of each document group (stable: by the hash of the group name)."""
    return source_folds((d.group for d in data), folds)


def out_of_fold_threshold(train: Sequence[ItemData], c: float, folds: int = FOLDS, answerable_c: float | None = None) -> float:
    """The refusal threshold from out-of-fold probabilities within `train`, chosen the way the final
    model's is (in-sample probabilities are optimistic: a threshold set on them refuses more later)."""
    order = fold_of_groups(train, folds)
    probabilities: list[float] = []
    for k in range(folds):
        inner = [d for d in train if order[d.group] != k]
        rest = [d for d in train if order[d.group] == k and d.stage == "model" and d.answerable]
        if not rest:
            continue
        sentence, answerable, _ = fit_models(inner, c, answerable_c)
        probabilities.extend(answerable.probability(with_sentence_probabilities(d, sentence)) for d in rest)
    return refusal_threshold(probabilities)


def cross_validate(
    assistants: Sequence,
    data: Sequence[ItemData],
    sets: Mapping[str, Sequence[EvalItem]],
    folds: int = FOLDS,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict], float, dict]:
    """Cross-validated end-to-end metrics per set; the refusal threshold from out-of-fold probabilities."""
    order = fold_of_groups(data, folds)
    originals = [a.model for a in assistants]
    original = originals[0]
    oof: list[tuple[float, bool]] = []
    results_by_set: dict[str, list] = {name: [] for name in sets}
    top1: list[float] = []
    try:
        for k in range(folds):
            train = [d for d in data if order[d.group] != k]
            test = [d for d in data if order[d.group] == k]
            if not test:
                continue
            c = choose_c(train)
            answerable_c = choose_answerable_c(train, c, folds)
            sentence, answerable, _ = fit_models(train, c, answerable_c)
            threshold = out_of_fold_threshold(train, c, folds, answerable_c)
            top1.append(top1_accuracy(test, sentence) * max(1, sum(1 for d in test if d.stage == "model" and d.answerable and any(d.labels))))
            for d in test:
                if d.stage == "model":
                    oof.append((answerable.probability(with_sentence_probabilities(d, sentence)), d.answerable))
            fold_model = AnswerModel(sentence, answerable, threshold, original.params, f"fold-{k}")
            predictors = []
            for assistant in assistants:
                assistant.model = fold_model
                predictors.append(system_predictor(assistant))
            for d in test:
                _, rows = run_system([d.item], predictors[d.setup])
                results_by_set[d.set_name].extend(rows)
            if progress:
                progress(f"第 {k + 1}/{folds} 折完成")
    finally:
        for assistant, model in zip(assistants, originals):
            assistant.model = model
    metrics = {name: summarize(sets[name], rows) for name, rows in results_by_set.items() if rows}
    answerable_p = [p for p, y in oof if y]
    threshold = refusal_threshold(answerable_p)
    scored_total = sum(1 for d in data if d.stage == "model" and d.answerable and any(d.labels))
    outcomes = {
        name: [{"id": r.id, "correct": r.correct, "refused": r.refused, "rank": r.rank} for r in rows] for name, rows in results_by_set.items()
    }
    extra = {"top1_selection": round(sum(top1) / max(1, scored_total), 4), "oof_threshold": threshold, "cv_outcomes": outcomes}
    return metrics, threshold, extra


def calibrate(
    setups: Sequence[tuple[Any, dict[str, Path], dict[str, Path]]],
    out_model: Path,
    out_report: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Extract, cross-validate, fit on everything, evaluate held-out sets, write the model and a report.

    `setups`: (components, training sets, held-out sets) per index the sets are asked against."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    assistants = [components.assistant for components, _, _ in setups]
    sets: dict[str, list[EvalItem]] = {}
    data: list[ItemData] = []
    for n, (components, training, _) in enumerate(setups):
        loaded = {name: load_dataset(path) for name, path in training.items() if Path(path).exists()}
        sets.update(loaded)
        say(f"提取特征：{sum(len(v) for v in loaded.values())} 题（{components.settings.index_dir.name}）")
        data.extend(extract(assistants[n], loaded, setup=n))
    say("交叉验证")
    cv_metrics, threshold, extra = cross_validate(assistants, data, sets, progress=say)
    c = choose_c(data)
    answerable_c = choose_answerable_c(data, c)
    sentence, answerable, _ = fit_models(data, c, answerable_c)
    model = AnswerModel(sentence, answerable, threshold, assistants[0].model.params, str(out_model))
    held: dict[str, dict] = {}
    originals = [a.model for a in assistants]
    try:
        for n, (_, _, held_out) in enumerate(setups):
            assistants[n].model = model
            for name, path in held_out.items():
                if Path(path).exists():
                    metrics, _ = run_system(load_dataset(path), system_predictor(assistants[n]))
                    held[name] = metrics
    finally:
        for assistant, original in zip(assistants, originals):
            assistant.model = original
    semantic = {components.settings.answer.semantic for components, _, _ in setups}
    report = {
        "trained_on": {name: len(items) for name, items in sets.items()},
        "stages": {stage: sum(1 for d in data if d.stage == stage) for stage in ("guard", "article", "model")},
        "cross_validated": cv_metrics,
        "held_out": held,
        "refuse_below": threshold,
        "max_false_refusals": MAX_FALSE_REFUSALS,
        "sentence_c": c,
        "answerable_c": answerable_c,
        "folds": FOLDS,
        "semantic": ",".join(sorted(semantic)),
        "seconds": round(time.perf_counter() - started, 1),
        **extra,
    }
    payload = {
        "about": "Fitted by rag/calibrate.py (make calibrate). Logistic weights over standardised features of rag/evidence.py "
        "(answerable: that linear model blended with gradient-boosted trees on the log-odds); "
        "refuse_below keeps cross-validated false refusals at or below max_false_refusals.",
        "sentence": sentence.to_dict(),
        "answerable": answerable.to_dict(),
        "refuse_below": threshold,
        "params": model.params.to_dict(),
        "report": {k: v for k, v in report.items() if k != "cv_outcomes"},  # per-question outcomes: in the results file only
    }
    write_atomically(out_model, json.dumps(payload, ensure_ascii=False, indent=1))
    if out_report is not None:
        out_report.parent.mkdir(parents=True, exist_ok=True)
        out_report.write_text(report_markdown(report), encoding="utf-8")
    return report


METRICS = (
    ("answer_accuracy", "回答准确率"),
    ("false_refusal_rate", "误拒率"),
    ("refusal_recall", "拒答召回率"),
    ("citation_precision", "引文精确率"),
    ("retrieval.hit@1", "hit@1"),
    ("retrieval.hit@5", "hit@5"),
)


def report_markdown(report: dict) -> str:
    from rag.evaluation import metric_value

    lines = [
        f"训练集：{'，'.join(f'{k} {v} 题' for k, v in report['trained_on'].items())}；{report['folds']} 折交叉验证（按文件分组）；"
        f"句子相似度：{report['semantic']}；拒答阈值 {report['refuse_below']:.3f}（交叉验证误拒率上限 {report['max_false_refusals']:.0%}）；"
        f"首选句正确率（交叉验证）{report.get('top1_selection', 0):.3f}",
        "",
        "| 题集 | 方式 | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for kind, title in (("cross_validated", "交叉验证"), ("held_out", "留出（未参与训练）")):
        for name, metrics in report[kind].items():
            cells = [f"{metric_value(metrics, key):.3f}" for key, _ in METRICS]
            lines.append(f"| {name} | {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the support checker


@dataclass(frozen=True)
class SupportPair:
    id: str
    source: str
    passage: str
    sentence: str
    supported: bool
    kind: str
    evidence: bool = False  # the passage is the excerpt a checked sentence was written from
    context: str | None = None  # title and section of the indexed passage, once placed


def load_pairs(*paths: Path) -> list[SupportPair]:
    """Labelled (sentence, passage) pairs: `passage`/`label` supported|contradicted, or a checked
    sentence's `evidence`/`label` faithful|altered (as `rag verify` sets are written)."""
    pairs: list[SupportPair] = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            passage = raw.get("passage") or raw.get("evidence", "")
            supported = raw["label"] in ("supported", "faithful")
            pairs.append(SupportPair(raw["id"], raw["source"], passage, raw["sentence"], supported, raw.get("kind", ""), "passage" not in raw))
    return pairs


def _plain(text: str) -> str:
    return re.sub(r"[\W_]", "", fold(text))


def in_place(pairs: Sequence[SupportPair], snapshot) -> list[SupportPair]:
    """Each checked sentence judged as `rag verify` judges it: against the whole indexed passage that
    holds its excerpt (with that passage's title and section), not the excerpt alone. An excerpt found
    in no passage of its document (or split across two) stays as written."""
    passages: dict[str, list[tuple[Any, str]]] = {}  # each document's hits with their plain text, made once

    def placed(pair: SupportPair) -> SupportPair:
        if not pair.evidence:
            return pair
        if pair.source not in passages:
            hits = [snapshot.hit(row) for row in snapshot.rows_of(pair.source)]
            passages[pair.source] = [(hit, _plain(hit.text)) for hit in hits]
        wanted = [w for w in (_plain(s) for s in split_sentences(pair.passage)) if len(w) >= 8] or [_plain(pair.passage)]
        for hit, text in passages[pair.source]:
            if all(w in text for w in wanted):
                return replace(pair, passage=hit.text, context=f"{hit.title} {hit.section}")
        return pair

    return [placed(pair) for pair in pairs]


def support_rows(
    pairs: Sequence[SupportPair], similarity, titles: dict[str, str] | None = None, inputs: list[tuple[str, str] | None] | None = None
) -> list[dict[str, float]]:
    """The support features of each pair; the passage is given with its title (and section, once placed), as in use.
    `inputs`, when given, receives what the pair reader reads of each pair, in the same pass (None: not
    read, a quotation); the rows are the same either way (the reader's feature stays 0)."""
    from rag.citations import support_features

    titles = titles or {}
    rows: list[dict[str, float]] = []
    for p in pairs:
        seen: list[tuple[str, str]] = []

        def record(batch: Sequence[tuple[str, str]], seen: list[tuple[str, str]] = seen) -> list[float]:
            seen.extend(batch)
            return [0.0] * len(batch)

        context = titles.get(p.source, "") if p.context is None else p.context
        rows.append(support_features(p.sentence, p.passage, context, similarity, reader=record if inputs is not None else None))
        if inputs is not None:
            inputs.append(seen[0] if seen else None)
    return rows


def reader_inputs(pairs: Sequence[SupportPair], titles: dict[str, str] | None = None) -> list[tuple[str, str] | None]:
    """What the pair reader reads of each pair, as support_features hands it over (None: not read, a quotation)."""
    inputs: list[tuple[str, str] | None] = []
    support_rows(pairs, None, titles, inputs)
    return inputs


def fit_readers(
    inputs: Sequence[tuple[str, str] | None],
    labels: Sequence[int],
    sources: Sequence[str],
    options: Any = None,
    cache: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    folds: int = FOLDS,
) -> tuple[list[Any], Any]:
    """Pair readers (rag.reader) fitted without each fold of documents (`source_folds`), and one on every
    pair; pairs not read (None) are left out. Each fit is kept in `cache` under a hash of its pairs,
    labels and options, so a rerun on the same pairs reads it back instead of fitting again."""
    from rag.reader import FitOptions, Reader, read_packed

    options = options or FitOptions()
    packed = read_packed()
    fold_of = source_folds(sources, folds)

    def fitted(name: str, chosen: list[int]) -> Any:
        pairs = [x for x in (inputs[i] for i in chosen) if x is not None]
        ys = [labels[i] for i in chosen]
        key = hashlib.sha1(json.dumps([pairs, ys, vars(options), len(packed.buffer)], ensure_ascii=False).encode()).hexdigest()[:16]
        path = cache / f"reader-{key}.npz" if cache is not None else None
        if path is not None and path.exists():
            return Reader.load(path, packed)
        reader = Reader.fitted(pairs, ys, options, packed, (lambda done, total: progress(name, done, total)) if progress else None)
        if path is not None:
            reader.save(path)
        return reader

    read = [i for i, x in enumerate(inputs) if x is not None]
    fold_readers = [fitted(f"第 {k + 1} 折", [i for i in read if fold_of[sources[i]] != k]) for k in range(folds)]
    return fold_readers, fitted("全部", read)


def reader_logits(reader: Any, inputs: Sequence[tuple[str, str] | None]) -> list[float]:
    """The reader's logit of each read pair; 0 for a pair not read (as support_features gives it)."""
    read = [i for i, x in enumerate(inputs) if x is not None]
    out = [0.0] * len(inputs)
    for i, value in zip(read, reader.logits([inputs[i] for i in read])):
        out[i] = value
    return out


def out_of_fold_logits(readers: Sequence[Any], inputs: Sequence[tuple[str, str] | None], sources: Sequence[str], folds: int = FOLDS) -> list[float]:
    """Each pair's logit from the reader fitted without its fold (`fit_readers`); 0 for a pair not read."""
    fold_of = source_folds(sources, folds)
    out = [0.0] * len(inputs)
    for k, reader in enumerate(readers):
        mine = [i for i in range(len(inputs)) if fold_of[sources[i]] == k]
        for i, value in zip(mine, reader_logits(reader, [inputs[i] for i in mine])):
            out[i] = value
    return out


def source_folds(sources: Iterable[str], folds: int = FOLDS) -> dict[str, int]:
    """Each document's fold, by a hash of its name (the same in every run)."""
    ordered = sorted(set(sources), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return {s: i % folds for i, s in enumerate(ordered)}


def _raw_weights(model: Logistic) -> dict[str, float]:
    """Weights over the raw features (the standardisation folded in)."""
    weights = {"bias": model.bias - sum(w * m / s for w, m, s in zip(model.weights, model.mean, model.scale))}
    weights.update({n: w / s for n, w, s in zip(model.names, model.weights, model.scale)})
    return weights


def _hard(row: dict[str, float]) -> bool:
    from rag.citations import HARD_MISMATCHES

    return any(row.get(n) for n in HARD_MISMATCHES)


def _pass_threshold(probabilities: Sequence[float], labels: Sequence[int], rows: Sequence[dict[str, float]], max_false: float) -> float:
    """The lowest probability that keeps altered pairs (without a hard mismatch, which never passes) at or below `max_false`."""
    altered = sorted((q for q, y, r in zip(probabilities, labels, rows) if not y and not _hard(r)), reverse=True)
    if not altered:
        return 0.5
    allowed = int(np.floor(max_false * (len(labels) - sum(labels))))
    return float(altered[allowed]) + 1e-6 if allowed < len(altered) else 0.0


def fit_support(
    pairs: Sequence[SupportPair],
    similarity,
    titles: dict[str, str] | None = None,
    max_false: float = 0.10,
    folds: int = FOLDS,
    rows: Sequence[dict[str, float]] | None = None,
) -> tuple[dict, dict]:
    """Logistic weights of the support checker and a threshold, by cross-validation grouped by document.

    The passage is given with its document's title, as in use. The threshold keeps cross-validated
    altered sentences judged supported at or below `max_false`."""
    from rag.citations import FEATURES

    rows = list(rows) if rows is not None else support_rows(pairs, similarity, titles)
    labels = [int(p.supported) for p in pairs]
    names = [n for n in FEATURES if n != "bias"]
    fold_of = source_folds((p.source for p in pairs), folds)
    oof = [0.0] * len(pairs)
    for k in range(folds):
        train = [i for i, p in enumerate(pairs) if fold_of[p.source] != k]
        test = [i for i, p in enumerate(pairs) if fold_of[p.source] == k]
        model = fit_logistic([rows[i] for i in train], [labels[i] for i in train], names, 1.0)
        for i in test:
            oof[i] = model.probability(rows[i])
    threshold = _pass_threshold(oof, labels, rows, max_false)
    passed = [oof[i] >= threshold and not _hard(rows[i]) for i in range(len(pairs))]
    faithful = [passed[i] for i in range(len(pairs)) if labels[i]]
    false = [passed[i] for i in range(len(pairs)) if not labels[i]]
    by_kind: dict[str, list[bool]] = {}
    for p, ok in zip(pairs, passed):
        by_kind.setdefault(p.kind, []).append(ok)
    final = fit_logistic(rows, labels, names, 1.0)
    metrics = {
        "pairs": len(pairs),
        "cv_faithful_supported": round(sum(faithful) / max(1, len(faithful)), 4),
        "cv_altered_supported": round(sum(false) / max(1, len(false)), 4),
        "cv_by_kind_supported": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
        "threshold": threshold,
    }
    return {"weights": _raw_weights(final), "threshold": threshold}, metrics


def evaluate_verify(verifier, path: Path) -> dict:
    """`rag verify` on labelled sentences: the share of faithful ones supported and of altered ones supported."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    by_kind: dict[str, list[str]] = {}
    faithful: list[bool] = []
    altered: list[bool] = []
    took: list[float] = []
    for row in rows:
        started = time.perf_counter()
        verdict = verifier.verify_sentence(row["sentence"]).verdict
        took.append(time.perf_counter() - started)
        by_kind.setdefault(row.get("kind", ""), []).append(verdict)
        (faithful if row["label"] in ("faithful", "supported") else altered).append(verdict == "supported")
    return {
        "sentences": len(rows),
        "faithful_supported": round(sum(faithful) / max(1, len(faithful)), 4),
        "altered_supported": round(sum(altered) / max(1, len(altered)), 4),
        "verdicts_by_kind": {k: {v: vs.count(v) for v in sorted(set(vs))} for k, vs in sorted(by_kind.items())},
        "p50_ms": round(float(np.median(took)) * 1000, 1) if took else 0.0,
    }


Judged = list[tuple[SupportPair, list[tuple[Any, Any]]]]  # a sentence and its passages' (Support, Hit)


def verify_threshold(judged: Judged, max_false: float = 0.10) -> tuple[float, dict]:
    """The lowest `rag verify` score that keeps the altered sentences judged supported at or below `max_false`."""
    candidates = sorted({round(s.score, 4) for _, js in judged for s, _ in js if s.supported} | {0.0})
    scored = supported_up_to(judged)
    best_t, best = 1.0, None
    for t in candidates:
        faithful, rate = set_rates(scored, t)
        if rate <= max_false:
            best_t = t
            best = {"faithful_supported": round(faithful, 4), "altered_supported": round(rate, 4)}
            break
    return best_t, {"sentences": len(judged), "threshold": best_t, **(best or {})}


SET_GOALS = (0.90, 0.10)  # issue 14, on each set of checked sentences: faithful judged supported at least, altered at most


def supported_up_to(judged: Judged) -> list[tuple[bool, float]]:
    """Each sentence's label with the highest `rag verify` threshold at which it is still judged supported
    (-1: at none); a sentence is supported at every threshold up to that score (`decide`)."""
    from rag.verify import decide

    out: list[tuple[bool, float]] = []
    for p, js in judged:
        verdict = decide(p.sentence, js, 0.0)
        out.append((p.supported, verdict.score if verdict.verdict == "supported" else -1.0))
    return out


def set_rates(scored: Sequence[tuple[bool, float]], threshold: float) -> tuple[float, float]:
    """The shares of faithful and of altered sentences judged supported at `threshold` (`supported_up_to`)."""
    faithful = [s >= threshold for good, s in scored if good]
    altered = [s >= threshold for good, s in scored if not good]
    return sum(faithful) / max(1, len(faithful)), sum(altered) / max(1, len(altered))


def _summary(rates: Mapping[str, tuple[float, float]], goals: tuple[float, float]) -> dict:
    """How many sets' (faithful, altered) rates meet both goals, their means and each set's rates."""
    n = max(1, len(rates))
    return {
        "sets_meeting_goals": sum(1 for f, a in rates.values() if f >= goals[0] and a <= goals[1]),
        "sets": len(rates),
        "faithful_supported": round(sum(f for f, _ in rates.values()) / n, 4),
        "altered_supported": round(sum(a for _, a in rates.values()) / n, 4),
        "by_set": {name: {"faithful_supported": round(f, 4), "altered_supported": round(a, 4)} for name, (f, a) in rates.items()},
    }


def _rates_by_set(sets: Mapping[str, Sequence[tuple[bool, float]]], threshold: float, goals: tuple[float, float]) -> dict:
    """Each set's rates at `threshold`, their means and how many sets meet both goals."""
    return {"threshold": threshold, **_summary({name: set_rates(scored, threshold) for name, scored in sets.items()}, goals)}


def threshold_by_sets(
    sets: Mapping[str, Sequence[tuple[bool, float]]], goals: tuple[float, float] = SET_GOALS, fallback: float | None = None
) -> tuple[float, dict]:
    """The `rag verify` threshold that meets both goals on the most sets of checked sentences (`supported_up_to`
    of sets each written by one hand, never fitted on, judged by the fitted checker); between equals, the one
    whose mean rates lie farthest inside the nearer goal. Sentences about the documents the checker was fitted
    on, written by someone else: the case `rag verify` meets in use. When no threshold meets the goals on half
    the sets, the count tells nothing: `fallback` (the threshold chosen otherwise), when given, is kept."""
    candidates = sorted({round(s, 4) for scored in sets.values() for _, s in scored if s >= 0} | {0.0})
    best: tuple[tuple[int, float], dict] | None = None
    for t in candidates:
        at = _rates_by_set(sets, t, goals)
        key = (at["sets_meeting_goals"], min(at["faithful_supported"] - goals[0], goals[1] - at["altered_supported"]))
        if best is None or key > best[0]:
            best = (key, at)
    assert best is not None
    chosen = best[1]
    if fallback is not None and 2 * chosen["sets_meeting_goals"] < len(sets):
        chosen = {**_rates_by_set(sets, fallback, goals), "fallback": True}
    return chosen["threshold"], chosen


def leave_one_set_out(
    sets: Mapping[str, Sequence[tuple[bool, float]]], goals: tuple[float, float] = SET_GOALS, fallback: float | None = None
) -> dict:
    """`threshold_by_sets` cross-validated by set: each set judged at the threshold chosen on the others."""
    thresholds = {name: threshold_by_sets({n: s for n, s in sets.items() if n != name}, goals, fallback)[0] for name in sets}
    summary = _summary({name: set_rates(scored, thresholds[name]) for name, scored in sets.items()}, goals)
    summary["by_set"] = {name: {"threshold": thresholds[name], **rates} for name, rates in summary["by_set"].items()}
    return summary


def judge_sentences(verifier, pairs: Sequence[SupportPair]) -> Judged:
    """Each checked sentence with the verdicts on the passages retrieval finds for it (not the passage
    it was written from), as `rag verify` judges it."""
    return [(p, verifier.judge_passages(p.sentence)) for p in pairs]


CHECKED_SAMPLE = 24  # cached judgements judged again before they are used


def cached_judgements(
    saved: Path,
    pairs: Sequence[SupportPair],
    verifier_of: Callable[[SupportPair], Any],
    rejudge: bool = False,
    sample: int = CHECKED_SAMPLE,
    progress: Callable[[Any, str], Any] = lambda items, what: items,
) -> Judged:
    """`judge_sentences` with each sentence judged by the verifier of its fold (`verifier_of`), kept in
    `saved`. Read back when a sample of the kept judgements, judged again now, finds the same passages
    with the same features (the checker's code, its readers or the index may have changed since);
    otherwise, or with `rejudge`, every sentence is judged again and `saved` rewritten. `progress` wraps
    the sentences judged (a bar)."""
    import pickle

    def judged_now(p: SupportPair) -> tuple[SupportPair, list]:
        return p, verifier_of(p).judge_passages(p.sentence)

    if saved.exists() and not rejudge:
        try:
            kept: Judged = pickle.loads(saved.read_bytes())
            chosen = sorted(kept, key=lambda j: hashlib.sha1(j[0].sentence.encode()).hexdigest())[:sample]
            same = [p for p, _ in kept] == list(pairs) and all(same_judgement(j, judged_now(j[0])) for j in progress(chosen, "抽查保存的判定"))
        except Exception:  # written by an older version of the classes: judged again
            same = False
        if same:
            return kept
        print(f"保存的判定（{saved.name}）与现在的不一致：全部重新判定", file=sys.stderr)
    judged: Judged = [judged_now(p) for p in progress(pairs, "判定训练句子")]
    write_atomically(saved, pickle.dumps(judged))
    return judged


def same_judgement(kept: tuple, fresh: tuple, tolerance: float = 1e-4) -> bool:
    """Whether two judgements of a sentence found the same passages with the same features."""
    (_, old), (_, new) = kept, fresh
    return len(old) == len(new) and all(
        h.chunk_id == g.chunk_id and s.features.keys() == t.features.keys() and all(abs(s.features[n] - t.features[n]) <= tolerance for n in s.features)
        for (s, h), (t, g) in zip(old, new)
    )


def _rejudged(items: Judged, model) -> Judged:
    """The same passages judged by another model (their features do not change)."""
    from rag.citations import judge

    return [(p, [(judge(s.features, model), h) for s, h in js]) for p, js in items]


def fold_support_model(pairs: Sequence[SupportPair], rows: Sequence[dict[str, float]], keep: Sequence[int], max_false: float = 0.10):
    """The support checker fitted on the pairs at `keep` (weights and pass threshold), as `fit_support`
    fits it on all."""
    from rag.citations import FEATURES, SupportModel

    names = [n for n in FEATURES if n != "bias"]
    labels = [int(pairs[i].supported) for i in keep]
    fitted = fit_logistic([rows[i] for i in keep], labels, names, 1.0)
    pass_at = _pass_threshold([fitted.probability(rows[i]) for i in keep], labels, [rows[i] for i in keep], max_false)
    return SupportModel(_raw_weights(fitted), pass_at)


def out_of_fold_judged(judged: Judged, pairs: Sequence[SupportPair], rows: Sequence[dict[str, float]], max_false: float = 0.10, folds: int = FOLDS) -> Judged:
    """Each sentence's passages judged by the checker fitted without its fold of documents: the scores a
    `rag verify` threshold is chosen on, as they fall for sentences the checker has not seen (on the
    sentences it was fitted on, altered ones score higher than on new ones)."""
    fold_of = source_folds([p.source for p in pairs] + [p.source for p, _ in judged], folds)
    out: Judged = []
    for k in range(folds):
        mine = [j for j in judged if fold_of[j[0].source] == k]
        if mine:
            model = fold_support_model(pairs, rows, [i for i, p in enumerate(pairs) if fold_of[p.source] != k], max_false)
            out += _rejudged(mine, model)
    return out


def cross_validate_verify(
    judged: Judged,
    pairs: Sequence[SupportPair],
    rows: Sequence[dict[str, float]],
    max_false: float = 0.10,
    folds: int = FOLDS,
) -> dict:
    """`rag verify` cross-validated by document: for each fold of documents, the checker is fitted on the
    other folds' pairs, its pass threshold on their pairs and its `rag verify` threshold on their
    sentences judged out of (inner) fold, as the shipped one is; the fold's sentences (`judge_sentences`)
    are judged with them. The passages' features do not depend on the weights: each sentence is
    retrieved and its features computed once."""
    from rag.verify import decide

    fold_of = source_folds([p.source for p in pairs] + [p.source for p, _ in judged], folds)
    outcomes: list[tuple[bool, bool]] = []
    for k in range(folds):
        train = [i for i, p in enumerate(pairs) if fold_of[p.source] != k]
        model = fold_support_model(pairs, rows, train, max_false)
        inner_pairs = [pairs[i] for i in train]
        inner_rows = [rows[i] for i in train]
        others = [j for j in judged if fold_of[j[0].source] != k]
        at, _ = verify_threshold(out_of_fold_judged(others, inner_pairs, inner_rows, max_false, folds), max_false)
        mine = _rejudged([j for j in judged if fold_of[j[0].source] == k], model)
        outcomes += [(p.supported, decide(p.sentence, js, at).verdict == "supported") for p, js in mine]
    faithful = [ok for good, ok in outcomes if good]
    altered = [ok for good, ok in outcomes if not good]
    return {
        "sentences": len(outcomes),
        "faithful_supported": round(sum(faithful) / max(1, len(faithful)), 4),
        "altered_supported": round(sum(altered) / max(1, len(altered)), 4),
    }
