"""`make calibrate`: choose how an answer is composed around its best sentence, by cross-validation.

Three of the answer model's params (rag/params.py `AnswerParams`) decide which sentences join the
best one: `second_sentence_ratio` (a runner-up this likely relative to the best is given too),
`extra_gain` (a further sentence must add this share of the question's term weight) and `part_ratio`
(the best sentence of each part of a several-part question joins when this likely). Every question is
retrieved and scored once (`Assistant.analyze`); each setting of `rag.calibrate.COMPOSE_GRID` then
composes every answer from that analysis (`Assistant.answer_from`) and is scored by answer accuracy.

The setting is chosen on the training sets, by accuracy, among those whose answers are at most
`MAX_LONGER` times as long as with the code's defaults (more sentences nearly always hold more expected
strings, and a person reads the answer); the same choice made without each fold of documents gives the
cross-validated figure. The held-out sets are reported, never used to choose. Writes the chosen params
into the answer model (rag/data/answer_model.json, or RAG_ANSWER_MODEL) and eval/results/compose.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from rag.answer import Analysis, Assistant  # noqa: E402
from rag.calibrate import (  # noqa: E402
    COMPOSE_GRID,
    FOLDS,
    MAX_LONGER,
    analyzed,
    best_compose,
    compose_grid,
    compose_key,
    composed_outcome,
    cross_validated_compose,
    group_of,
    write_atomically,
)
from rag.config import load_settings  # noqa: E402
from rag.evaluation import EvalItem, indexed_setups  # noqa: E402
from rag.evidence import ANSWER_MODEL_FILE  # noqa: E402
from rag.params import AnswerParams  # noqa: E402


@dataclass
class Asked:
    role: str
    item: EvalItem
    assistant: Assistant
    analysis: Analysis
    notices: tuple[str, ...]


def collect(settings, index: Path) -> list[Asked]:
    """Every question of the training and held-out sets retrieved and scored once, against its index."""
    out: list[Asked] = []
    for setup, components, items in indexed_setups(settings, index):
        assistant = components.assistant
        for question_set, item in tqdm(items, desc=f"检索与打分 {setup.name}", unit="题"):
            analysis, notices = analyzed(assistant, item)
            out.append(Asked(question_set.role, item, assistant, analysis, tuple(notices)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "compose.md"))
    args = parser.parse_args()
    settings = load_settings()
    asked = collect(settings, Path(args.index))
    in_use = asked[0].assistant.model.params
    outcomes = {compose_key(p): [composed_outcome(a.assistant, a.analysis, a.notices, a.item, p) for a in asked]
                for p in tqdm(compose_grid(in_use), desc="组成方式", unit="组")}
    # lengths are held against the code's defaults, not the params in use: a refit does not lengthen answers again
    current = compose_key(AnswerParams())
    train = [i for i, a in enumerate(asked) if a.role == "train"]
    held = [i for i, a in enumerate(asked) if a.role == "held-out"]
    train_outcomes = {k: [v[i] for i in train] for k, v in outcomes.items()}
    cv, fold_choices = cross_validated_compose(train_outcomes, [group_of(asked[i].item, FOLDS) for i in train], current)
    chosen = best_compose(outcomes, train, current)

    def figures(k: tuple[float, ...]) -> dict:
        row = {"params": dict(zip(COMPOSE_GRID, k))}
        for name, rows in (("train", train), ("held_out", held)):
            row[name] = round(sum(outcomes[k][i][0] for i in rows) / max(1, len(rows)), 4)
            row[f"{name}_chars"] = round(sum(outcomes[k][i][1] for i in rows) / max(1, len(rows)), 1)
        return row

    report = {
        "grid": COMPOSE_GRID, "max_longer": MAX_LONGER, "questions": len(train), "held_out_questions": len(held),
        "defaults": figures(current), "in_use": figures(compose_key(in_use)), "chosen": figures(chosen),
        "cross_validated": {"chosen_procedure": round(cv, 4), "defaults": figures(current)["train"], "fold_choices": [dict(zip(COMPOSE_GRID, c)) for c in fold_choices]},
        "settings": [figures(k) for k in outcomes],
    }
    model_path = Path(settings.answer.model_file or ANSWER_MODEL_FILE)  # the model the answers were composed with
    payload = json.loads(model_path.read_text(encoding="utf-8"))
    payload["params"] = {**payload.get("params", {}), **dict(zip(COMPOSE_GRID, chosen))}
    payload["compose"] = {k: v for k, v in report.items() if k != "settings"}
    write_atomically(model_path, json.dumps(payload, ensure_ascii=False, indent=1))
    before, after = report["defaults"], report["chosen"]
    lines = [
        f"回答组成方式（{len(train)} 道训练题选定，{FOLDS} 折按文件分组交叉验证；留出 {len(held)} 题不参与选择；"
        f"答案平均长度至多为默认设置的 {MAX_LONGER} 倍）：第二句比例 / 增益 / 分问比例",
        "",
        "| 设置 | 参数 | 训练题准确率 | 交叉验证准确率 | 留出准确率 | 平均字数（训练 / 留出） |",
        "|---|---|---:|---:|---:|---:|",
        f"| 默认（rag/params.py） | {' / '.join(str(v) for v in current)} | {before['train']:.3f} | {before['train']:.3f} | {before['held_out']:.3f} | {before['train_chars']:.0f} / {before['held_out_chars']:.0f} |",
        f"| 选定 | {' / '.join(str(v) for v in chosen)} | {after['train']:.3f} | {cv:.3f} | {after['held_out']:.3f} | {after['train_chars']:.0f} / {after['held_out_chars']:.0f} |",
    ]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.report).with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
