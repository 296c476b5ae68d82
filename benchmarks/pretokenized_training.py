"""How much faster a training step is from stored VTok tokens (`vtok tokenize-corpus`) than from video files.

Same model, same clips, same loss (tests/test_pretokenized.py checks the equality): once the collator
decodes MP4 files and the model runs the frozen vision encoder, once the collator reads the stored tokens
(`video_tokens` + `num_frames`) and the model takes them as `video_embeds`. Measured separately: collating a
batch (decode + sample + resize, or pad the stored tokens) and the model step (forward, backward, AdamW on
the trainable parameters; the vision tower is frozen, as in the paper). Median over the timed steps after
one warm-up step; the two take turns step by step, so both see the same load on a shared machine. Writes benchmarks/results/pretokenized_training.json.

    python benchmarks/pretokenized_training.py [--model checkpoints/vtok-tiny-shapes] [--batch-size 8]
        [--num-frames 16] [--steps 10] [--quick]
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from modeling_vtok.training_vtok import load_vtok_model
from processing_vtok import VTokDataCollator, write_video
from vtok_cli.checkpoint import BUNDLED_MODEL, tokenize_video

RESULTS = Path(__file__).parent / "results"


def median_seconds(functions: dict, steps: int) -> dict:
    """Median wall time of each function; they take turns, so that both see the same load on a shared machine."""
    times = {name: [] for name in functions}
    for step in range(steps + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            if step > 0:  # step 0 warms up
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="batch 2, 4 frames, 1 timed step: checks that it runs")
    parser.add_argument("--output", default=str(RESULTS / "pretokenized_training.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.num_frames, args.steps = 2, 4, 1

    torch.manual_seed(0)
    model, processor = load_vtok_model(args.model)
    model.model.video_tokenizer.requires_grad_(False)  # stored tokens fix F and g_phi; both runs train the same parameters
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    collator = VTokDataCollator(processor, num_frames=args.num_frames)
    generator = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        from_files, from_tokens = [], []
        for i in range(args.batch_size):
            path = write_video(Path(folder) / f"clip{i}.mp4", generator.integers(0, 256, (2 * args.num_frames, 64, 64, 3), dtype=np.uint8), fps=8)
            row = {"question": "what color is the circle?", "answer": "red"}
            stored = tokenize_video(model, processor, path, num_frames=args.num_frames)
            from_files.append({**row, "video": path})
            from_tokens.append({**row, "video_tokens": stored.tokens.numpy(), "num_frames": stored.num_frames})

        def step(batch):
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()

        batches = {name: collator(examples) for name, examples in (("pixels", from_files), ("stored_tokens", from_tokens))}
        collate = median_seconds({"pixels": lambda: collator(from_files), "stored_tokens": lambda: collator(from_tokens)}, args.steps)
        model_step = median_seconds({name: (lambda batch=batch: step(batch)) for name, batch in batches.items()}, args.steps)
        results = {
            name: {"collate_seconds": collate[name], "model_step_seconds": model_step[name], "total_seconds": collate[name] + model_step[name]}
            for name in batches
        }
    speedup = {key: results["pixels"][key] / results["stored_tokens"][key] for key in results["pixels"]}
    report = {
        "benchmark": "pretokenized_training",
        "model": os.path.relpath(args.model),  # relative, so the JSON names no folder of this machine
        "batch_size": args.batch_size,
        "num_frames": args.num_frames,
        "num_video_tokens": processor.num_video_tokens(args.num_frames),
        "steps": args.steps,
        "quick": args.quick,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "results": results,
        "speedup": speedup,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    for key, value in speedup.items():
        print(f"{key}: pixels {results['pixels'][key]:.4f} s, stored tokens {results['stored_tokens'][key]:.4f} s ({value:.1f}x)")
    return report


if __name__ == "__main__":
    main()
