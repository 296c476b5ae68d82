"""Evaluate a trained VTok pipeline folder on VTok-Shapes and write the scores as JSON.

- understanding: accuracy per question category (through `evaluate`) on the test and held-out splits;
- generation: how often the model-free colour-threshold judge finds the prompted colour moving
  in the prompted direction in clips generated from held-out-free prompts.

    python examples/evaluate_shapes.py checkpoints/vtok-tiny-shapes [--num-samples 280] [--num-prompts 48]
"""

import argparse
import json
import sys
from itertools import product
from pathlib import Path

import torch
from tqdm.auto import tqdm

from modeling_vtok import VTokTextToVideoPipeline
from processing_vtok import VTokDataCollator, detect_colour_motion, load_vtok_accuracy, load_vtok_shapes
from processing_vtok.metrics import normalize_answer
from processing_vtok.shapes_dataset import COLORS, DIRECTIONS, HELDOUT_COMBINATIONS, SHAPES, make_generation_prompt


@torch.no_grad()
def answer_questions(model, processor, examples: list[dict], batch_size: int = 16) -> list[str]:
    """Greedy answers of `model` to each example's question about its video."""
    prompts = VTokDataCollator(processor)
    answers = []
    for start in tqdm(range(0, len(examples), batch_size), desc="answering"):
        batch = examples[start : start + batch_size]
        texts = [prompts.prompt({**example, "task": "understanding"}) for example in batch]
        inputs = processor(text=texts, videos=[example["video"] for example in batch], padding=True, return_tensors="pt")
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        answers += processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return [normalize_answer(answer) for answer in answers]


def understanding_scores(model, processor, split: str, num_samples: int) -> dict:
    dataset = load_vtok_shapes(split, num_samples=num_samples)
    examples = [dataset[i] for i in range(len(dataset))]
    predictions = answer_questions(model, processor, examples)
    metric = load_vtok_accuracy()
    scores = metric.compute(predictions=predictions, references=[e["answer"] for e in examples], categories=[e["category"] for e in examples])
    return {name: round(value, 4) for name, value in scores.items()}


def generation_scores(pipeline, num_prompts: int, num_frames: int, num_inference_steps: int, seed: int = 0) -> dict:
    combos = [(c, s, d) for c, s, d in product(COLORS, SHAPES, DIRECTIONS) if (c, s) not in HELDOUT_COMBINATIONS]
    combos = combos[:: max(1, len(combos) // num_prompts)][:num_prompts]
    hits, by_direction = [], {d: [] for d in DIRECTIONS}
    generator = torch.Generator().manual_seed(seed)
    for color, shape, direction in tqdm(combos, desc="generating"):
        frames = pipeline(make_generation_prompt(color, shape, direction), num_frames=num_frames,
                          num_inference_steps=num_inference_steps, generator=generator, output_type="np").frames[0]
        hit = detect_colour_motion(frames, color) == direction
        hits.append(hit)
        by_direction[direction].append(hit)
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
    parser.add_argument("--num-prompts", type=int, default=48)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--num-inference-steps", type=int, default=20)
    parser.add_argument("--output", default=None, help="JSON path (default: PIPELINE_DIR/eval_results.json)")
    args = parser.parse_args(argv)

    pipeline = VTokTextToVideoPipeline.from_pretrained(args.pipeline_dir)
    results = {
        "understanding": {
            split: understanding_scores(pipeline.model, pipeline.processor, split, args.num_samples) for split in ("test", "heldout")
        },
        "generation": generation_scores(pipeline, args.num_prompts, args.num_frames, args.num_inference_steps),
    }
    output = Path(args.output or Path(args.pipeline_dir) / "eval_results.json")
    output.write_text(json.dumps(results, indent=2))
    json.dump(results, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
