"""`make calibrate`: fit the answer model on the visible question sets (cross-validated), write it as data.

Each question set is asked against the index it was written for (`rag.evaluation.eval_setups`):
the sample report and the laws alone, or with other bureaus' reports for a user at 开封市审计局.
The indexes live under --index (one folder per setup). Writes rag/data/answer_model.json and
eval/results/calibration.md. A user refits on their own questions with --train NAME=FILE.jsonl
(asked against the last setup's index).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.calibrate import calibrate  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.evaluation import eval_setups, question_sets, setup_components  # noqa: E402
from rag.ingest import ingest_paths  # noqa: E402
from rag.lexicon import DATA_DIR  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", default=str(ROOT / "index-eval"), help="folder of the evaluation indexes")
    parser.add_argument("--train", action="append", default=[], help="NAME=FILE.jsonl: fit on this set too")
    parser.add_argument("--out", default=str(DATA_DIR / "answer_model.json"))
    parser.add_argument("--report", default=str(ROOT / "eval" / "results" / "calibration.md"))
    args = parser.parse_args()
    settings = load_settings()
    by_name = {s.name: s for s in question_sets(settings)}
    setups = []
    for n, setup in enumerate(eval_setups(settings)):
        components = setup_components(settings, setup, Path(args.index))
        summary = ingest_paths(components.index, setup.paths, show_bar=True)
        print(f"{setup.name}：{len(components.index.documents())} 个文件（失败 {summary.count('failed')}）")
        training = {name: by_name[name].path for name in setup.sets if by_name[name].role == "train"}
        held_out = {name: by_name[name].path for name in setup.sets if by_name[name].role == "held-out"}
        if n == len(eval_setups(settings)) - 1:
            for item in args.train:
                name, _, path = item.partition("=")
                training[name] = Path(path)
        setups.append((components, training, held_out))
    report = calibrate(setups, Path(args.out), Path(args.report), progress=print)
    print(Path(args.report).read_text(encoding="utf-8"))
    Path(args.report).with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    for components, _, _ in setups:
        components.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
