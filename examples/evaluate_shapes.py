"""Evaluate a trained VTok pipeline folder on VTok-Shapes and write the scores as JSON.

- understanding: accuracy per question category (through `evaluate`) on the test and held-out splits,
  answers generated with room for the longest reference answer (`examples/evaluate_qa.py` does the same
  for any question-answering file);
- generation: one clip per text-to-video prompt (every trained prompt, and the prompts of the held-out
  colour–shape pairs) through the pipeline, and the prompt's true clip through `pipeline.reconstruct`
  (its own tokens, no LLM: the decoder's ceiling). Both are scored by every check of the model-free judge
  (`vtok_shapes.judge.judge_generated_clip`: colour moving as prompted, count, size, position, consistency,
  shape, overlap with the prompt's clip), and the overlap is also given per frame: frame 0 is the key frame,
  drawn from S spatial tokens, each later frame from its one residual token.

    python examples/evaluate_shapes.py checkpoints/vtok-tiny-shapes [--num-samples 280]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from modeling_vtok import VTokTextToVideoPipeline
from modeling_vtok.training_vtok import answer_questions, qa_accuracy
from processing_vtok import VTokDataCollator
from vtok_shapes import load_vtok_shapes
from vtok_shapes.dataset import DIRECTIONS, text_to_video_clips
from vtok_shapes.judge import frame_ious, judge_generated_clip
from vtok_shapes.pipeline_clips import draw_prompted_clips


def understanding_scores(model, processor, split: str, num_samples: int) -> dict:
    dataset = load_vtok_shapes(split, num_samples=num_samples)
    examples = [dataset[i] for i in range(len(dataset))]
    scores = qa_accuracy(answer_questions(model, VTokDataCollator(processor), examples), examples)
    return {name: round(value, 4) for name, value in scores.items()}


def summarise_clips(verdicts: list[dict], ious: list[np.ndarray], directions: list[str]) -> dict:
    """The judge's checks as fractions of clips passing (the numbers among them, such as the track error,
    as means), colour motion per prompted direction, and the mean overlap with the prompt's clip per frame."""
    moves = np.array([verdict["colour_moves_as_prompted"] for verdict in verdicts], dtype=float)
    return {
        "checks": {check: round(float(np.mean([verdict[check] for verdict in verdicts])), 4) for check in verdicts[0]},
        "colour_moves_as_prompted_per_direction": {
            d: round(float(moves[[i for i, prompted in enumerate(directions) if prompted == d]].mean()), 4)
            for d in DIRECTIONS if d in directions
        },
        "iou_per_frame": [round(float(value), 4) for value in np.mean(ious, axis=0)],
    }


def generation_scores(pipeline, split: str, num_frames: int, num_inference_steps: int, seed: int = 0,
                      num_prompts: int | None = None) -> dict:  # fmt: skip
    """Judge the clip generated from each text-to-video prompt of `split` ("train": the trained prompts,
    "heldout": colour–shape pairs never trained on) and the prompt's true clip reconstructed from its own
    tokens (`draw_prompted_clips`, 8-bit frames); `num_prompts` keeps the first ones."""
    prompts = list(text_to_video_clips(split, num_frames=num_frames))[:num_prompts]
    clips = draw_prompted_clips(pipeline, prompts, num_frames, num_inference_steps, seed, desc=f"generating and reconstructing ({split} prompts)")
    directions = [prompt["direction"] for prompt in prompts]
    scores = {"num_prompts": len(prompts), "num_inference_steps": num_inference_steps}
    for kind, frames in clips.items():
        verdicts = [judge_generated_clip(clip, prompt["shapes"][0]) for clip, prompt in zip(frames, prompts, strict=True)]
        ious = [frame_ious(clip, prompt["video"], prompt["color"]) for clip, prompt in zip(frames, prompts, strict=True)]
        scores[kind] = summarise_clips(verdicts, ious, directions)
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline_dir")
    parser.add_argument("--num-samples", type=int, default=280, help="questions per split (40 per category)")
    parser.add_argument("--num-prompts", type=int, default=None, help="text-to-video prompts per split (default: all)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--num-inference-steps", type=int, default=20)
    parser.add_argument("--output", default=None, help="JSON path (default: PIPELINE_DIR/eval_results.json)")
    args = parser.parse_args(argv)
    if args.num_prompts is not None and args.num_prompts < 1:
        parser.error(f"--num-prompts must be >= 1 (or left out: every prompt), got {args.num_prompts}")

    pipeline = VTokTextToVideoPipeline.from_pretrained(args.pipeline_dir)
    pipeline.set_progress_bar_config(disable=True)
    results = {
        "understanding": {
            split: understanding_scores(pipeline.model, pipeline.processor, split, args.num_samples) for split in ("test", "heldout")
        },
        "generation": {
            split: generation_scores(pipeline, split, args.num_frames, args.num_inference_steps, num_prompts=args.num_prompts)
            for split in ("train", "heldout")
        },
    }
    output = Path(args.output or Path(args.pipeline_dir) / "eval_results.json")
    output.write_text(json.dumps(results, indent=2))
    json.dump(results, sys.stdout, indent=2)
    return results


if __name__ == "__main__":
    main()
