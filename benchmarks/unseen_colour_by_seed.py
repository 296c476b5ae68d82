"""Why the accuracy benchmark's held-out colour answers move so much with the training seed.

`tv_align_shapes.py` keeps every arm's per-question results for each training seed. This reads them
(it trains nothing) for the held-out split's colour questions ("what color is the <shape>?" about a
colour-shape pair never seen in training) and breaks each arm and seed's accuracy down by the pair asked
and by whether the shape is alone in the clip (`colour_binding.clip_kind`). Where a run kept its answers,
the answers are also sorted as `colour_binding.answer_kind` sorts them, and the colours named for each
pair's lone shape are counted. Writes benchmarks/results/unseen_colour_by_seed.json.

    python benchmarks/unseen_colour_by_seed.py benchmarks/results/tv_align_shapes_small_3000_steps.json
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from vtok_shapes.dataset import load_vtok_shapes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402
from colour_binding import CLIP_FRAMES, CLIP_KINDS, KINDS, RESULTS, answer_kind, clip_kind  # noqa: E402


def colour_questions(source: dict) -> dict[int, dict]:
    """The held-out colour questions the benchmark asked, by their index among all its held-out questions
    (the same split, size and order it drew, checked against the categories it stored)."""
    data = load_vtok_shapes("heldout", num_samples=source["settings"]["num_questions"], num_frames=CLIP_FRAMES).with_format(None)
    rows = [data[i] for i in range(len(data))]
    if [row["category"] for row in rows] != source["question_categories"]["heldout"]:
        raise ValueError("The held-out questions drawn here are not the ones the benchmark stored; was the dataset changed since?")
    return {i: row for i, row in enumerate(rows) if row["category"] == "color"}


def accuracy_by_clip_kind(hits: list[int], questions: list[dict]) -> dict:
    """Accuracy and number of questions over all of `questions` and per `CLIP_KINDS`."""
    groups = {"all": hits, **{clips: [hit for hit, question in zip(hits, questions) if clip_kind(question) == clips] for clips in CLIP_KINDS}}
    return {group: {"accuracy": round(float(np.mean(values)), 4) if values else None, "num_questions": len(values)}
            for group, values in groups.items()}  # fmt: skip


def breakdown(run: dict, questions: dict[int, dict]) -> dict:
    """One seed's held-out colour accuracy, overall and per colour-shape pair, each per clip kind, and what
    its answers named when the run kept them."""
    hits = {i: run["hits"]["heldout"][i] for i in questions}
    of_pair = {}  # "red triangle" -> the indices of its questions
    for i, question in questions.items():
        of_pair.setdefault(f"{question['color']} {question['shape']}", []).append(i)
    result = {"seed": run["seed"], "accuracy": accuracy_by_clip_kind(list(hits.values()), list(questions.values())),
              "by_pair": {pair: accuracy_by_clip_kind([hits[i] for i in of_pair[pair]], [questions[i] for i in of_pair[pair]])
                          for pair in sorted(of_pair)}}  # fmt: skip
    if "answers" in run:
        kinds = {clips: Counter() for clips in CLIP_KINDS}
        for i, question in questions.items():
            kinds[clip_kind(question)][answer_kind(run["answers"]["heldout"][i], question)] += 1
        result["answer_kinds"] = {clips: {kind: counter[kind] for kind in KINDS} for clips, counter in kinds.items()}
        # what it names for a lone shape: the pair's own colour, or one the shape had in training (an answer from the shape)
        result["named_when_alone"] = {pair: dict(Counter(run["answers"]["heldout"][i] for i in of_pair[pair] if clip_kind(questions[i]) == CLIP_KINDS[0]))
                                      for pair in sorted(of_pair)}  # fmt: skip
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a JSON written by benchmarks/tv_align_shapes.py")
    parser.add_argument("--output", default=str(RESULTS / "unseen_colour_by_seed.json"))
    args = parser.parse_args(argv)
    source = json.loads(Path(args.results).read_text())
    if "question_categories" not in source:
        raise ValueError(f"{args.results} stores no per-question results (written before they were kept): nothing to break down.")
    questions = colour_questions(source)
    results = {
        "benchmark": "Held-out colour accuracy of the accuracy benchmark's arms, per training seed (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "source": os.path.relpath(args.results),  # relative, so the JSON names no folder of this machine
        "num_colour_questions": len(questions),
        "arms": {arm: [breakdown(run, questions) for run in record["seeds"]] for arm, record in source["arms"].items()},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))
    for arm, runs in results["arms"].items():
        for run in runs:
            alone = ", ".join(f"{pair} {cells['shape alone']['accuracy']}" for pair, cells in run["by_pair"].items())
            print(f"{arm} seed {run['seed']}: all {run['accuracy']['all']['accuracy']:.2f}; the shape alone, per pair: {alone}")
    return results


if __name__ == "__main__":
    main()
