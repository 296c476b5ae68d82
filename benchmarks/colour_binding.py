"""What a model answers to "what color is the <shape>?" when that colour and shape were never paired in
training (VTok-Shapes' held-out split), against the same question on the test split's trained pairs: the
right colour, another shape's colour in the same clip, or a colour that is nowhere in the clip. Counted
separately for clips where the asked shape is alone and clips with other shapes.

Why: on the held-out split VTok (23 tokens) reads colour far worse than all 8 frames (docs/benchmarks.md,
"The third run"). A colour absent from the clip is an answer from the training pairings; another shape's
colour means the model sees the colours but does not bind the unseen one to the shape. Writes
benchmarks/results/colour_binding.json.

    python benchmarks/colour_binding.py [--model checkpoints/vtok-tiny-shapes] [--splits test heldout] [--quick]
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from modeling_vtok.metrics_vtok import normalize_answer
from modeling_vtok.training_vtok import answer_questions, load_vtok_model
from processing_vtok import VTokDataCollator
from vtok_cli.checkpoint import BUNDLED_MODEL
from vtok_shapes.dataset import COLORS, SPLITS, load_vtok_shapes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CLIP_FRAMES = 8  # as the accuracy benchmark renders its clips
KINDS = ("right", "another shape's colour in the clip", "a colour absent from the clip", "not a colour")
CLIP_KINDS = ("shape alone", "with other shapes")


def clip_kind(question: dict) -> str:
    """Which of `CLIP_KINDS` a colour question's clip is: with the asked shape alone there is nothing to
    bind (naming the one colour in the clip is right); among other shapes the colour must be bound to it."""
    return CLIP_KINDS[0] if len(question["shapes"]) == 1 else CLIP_KINDS[1]


def answer_kind(answer: str, example: dict) -> str:
    """Which of `KINDS` an answer to a colour question is; the asked shape is `example["shapes"][0]`."""
    answer = normalize_answer(answer)
    if answer == normalize_answer(example["answer"]):
        return "right"
    if answer not in COLORS:
        return "not a colour"
    others = {shape["color"] for shape in example["shapes"][1:]}
    return "another shape's colour in the clip" if answer in others else "a colour absent from the clip"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL), help="a checkpoint folder (model/ and processor/)")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=["test", "heldout"])
    parser.add_argument("--num-questions", type=int, default=700, help="questions of every category drawn per split; the colour ones are asked")
    parser.add_argument("--quick", action="store_true", help="70 questions drawn (the test's size)")
    parser.add_argument("--output", default=str(RESULTS / "colour_binding.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.num_questions = 70
    if args.num_questions < 7:
        parser.error(f"--num-questions must be >= 7 (one per category), got {args.num_questions}")

    model, processor = load_vtok_model(args.model)
    collator = VTokDataCollator(processor)
    results = {
        "benchmark": "Colour binding on unseen colour-shape pairs (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "model": os.path.relpath(args.model),  # relative, so the JSON names no folder of this machine
        "num_colour_questions": {},
        "answers": {},
    }
    for split in args.splits:
        data = load_vtok_shapes(split, num_samples=args.num_questions, num_frames=CLIP_FRAMES)
        questions = [data[i] for i in range(len(data)) if data[i]["category"] == "color"]
        answers = answer_questions(model, collator, questions)
        counts = {clips: Counter() for clips in CLIP_KINDS}
        for answer, question in zip(answers, questions):
            counts[clip_kind(question)][answer_kind(answer, question)] += 1
        results["num_colour_questions"][split] = len(questions)
        results["answers"][split] = {clips: {kind: counter[kind] for kind in KINDS} for clips, counter in counts.items()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))
    print(json.dumps(results["answers"]))
    return results


if __name__ == "__main__":
    main()
