"""Where VTok's tokens lose motion, and what the motion options and a lower residual resolution change
(issue 13, items 3 and 4; docs/benchmarks.md, "Motion after a turn").

Every arm is a new model of `build_vtok_model`'s "tiny" preset (`examples/train.py`'s default size),
trained with the same recipe, data, seed and number of optimizer steps through the library
(`VTokTrainer`, `VTokDataCollator`, `VTokFeatureStatisticsCallback`), on the turning-objects world
(`vtok_shapes.turning`: a textured square moves one way, then turns; test backgrounds of unseen kinds).
Arms differ only in how a video becomes LLM tokens (`ARMS`): VTok as the paper has it, frame sampling at
VTok's budget (2 frames) and at 8 frames, VTok's motion options (`residual_reference`,
`residual_pooling="spatial_map"`) and lower residual resolutions (`residual_image_size`). Reported per arm:
accuracy per category (first direction, second direction, colour) with the spread over seeds and a
bootstrap interval over questions, LLM tokens per video, encoder patches per video, vision time per
video and training wall time.

    python benchmarks/motion_turning.py --quick                     # every arm a few steps, what the test runs
    nice -n 10 python benchmarks/motion_turning.py --seeds 0 1 > runs/motion.log 2>&1 &   # 800 steps per arm and seed
    python benchmarks/motion_turning.py --combine runs/a.json runs/b.json   # arms or seeds trained in separate runs
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

from modeling_vtok import VTokConfig, VTokForConditionalGeneration
from modeling_vtok.metrics_vtok import normalize_answer
from modeling_vtok.trainer_vtok import VTokTrainer
from modeling_vtok.training_vtok import VTokFeatureStatisticsCallback, answer_questions, build_vtok_model, vtok_training_arguments
from processing_vtok import VTokDataCollator, VTokProcessor
from vtok_shapes.turning import TURNING_CATEGORIES, load_turning_objects

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402
from tv_align_shapes import bootstrap_interval, merge_runs  # noqa: E402  (the same interval and merge as the accuracy benchmark)


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLIP_FRAMES = 8
SIZE = "tiny"  # examples/train.py's default model: 32-px frames, 8-px patches, S = 16 key-frame tokens
# Per arm: how the processor samples the clip, the tokenization, and VTokConfig fields set on top.
ARMS = {
    "vtok": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {}},
    "frames_2": {"video_tokenization": "frames", "num_frames": 2, "config": {}},
    "frames_8": {"video_tokenization": "frames", "num_frames": CLIP_FRAMES, "config": {}},
    "vtok_previous_frame": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {"residual_reference": "previous_frame"}},
    "vtok_both": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {"residual_reference": "both"}},
    "vtok_spatial_map": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES,
                         "config": {"residual_pooling": "spatial_map", "residual_pool_grid_size": 2}},  # fmt: skip
    "vtok_residual_16px": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {"residual_image_size": 16}},
    "vtok_residual_8px": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {"residual_image_size": 8}},
    "vtok_spatial_map_16px": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES,
                              "config": {"residual_pooling": "spatial_map", "residual_pool_grid_size": 2, "residual_image_size": 16}},  # fmt: skip
}
QUICK = dict(steps=2, num_train_samples=32, num_questions=6, batch_size=8, seeds=[0], bootstrap=100, vision_timing_videos=2)


def build_arm(arm: str, texts: list[str]) -> tuple[VTokForConditionalGeneration, VTokProcessor]:
    """The arm's new model and processor; the VTok arms of one seed start from the same LLM, projector and
    encoder (`build_vtok_model` with config fields)."""
    spec = ARMS[arm]
    return build_vtok_model(texts, size=SIZE, num_frames=spec["num_frames"], video_tokenization=spec["video_tokenization"], **spec["config"])


def encoder_patches_per_video(config: VTokConfig, num_frames: int) -> int:
    """Patches the vision encoder processes per video (its cost grows with them): every sampled frame at
    the full resolution, or with `residual_image_size` the key frame at full resolution plus every frame
    (the key frame again) at the residual resolution."""
    full = config.patch_grid_size**2
    if config.video_tokenization != "vtok" or config.residual_image_size is None:
        return num_frames * full
    return full + num_frames * (config.residual_image_size // config.vision_config.patch_size) ** 2


@torch.no_grad()
def vision_seconds_per_video(model, collator: VTokDataCollator, examples: list[dict], repeats: int = 5) -> float:
    """Best-of-`repeats` time of the video features (encoder, VTok tokenizer, projector) of `examples`
    in one batch, divided by the number of videos (after one untimed call)."""
    inputs = collator.prompt_inputs(examples)
    model.get_video_features(inputs["pixel_values_videos"], inputs.get("video_lengths"))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.get_video_features(inputs["pixel_values_videos"], inputs.get("video_lengths"))
        times.append(time.perf_counter() - started)
    return min(times) / len(examples)


def interleaved_vision_ms(arms: list[str], questions: list[dict], texts: list[str], rounds: int = 5) -> dict[str, float]:
    """Vision milliseconds per video of each arm, timed in turn round by round (so a change of load on a
    shared machine hits every arm alike), best round kept. New models: the weights do not change the cost."""
    built = {}
    for arm in arms:
        model, processor = build_arm(arm, texts)
        built[arm] = (model.eval(), VTokDataCollator(processor))
    best = {arm: float("inf") for arm in arms}
    for _ in range(rounds):
        for arm, (model, collator) in built.items():
            best[arm] = min(best[arm], vision_seconds_per_video(model, collator, questions, repeats=1))
    return {arm: round(1000 * seconds, 3) for arm, seconds in best.items()}


def train_and_score(arm: str, seed: int, args, texts, train, questions) -> tuple[dict, np.ndarray]:
    """Trains one arm with one seed; returns its run record and per-question correctness (1.0 / 0.0)."""
    torch.manual_seed(seed)
    model, processor = build_arm(arm, texts)
    collator = VTokDataCollator(processor)
    started = time.perf_counter()
    trainer = VTokTrainer(
        model=model,
        args=vtok_training_arguments(Path(args.work_dir) / f"{arm}_seed{seed}", args.steps, per_device_train_batch_size=args.batch_size,
                                     learning_rate=args.learning_rate, logging_steps=args.logging_steps, seed=seed,
                                     disable_tqdm=True),  # fmt: skip
        train_dataset=train,
        data_collator=collator,
        callbacks=[VTokFeatureStatisticsCallback()],
    )
    trainer.train()
    train_seconds = time.perf_counter() - started
    model.eval()
    started = time.perf_counter()
    answers = answer_questions(model, collator, questions)
    hits = np.array([normalize_answer(a) == normalize_answer(q["answer"]) for a, q in zip(answers, questions)], dtype=float)
    placeholders = collator.prompt_inputs(questions[:1])["input_ids"] == processor.tokenizer.convert_tokens_to_ids(processor.video_token)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    run = {
        "seed": seed,
        "optimizer_steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1),
        "answer_seconds": round(time.perf_counter() - started, 1),
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "tokens_per_video": int(placeholders.sum()),
        "tokens_per_video_from_layout": processor.num_video_tokens(ARMS[arm]["num_frames"]),
        "encoder_patches_per_video": encoder_patches_per_video(model.config, ARMS[arm]["num_frames"]),
    }
    return run, hits


def summarise(results: dict, num_resamples: int) -> dict:
    """Per arm and category (and "all"): accuracy averaged over seeds, its 95% bootstrap interval over
    questions (and over questions and seeds: `interval95_with_seed_noise`), the per-seed accuracies and their
    spread, and the paired difference to "vtok" (same questions, the training seeds both arms have,
    averaged) with both intervals; plus the arm's costs (vision time from `interleaved_vision_ms`, training
    time averaged over seeds)."""
    categories = np.array(results["question_categories"])
    vtok_seeds = [run["seed"] for run in results["arms"].get("vtok", {"seeds": []})["seeds"]]
    summary = {}
    for arm, record in results["arms"].items():
        hits = np.array([run["hits"] for run in record["seeds"]]).T  # (questions, seeds)
        seeds = [run["seed"] for run in record["seeds"]]
        cells = {}
        for name in ["all", *TURNING_CATEGORIES]:
            rows = slice(None) if name == "all" else categories == name
            per_seed = hits[rows].mean(0)
            cell = {"accuracy": round(float(per_seed.mean()), 4), "interval95": bootstrap_interval(hits[rows], num_resamples),
                    "interval95_with_seed_noise": bootstrap_interval(hits[rows], num_resamples, resample_seeds=True),
                    "per_seed": [round(float(v), 4) for v in per_seed],
                    "seed_std": round(float(per_seed.std(ddof=1)), 4) if len(per_seed) > 1 else None,
                    "num_questions": int(len(hits[rows]))}  # fmt: skip
            common = [seed for seed in seeds if seed in vtok_seeds]
            if arm != "vtok" and common:  # paired: the same questions and training seeds
                reference = np.array([results["arms"]["vtok"]["seeds"][vtok_seeds.index(seed)]["hits"] for seed in common]).T
                difference = hits[rows][:, [seeds.index(seed) for seed in common]] - reference[rows]
                cell["minus_vtok"] = round(float(difference.mean()), 4)
                cell["minus_vtok_interval95"] = bootstrap_interval(difference, num_resamples)
                cell["minus_vtok_interval95_with_seed_noise"] = bootstrap_interval(difference, num_resamples, resample_seeds=True)
                cell["minus_vtok_seeds"] = common
            cells[name] = cell
        runs = record["seeds"]
        summary[arm] = {"tokens_per_video": runs[0]["tokens_per_video"], "encoder_patches_per_video": runs[0]["encoder_patches_per_video"],
                        "train_seconds": round(float(np.mean([run["train_seconds"] for run in runs])), 1),
                        "vision_ms_per_video": results.get("vision_ms_per_video", {}).get(arm), "accuracy": cells}  # fmt: skip
    return summary


def plot(results: dict, path: Path) -> None:
    """Left: accuracy per category and arm (bar: mean over seeds; dots: each seed), with each arm's LLM
    tokens and encoder patches per video in the legend. Right: overall accuracy against vision time per
    video, in the same colours (arms of one cost sit on top of each other, so names would overlap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, arms = results["summary"], list(results["summary"])
    fig, (bars, cost) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [2, 1]})
    names, width = ["all", *TURNING_CATEGORIES], 0.8 / len(arms)
    colours = plt.get_cmap("tab10").colors
    for i, arm in enumerate(arms):
        x = np.arange(len(names)) + (i - (len(arms) - 1) / 2) * width
        cells = [summary[arm]["accuracy"][name] for name in names]
        label = f"{arm} ({summary[arm]['tokens_per_video']} tok, {summary[arm]['encoder_patches_per_video']} patches)"
        bars.bar(x, [c["accuracy"] for c in cells], width, color=colours[i % 10], label=label)
        for xi, cell in zip(x, cells):
            bars.plot([xi] * len(cell["per_seed"]), cell["per_seed"], "k.", markersize=3)
        overall = summary[arm]["accuracy"]["all"]
        if summary[arm]["vision_ms_per_video"] is None:  # not timed yet (a run still training)
            continue
        cost.errorbar([summary[arm]["vision_ms_per_video"]], [overall["accuracy"]],
                      yerr=[[overall["accuracy"] - overall["interval95"][0]], [overall["interval95"][1] - overall["accuracy"]]],
                      fmt="o", capsize=3, color=colours[i % 10])  # fmt: skip
    bars.axhline(0.25, color="gray", lw=0.8, ls="--")
    bars.set_xticks(np.arange(len(names)), names)
    bars.set_ylim(0, 1)
    bars.set_ylabel("accuracy (bar: seed mean, dots: seeds)")
    bars.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08))  # below: the bars reach the top
    cost.set_xlabel("vision ms per video (encoder + tokenizer + projector)")
    cost.set_title("colours as on the left", fontsize=8)
    cost.set_ylabel("accuracy, all categories (95% CI)")
    cost.set_ylim(0, 1)
    cost.grid(alpha=0.3)
    s = results["settings"]
    fig.suptitle(f"Turning objects, test backgrounds unseen: tiny preset, {s['steps']} steps x batch {s['batch_size']}, seeds {s['seeds']}, "
                 f"{s['num_questions']} questions", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(results: dict, output: Path, num_resamples: int) -> dict:
    """Adds the summary, writes the JSON and the PNG."""
    results["summary"] = summarise(results, num_resamples)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    plot(results, output.with_suffix(".png"))
    return results


def combine(paths: list[str], output: Path, num_resamples: int, time_vision: bool = True) -> dict:
    """One JSON and PNG from runs of the same settings that trained different arms or seeds (e.g. in
    separate processes), merged as the accuracy benchmark merges its runs (`merge_runs`). With
    `time_vision`, the vision time of every arm is measured again here, side by side (`interleaved_vision_ms`)."""
    combined, runs = merge_runs(paths)
    for path, run in zip(paths, runs):
        if any("hits" in record for record in run["arms"].values()):
            raise ValueError(f"{path} keeps its hits per arm, beside the seeds (written before 2026-11-28): move each arm's "
                             "hits[i] into seeds[i]['hits'] to combine it.")  # fmt: skip
    combined["load_average"] = [value for run in runs for value in run["load_average"]]
    if time_vision:  # every arm timed again side by side: the runs' own timings come from different loads
        test = load_turning_objects("test", num_samples=combined["settings"]["vision_timing_videos"], num_frames=CLIP_FRAMES)
        texts = [f"{row['question']} {row['answer']}" for row in test.with_format(None)]
        combined["vision_ms_per_video"] = interleaved_vision_ms(list(combined["arms"]), [test[i] for i in range(len(test))], texts)
    else:
        combined["vision_ms_per_video"] = {arm: run.get("vision_ms_per_video", {}).get(arm) for run in runs for arm in run["arms"]}
    return write_results(combined, output, num_resamples)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every arm for a few steps, one seed (the test's size)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--steps", type=int, default=800, help="optimizer steps per arm and seed (the same for every arm)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--num-train-samples", type=int, default=6000)
    parser.add_argument("--num-questions", type=int, default=300, help="test questions (a multiple of 3: equal categories)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--vision-timing-videos", type=int, default=32, help="videos in the batch whose vision time is measured")
    parser.add_argument("--logging-steps", type=int, default=50)
    parser.add_argument("--work-dir", default=str(REPO / "runs" / "motion_turning"), help="trainer scratch folders")
    parser.add_argument("--output", default=str(RESULTS / "motion_turning.json"))
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON", help="train nothing: merge these runs' arms into --output")
    parser.add_argument("--no-vision-timing", action="store_true", help="with --combine: keep the runs' vision times, time nothing")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
        args.logging_steps = 1
    for name in ("steps", "batch_size", "num_train_samples", "num_questions", "bootstrap", "vision_timing_videos"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_questions % len(TURNING_CATEGORIES):
        parser.error(f"--num-questions must be a multiple of {len(TURNING_CATEGORIES)}, got {args.num_questions}")
    return args


def main(argv=None):
    args = parse_args(argv)
    output = Path(args.output)
    if args.combine:
        return combine(args.combine, output, args.bootstrap, time_vision=not args.no_vision_timing)
    logging.set_verbosity_warning()
    torch.set_num_threads(1)  # arms time alike on a shared machine (2 threads were 3-10x slower under load here)
    train = load_turning_objects("train", num_samples=args.num_train_samples, num_frames=CLIP_FRAMES)
    test = load_turning_objects("test", num_samples=args.num_questions, num_frames=CLIP_FRAMES)
    questions = [test[i] for i in range(len(test))]
    texts = [f"{row['question']} {row['answer']}" for row in train.with_format(None)]
    results = {
        "benchmark": "Turning objects: motion before and after a turn, per arm (issue 13 items 3 and 4)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"{torch.get_num_threads()} torch threads",
        "load_average": [round(os.getloadavg()[0], 1)],
        "settings": {key: getattr(args, key) for key in ("quick", "steps", "batch_size", "learning_rate", "num_train_samples",
                                                         "num_questions", "seeds", "vision_timing_videos")},  # fmt: skip
        "size": SIZE,
        "frames_per_clip": CLIP_FRAMES,
        "question_categories": [q["category"] for q in questions],
        "arms": {},
    }
    for seed in args.seeds:
        for arm in args.arms:
            run, hits = train_and_score(arm, seed, args, texts, train, questions)
            record = results["arms"].setdefault(arm, {key: ARMS[arm][key] for key in ("video_tokenization", "num_frames", "config")})
            print(f"seed {seed} {arm}: accuracy {hits.mean():.3f}, {run}", flush=True)
            record.setdefault("seeds", []).append({**run, "hits": hits.astype(int).tolist()})
            results["load_average"].append(round(os.getloadavg()[0], 1))
            results["vision_ms_per_video"] = {arm: None for arm in results["arms"]}  # timed once training is over
            write_results(results, output, args.bootstrap)  # after every arm: a cut-off run keeps what finished
    results["vision_ms_per_video"] = interleaved_vision_ms(args.arms, questions[: args.vision_timing_videos], texts)
    return write_results(results, output, args.bootstrap)


if __name__ == "__main__":
    main()
