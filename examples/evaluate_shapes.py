"""Evaluate a trained VTok pipeline folder on VTok-Shapes and write the scores as JSON.

- understanding: accuracy per question category (through `evaluate`) on the test and held-out splits,
  answers generated with room for the longest reference answer (`examples/evaluate_qa.py` does the same
  for any question-answering file);
- generation: how often the model-free colour-threshold judge finds the prompted colour moving
  in the prompted direction, for every trained text-to-video prompt and for the prompts of the
  held-out colour–shape pairs.

    python examples/evaluate_shapes.py checkpoints/vtok-tiny-shapes [--num-samples 280]
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from modeling_vtok import VTokTextToVideoPipeline
from modeling_vtok.training_vtok import answer_questions, qa_accuracy
from processing_vtok import VTokDataCollator
from vtok_shapes import detect_colour_motion, load_vtok_shapes
from vtok_shapes.dataset import DIRECTIONS, text_to_video_clips


def understanding_scores(model, processor, split: str, num_samples: int) -> dict:
    dataset = load_vtok_shapes(split, num_samples=num_samples)
    examples = [dataset[i] for i in range(len(dataset))]
    scores = qa_accuracy(answer_questions(model, VTokDataCollator(processor), examples), examples)
    return {name: round(value, 4) for name, value in scores.items()}


def generation_scores(pipeline, split: str, num_frames: int, num_inference_steps: int, seed: int = 0) -> dict:
    """Judge one generated clip per text-to-video prompt of `split` ("train": the trained prompts,
    "heldout": colour–shape pairs never trained on)."""
    hits, by_direction = [], {d: [] for d in DIRECTIONS}
    generator = torch.Generator().manual_seed(seed)
    clips = text_to_video_clips(split, num_frames=num_frames).with_format(None)
    for clip in tqdm(clips, desc=f"generating ({split} prompts)"):
        frames = pipeline(clip["caption"], num_frames=num_frames, num_inference_steps=num_inference_steps,
                          generator=generator, output_type="np").frames[0]  # fmt: skip
        hit = detect_colour_motion(frames, clip["color"]) == clip["direction"]
        hits.append(hit)
        by_direction[clip["direction"]].append(hit)
    return {
        "prompted_colour_moves_in_prompted_direction": round(sum(hits) / len(hits), 4),
        "num_prompts": len(hits),
        "per_direction": {d: round(sum(v) / len(v), 4) for d, v in by_direction.items() if v},
        "num_inference_steps": num_inference_steps,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline_dir")
    parser.add_argument("--num-samples", type=int, default=280, help="questions per split (40 per category)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--num-inference-steps", type=int, default=20)
    parser.add_argument("--output", default=None, help="JSON path (default: PIPELINE_DIR/eval_results.json)")
    args = parser.parse_args(argv)

    pipeline = VTokTextToVideoPipeline.from_pretrained(args.pipeline_dir)
    results = {
        "understanding": {
            split: understanding_scores(pipeline.model, pipeline.processor, split, args.num_samples) for split in ("test", "heldout")
        },
        "generation": {
            split: generation_scores(pipeline, split, args.num_frames, args.num_inference_steps) for split in ("train", "heldout")
        },
    }
    output = Path(args.output or Path(args.pipeline_dir) / "eval_results.json")
    output.write_text(json.dumps(results, indent=2))
    json.dump(results, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
