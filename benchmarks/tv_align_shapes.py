"""VTok against frame sampling on VTok-Shapes: question accuracy per category, text-to-video alignment,
tokens per video and training time (issue 13; docs/benchmarks.md, "Accuracy and generation").

Three arms, each a new model trained with the same recipe, data, seed and number of optimizer steps,
through the library's own pieces, as `examples/train.py` trains (`build_vtok_model`, `vtok_training_arguments`,
`VTokTrainer`, `VTokDataCollator`, `VTokFeatureStatisticsCallback`, VTok-Shapes' `training_examples`, and
the decoder stage's `VTokDecoderTrainingModule`):

- `vtok`: the key frame's S spatial tokens + one residual token per later frame (S + T - 1);
- `frames_all`: every one of the T frames with S tokens (S x T);
- `frames_budget`: frames sampled down to VTok's budget. Whole frames of S tokens are the unit, so the
  closest budget that still shows motion is 2 frames (2 x S; VTok's S + T - 1 lies between S and 2 x S).

Understanding: greedy answers to the test split and the held-out colour–shape split, exact match per
category (`qa_accuracy`), with bootstrap intervals over questions and a paired bootstrap of each arm's
difference to VTok. Generation: the decoder stage of `examples/train.py` on each arm (a "frames" arm's LLM
writes S tokens of each of its frames and its decoder renders those frames: 8 for `frames_all`, the 2 sampled
ones, frames 0 and 7, for `frames_budget`), then every test and held-out text-to-video prompt through the
arm's pipeline, scored by the model-free judge (`vtok_shapes.judge`; a 2-frame clip at the frames it shows).

    python benchmarks/tv_align_shapes.py --quick            # every arm and stage at tiny sizes: what the test runs
    nice -n 10 python benchmarks/tv_align_shapes.py --steps 1500 --decoder-steps 300 --num-questions 700 \
        > runs/tv_align.log 2>&1 &                            # the published run (docs/benchmarks.md)
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
from diffusers import FlowMatchEulerDiscreteScheduler
from tqdm.auto import tqdm
from transformers import Trainer
from transformers.utils import logging

from modeling_vtok import VTokTextToVideoPipeline, VTokVideoDecoder
from modeling_vtok.trainer_vtok import VTokTrainer
from modeling_vtok.training_vtok import (
    MODEL_SIZES,
    VTokDecoderTrainingModule,
    VTokFeatureStatisticsCallback,
    answer_questions,
    build_vtok_model,
    example_texts,
    qa_accuracy,
    video_only_collator,
    vtok_training_arguments,
)
from processing_vtok import VTokDataCollator
from processing_vtok.video_io import sample_frame_indices
from vtok_shapes.dataset import CATEGORIES, load_vtok_shapes, text_to_video_clips, training_examples
from vtok_shapes.judge import judge_generated_clip
from modeling_vtok.metrics_vtok import normalize_answer


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLIP_FRAMES = 8  # every clip is rendered with 8 frames; an arm's processor samples its own number of them
ARMS = {
    "vtok": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES},
    "frames_all": {"video_tokenization": "frames", "num_frames": CLIP_FRAMES},
    "frames_budget": {"video_tokenization": "frames", "num_frames": 2},
}
# Every arm and stage of the benchmark at the smallest sizes that still run it (what the test runs): one
# question per category, two prompts per split, a logged loss after two steps.
QUICK = dict(size="tiny", steps=2, decoder_steps=1, num_train_samples=7, generation_repeats=1, batch_size=4, logging_steps=2,
             num_questions=7, num_prompts=2, num_inference_steps=1, seeds=[0], bootstrap=100)  # fmt: skip


def bootstrap_interval(values: np.ndarray, num_resamples: int, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean of `values` (axis 0: questions, resampled with replacement;
    further axes, e.g. seeds, are averaged within each resample)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.array([values[rng.integers(0, n, n)].mean() for _ in range(num_resamples)])
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def measured_video_tokens(collator: VTokDataCollator, example: dict) -> int:
    """`<video>` placeholders the LLM really reads for one clip (counted in the collated batch)."""
    inputs = collator.prompt_inputs([example])
    return int((inputs["input_ids"] == collator.processor.tokenizer.convert_tokens_to_ids(collator.processor.video_token)).sum())


def train_arm(arm: str, seed: int, args, texts, examples, output_dir: Path) -> dict:
    """Trains one arm and its decoder; returns the models, token counts and times."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    model, processor = build_vtok_model(texts, size=args.size, num_frames=ARMS[arm]["num_frames"],
                                        video_tokenization=ARMS[arm]["video_tokenization"])  # fmt: skip
    collator = VTokDataCollator(processor)
    trainer = VTokTrainer(
        model=model,
        args=vtok_training_arguments(output_dir / "trainer_vtok", args.steps, per_device_train_batch_size=args.batch_size,
                                     learning_rate=args.learning_rate, logging_steps=args.logging_steps, seed=seed),  # fmt: skip
        train_dataset=examples,
        data_collator=collator,
        callbacks=[VTokFeatureStatisticsCallback()],
    )
    trainer.train()
    result = {
        "model": model.eval(),
        "processor": processor,
        "collator": collator,
        "optimizer_steps": trainer.state.global_step,
        "train_seconds": round(time.perf_counter() - started, 1),
        "final_losses": {k: v for k, v in trainer.state.log_history[-2].items() if k.endswith("loss")}
        if len(trainer.state.log_history) > 1 else {},
    }
    started = time.perf_counter()
    decoder = VTokVideoDecoder.from_model_config(model.config, sample_size=32, **MODEL_SIZES[args.size]["decoder"])
    decoder_trainer = Trainer(
        model=VTokDecoderTrainingModule(decoder, model),
        args=vtok_training_arguments(output_dir / "trainer_decoder", args.decoder_steps, per_device_train_batch_size=args.batch_size,
                                     learning_rate=args.decoder_learning_rate, logging_steps=args.logging_steps, seed=seed),  # fmt: skip
        train_dataset=examples,
        data_collator=video_only_collator(processor),
    )
    decoder_trainer.train()
    result["decoder"] = decoder.eval()
    result["decoder_optimizer_steps"] = decoder_trainer.state.global_step
    result["decoder_train_seconds"] = round(time.perf_counter() - started, 1)
    return result


def correctness(model, collator, examples) -> np.ndarray:
    """1.0 where the greedy answer matches the reference (the `qa_accuracy` normalisation), else 0.0."""
    answers = answer_questions(model, collator, examples)
    scores = qa_accuracy(answers, examples)
    hits = np.array([normalize_answer(a) == normalize_answer(e["answer"]) for a, e in zip(answers, examples)], dtype=float)
    assert abs(scores["accuracy"] - hits.mean()) < 1e-9, "per-question scores disagree with qa_accuracy"
    return hits


def generate_and_judge(trained: dict, num_frames: int, prompts, args, seed: int) -> list[dict]:
    """One clip of the arm's `num_frames` frames per prompt from `seed`, judged on colour+direction, count,
    size, position and consistency at the frames of the prompt's 8-frame clip it shows (those the arm's
    processor samples)."""
    frame_indices = sample_frame_indices(np.arange(CLIP_FRAMES), num_frames=num_frames)
    pipeline = VTokTextToVideoPipeline(model=trained["model"], processor=trained["processor"], decoder=trained["decoder"],
                                       scheduler=FlowMatchEulerDiscreteScheduler())  # fmt: skip
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    verdicts = []
    for prompt in tqdm(prompts, desc="generating"):
        frames = pipeline(prompt["caption"], num_frames=num_frames, num_inference_steps=args.num_inference_steps,
                          generator=generator, output_type="np").frames[0]  # fmt: skip
        verdicts.append(judge_generated_clip(frames, prompt["shapes"][0], num_frames=CLIP_FRAMES, frame_indices=frame_indices))
    return verdicts


def summarise_understanding(hits: dict, categories: list[str], num_resamples: int) -> dict:
    """Per arm: accuracy (mean over seeds) overall and per category with bootstrap intervals over
    questions, per-seed values, and the paired difference to VTok with its interval, over the seeds both
    arms have (seeds run in order; after a cut-off seed VTok may have one more)."""
    summary = {}
    categories = np.array(categories)
    for arm, per_seed in hits.items():
        matrix = np.stack(per_seed, axis=1)  # (questions, seeds)
        entry = {}
        for name in ["all", *CATEGORIES]:
            rows = slice(None) if name == "all" else categories == name
            values = matrix[rows]
            if not len(values):
                continue
            cell = {"accuracy": round(float(values.mean()), 4), "interval95": bootstrap_interval(values, num_resamples),
                    "per_seed": [round(float(v), 4) for v in values.mean(0)], "num_questions": int(len(values))}  # fmt: skip
            if arm != "vtok" and "vtok" in hits:  # paired: the same questions and seeds
                num_seeds = min(len(per_seed), len(hits["vtok"]))
                difference = np.stack(hits["vtok"][:num_seeds], axis=1)[rows] - values[:, :num_seeds]
                cell["vtok_minus_this"] = round(float(difference.mean()), 4)
                cell["vtok_minus_this_interval95"] = bootstrap_interval(difference, num_resamples)
            entry[name] = cell
        summary[arm] = entry
    return summary


def summarise_generation(verdicts: list[list[dict]], num_resamples: int) -> dict:
    """Judge scores averaged over prompts and seeds, with bootstrap intervals over prompts."""
    summary = {"num_prompts": len(verdicts[0]), "num_seeds": len(verdicts)}
    for key in verdicts[0][0]:
        values = np.array([[float(v[key]) for v in seed_verdicts] for seed_verdicts in verdicts]).T  # (prompts, seeds)
        summary[key] = {"mean": round(float(values.mean()), 4), "interval95": bootstrap_interval(values, num_resamples)}
    return summary


def plot(results: dict, path: Path) -> None:
    """Accuracy against LLM tokens per video, one panel per split and category, one point per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits, names = list(results["understanding"]), ["all", *CATEGORIES]
    fig, axes = plt.subplots(len(splits), len(names), figsize=(2.2 * len(names), 2.6 * len(splits)), sharex=True, sharey=True, squeeze=False)
    colours = dict(zip(ARMS, ("tab:red", "tab:blue", "tab:gray")))
    for row, split in zip(axes, splits):
        for ax, name in zip(row, names):
            for arm, cells in results["understanding"][split].items():
                cell, tokens = cells[name], results["arms"][arm]["tokens_per_video"]
                low, high = cell["interval95"]
                ax.errorbar([tokens], [cell["accuracy"]], yerr=[[cell["accuracy"] - low], [high - cell["accuracy"]]], fmt="o",
                            capsize=3, color=colours[arm], label=f"{arm} ({tokens})")  # fmt: skip
            ax.set_title(f"{split}: {name}", fontsize=9)
            ax.set_xscale("log")
            ax.set_xticks([results["arms"][arm]["tokens_per_video"] for arm in results["arms"]], minor=False)
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_ylim(0, 1)
            ax.margins(x=0.2)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("accuracy (95% CI)")
    for ax in axes[-1]:
        ax.set_xlabel("tokens / video")
    axes[0][0].legend(fontsize=7, loc="lower left")
    settings = results["settings"]
    fig.suptitle(f"VTok-Shapes question accuracy against LLM tokens per 8-frame video: {settings['size']} preset, {settings['steps']} steps, "
                 f"seeds {settings['seeds']}, {settings['num_questions']} questions per split", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def combine(paths: list[str], output: Path) -> dict:
    """One JSON and PNG from runs of the same settings that trained different arms (e.g. in parallel
    processes). A difference to VTok stays where its run computed it (paired bootstrap, same process);
    across runs it is unpaired: the two intervals' half-widths added in quadrature (normal
    approximation, wider than a paired interval when the arms err on the same questions)."""
    runs = [json.loads(Path(path).read_text()) for path in paths]
    for run in runs[1:]:
        if run["settings"] != runs[0]["settings"]:
            raise ValueError(f"Runs to combine need the same settings, got {runs[0]['settings']} and {run['settings']}.")
    combined = {**runs[0], "command": " + ".join(run["command"] for run in runs), "arms": {}, "understanding": {}}
    for run in runs:
        combined["arms"].update(run["arms"])
        for split, by_arm in run["understanding"].items():
            combined["understanding"].setdefault(split, {}).update(by_arm)
        for arm, generation in run["generation"].items():
            if generation:
                combined["generation"][arm] = generation
    for split, by_arm in combined["understanding"].items():
        for arm, cells in by_arm.items():
            for name, cell in cells.items():
                if arm == "vtok" or "vtok" not in by_arm or "vtok_minus_this" in cell:
                    continue
                vtok = by_arm["vtok"][name]
                difference = vtok["accuracy"] - cell["accuracy"]
                half_width = np.hypot(*(np.diff(c["interval95"])[0] / 2 for c in (vtok, cell)))
                cell["vtok_minus_this"] = round(difference, 4)
                cell["vtok_minus_this_interval95"] = [round(difference - half_width, 4), round(difference + half_width, 4)]
                cell["vtok_minus_this_unpaired"] = True
    output.write_text(json.dumps(combined, indent=1))
    plot(combined, output.with_suffix(".png"))
    return combined


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model, a few steps, one seed (the test's size)")
    parser.add_argument("--size", choices=sorted(MODEL_SIZES), default="small")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per arm (the same for every arm)")
    parser.add_argument("--decoder-steps", type=int, default=300)
    parser.add_argument("--num-train-samples", type=int, default=16000)
    parser.add_argument("--generation-repeats", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decoder-learning-rate", type=float, default=1e-3)
    parser.add_argument("--num-questions", type=int, default=700, help="questions per split (a multiple of 7: equal categories)")
    parser.add_argument("--num-prompts", type=int, default=None, help="text-to-video prompts per split (default: all, 56 test and 16 held-out)")
    parser.add_argument("--num-inference-steps", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS),
                        help="arms to train, in this order; differences to VTok need vtok among them")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--logging-steps", type=int, default=50)
    parser.add_argument("--work-dir", default=str(REPO / "runs" / "tv_align_shapes"), help="trainer scratch folders")
    parser.add_argument("--output", default=str(RESULTS / "tv_align_shapes.json"))
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="train nothing: merge the arms of these result files (same settings) into --output")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("steps", "decoder_steps", "num_train_samples", "batch_size", "num_questions", "num_inference_steps", "bootstrap"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, Path(args.output))
    logging.set_verbosity_warning()
    train = load_vtok_shapes("train", num_samples=args.num_train_samples, num_frames=CLIP_FRAMES)
    examples = training_examples(train, CLIP_FRAMES, image_size=32, generation_repeats=args.generation_repeats)
    texts = example_texts(train)
    splits = {split: load_vtok_shapes(split, num_samples=args.num_questions, num_frames=CLIP_FRAMES) for split in ("test", "heldout")}
    questions = {split: [data[i] for i in range(len(data))] for split, data in splits.items()}
    prompts = {split: list(text_to_video_clips(split, num_frames=CLIP_FRAMES).with_format(None))[: args.num_prompts]
               for split in ("test", "heldout")}  # fmt: skip

    arms, hits, verdicts = {}, {s: {a: [] for a in args.arms} for s in splits}, {s: {a: [] for a in args.arms} for s in prompts}
    for seed in args.seeds:
        for arm in args.arms:
            print(f"== seed {seed}, arm {arm}", flush=True)
            trained = train_arm(arm, seed, args, texts, examples, Path(args.work_dir) / f"{arm}_seed{seed}")
            tokens = measured_video_tokens(trained["collator"], questions["test"][0])
            info = arms.setdefault(arm, {**ARMS[arm], "tokens_per_video": tokens,
                                         "tokens_per_video_from_layout": trained["processor"].num_video_tokens(ARMS[arm]["num_frames"]),
                                         "seeds": []})  # fmt: skip
            if info["tokens_per_video"] != tokens:
                raise RuntimeError(f"{arm}: {tokens} tokens per video with seed {seed}, {info['tokens_per_video']} before")
            run = {key: trained[key] for key in ("optimizer_steps", "train_seconds", "final_losses")}
            for split in splits:
                started = time.perf_counter()
                hits[split][arm].append(correctness(trained["model"], trained["collator"], questions[split]))
                run[f"{split}_answer_seconds"] = round(time.perf_counter() - started, 1)
                print(f"   {split}: accuracy {hits[split][arm][-1].mean():.3f}", flush=True)
            run.update({key: trained[key] for key in ("decoder_optimizer_steps", "decoder_train_seconds")})
            started = time.perf_counter()
            for split in prompts:
                verdicts[split][arm].append(generate_and_judge(trained, ARMS[arm]["num_frames"], prompts[split], args, seed))
            run["generate_and_judge_seconds"] = round(time.perf_counter() - started, 1)
            info["seeds"].append({"seed": seed, **run})
            print(f"   {run}", flush=True)
            results = write_results(args, argv, arms, hits, questions, verdicts)  # after every arm: a cut-off run keeps what finished
    plot(results, Path(args.output).with_suffix(".png"))  # (--combine on a cut-off run's JSON draws its PNG)
    return results


def write_results(args, argv, arms: dict, hits: dict, questions: dict, verdicts: dict) -> dict:
    """The JSON of every arm and seed trained so far."""
    done = {split: {arm: per_seed for arm, per_seed in by_arm.items() if per_seed} for split, by_arm in hits.items()}
    results = {
        "benchmark": "VTok-Shapes TV-Align-style accuracy and text-to-video alignment (issue 13)",
        "command": "python benchmarks/tv_align_shapes.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"{torch.get_num_threads()} torch threads",
        "settings": {key: getattr(args, key) for key in ("quick", "size", "steps", "decoder_steps", "num_train_samples",
                                                         "generation_repeats", "batch_size", "learning_rate", "decoder_learning_rate",
                                                         "num_questions", "num_prompts", "num_inference_steps", "seeds", "bootstrap")},  # fmt: skip
        "frames_per_clip": CLIP_FRAMES,
        "arms": arms,
        "understanding": {split: summarise_understanding(done[split], [q["category"] for q in questions[split]], args.bootstrap)
                          for split in done},  # fmt: skip
        "generation": {arm: {split: summarise_generation(verdicts[split][arm], args.bootstrap) for split in verdicts}
                       for arm in args.arms if all(verdicts[split].get(arm) for split in verdicts)},  # fmt: skip
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(f"wrote {output}", flush=True)
    return results


if __name__ == "__main__":
    main()
