"""VTok against frame sampling on VTok-Shapes: question accuracy per category, text-to-video alignment,
tokens per video and training time (issue 13; docs/benchmarks.md, "Accuracy and generation").

Four arms, each a new model trained with the same recipe, data, seed and number of optimizer steps,
through the library's own pieces, as `examples/train.py` trains (`build_vtok_model`, `vtok_training_arguments`,
`VTokTrainer`, `VTokDataCollator`, `VTokFeatureStatisticsCallback`, VTok-Shapes' `training_examples`, and
the decoder stage's `VTokDecoderTrainingModule`):

- `vtok`: the key frame's S spatial tokens + one residual token per later frame (S + T - 1);
- `frames_all`: every one of the T frames with S tokens (S x T);
- `frames_budget`: frames sampled down to VTok's budget. Whole frames of S tokens are the unit, so the
  closest budget that still shows motion is 2 frames (2 x S; VTok's S + T - 1 lies between S and 2 x S);
- `vtok_spatial_map`: VTok with each residual pooled to a 2x2 map before its one token
  (`residual_pooling="spatial_map"`; it reads turning objects better, benchmarks/motion_turning.py), started
  from the same weights as `vtok` wherever the shapes agree (`build_vtok_model` with config fields);
- `vtok_key_frame_grid`: VTok whose decoder lays the key frame's token grid on the key frame only
  (`VTokVideoDecoder(key_grid_frames="key_frame")`; the LLM stage is `vtok`'s): does a grid that matches the
  pixels of every frame it is laid on let the decoder draw the key frame as exactly as a frames decoder does?

Understanding: greedy answers to the test split and the held-out colour–shape split, exact match per
category (`qa_accuracy`), with bootstrap intervals over questions and a paired bootstrap of each arm's
difference to VTok (the seeds both arms have). Generation: the decoder stage of `examples/train.py` on each arm (a "frames" arm's LLM
writes S tokens of each of its frames and its decoder renders those frames: 8 for `frames_all`, the 2 sampled
ones, frames 0 and 7, for `frames_budget`), then every test and held-out text-to-video prompt through the
arm's pipeline, scored by the model-free judge (`vtok_shapes.judge`; a 2-frame clip at the frames it shows).
The same prompts' true clips are also rendered from their own tokens (`pipeline.reconstruct`) and judged: the
decoder's ceiling, which tells whether a low generation score is the LLM's or the decoder's; and the true
clips themselves are judged, the judge's own ceiling.

    python benchmarks/tv_align_shapes.py --quick            # every arm and stage at tiny sizes: what the test runs
    OMP_NUM_THREADS=1 python benchmarks/tv_align_shapes.py --size small --steps 3000 --decoder-steps 700 \
        --num-questions 700 --arms vtok --output runs/vtok.json > runs/vtok.log 2>&1 &   # the README's run, one arm
    python benchmarks/tv_align_shapes.py --combine runs/a.json runs/b.json   # arms or seeds trained in separate runs
    python benchmarks/tv_align_shapes.py --rejudge runs/a.json --output runs/a_rejudged.json   # after a judge change

Every seed of every arm keeps its per-question answers and correctness and its per-prompt verdicts in the
JSON, so runs of the same settings merge with exact paired differences; its clips (8-bit, `clips.npz` in its
work folder, named in the JSON) let a changed judge score them again without training (`--rejudge`).
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
from vtok_shapes.pipeline_clips import draw_prompted_clips
from modeling_vtok.metrics_vtok import normalize_answer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command, relative_to_checkout  # noqa: E402


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLIP_FRAMES = 8  # every clip is rendered with 8 frames; an arm's processor samples its own number of them
# Per arm: how the processor samples the clip, the tokenization, VTokConfig fields set on top, and
# VTokVideoDecoder fields set on top of the size's.
ARMS = {
    "vtok": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {}, "decoder": {}},
    "frames_all": {"video_tokenization": "frames", "num_frames": CLIP_FRAMES, "config": {}, "decoder": {}},
    "frames_budget": {"video_tokenization": "frames", "num_frames": 2, "config": {}, "decoder": {}},
    "vtok_spatial_map": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES,
                         "config": {"residual_pooling": "spatial_map", "residual_pool_grid_size": 2}, "decoder": {}},  # fmt: skip
    "vtok_key_frame_grid": {"video_tokenization": "vtok", "num_frames": CLIP_FRAMES, "config": {}, "decoder": {"key_grid_frames": "key_frame"}},
}
SPLITS = ("test", "heldout")
# The difference between two arms that the issue asks the seeds to tell from noise (`seeds_to_resolve`).
DISTINGUISHABLE_DIFFERENCE = 0.05
# Every arm and stage of the benchmark at the smallest sizes that still run it (what the test runs): one
# question per category, two prompts per split, a logged loss after two steps.
QUICK = dict(size="tiny", steps=2, decoder_steps=1, num_train_samples=7, generation_repeats=1, batch_size=4, logging_steps=2,
             num_questions=7, num_prompts=2, num_inference_steps=1, seeds=[0], bootstrap=100)  # fmt: skip


def bootstrap_interval(values: np.ndarray, num_resamples: int, seed: int = 0, resample_seeds: bool = False) -> list[float]:
    """95% percentile interval of the mean of `values` (axis 0: questions or prompts, resampled with
    replacement; axis 1, training seeds, averaged within each resample).

    With `resample_seeds`, each resample first draws the seeds with replacement, then the questions (a
    two-stage bootstrap): the interval then also holds how much a result moves with the training seed,
    which resampling questions alone leaves out. With 3 seeds there are only 10 distinct draws of them, so
    it is coarse and, if anything, too narrow; it is the honest width to compare a difference against."""
    rng = np.random.default_rng(seed)
    values = values.reshape(len(values), -1)
    num_questions, num_seeds = values.shape

    def resample():
        columns = rng.integers(0, num_seeds, num_seeds) if resample_seeds and num_seeds > 1 else slice(None)  # one seed: as without
        return values[rng.integers(0, num_questions, num_questions)][:, columns].mean()

    means = np.array([resample() for _ in range(num_resamples)])
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def measured_video_tokens(collator: VTokDataCollator, example: dict) -> int:
    """`<video>` placeholders the LLM really reads for one clip (counted in the collated batch)."""
    inputs = collator.prompt_inputs([example])
    return int((inputs["input_ids"] == collator.processor.tokenizer.convert_tokens_to_ids(collator.processor.video_token)).sum())


def train_arm(arm: str, seed: int, args, texts, examples, output_dir: Path) -> dict:
    """Trains one arm and its decoder; returns the models, token counts and times."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    spec = ARMS[arm]
    model, processor = build_vtok_model(texts, size=args.size, num_frames=spec["num_frames"], video_tokenization=spec["video_tokenization"],
                                        **spec["config"])  # fmt: skip
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
    decoder = VTokVideoDecoder.from_model_config(model.config, sample_size=32, **{**MODEL_SIZES[args.size]["decoder"], **spec["decoder"]})
    decoder_trainer = Trainer(
        model=VTokDecoderTrainingModule(decoder, model),
        args=vtok_training_arguments(output_dir / "trainer_decoder", args.decoder_steps, per_device_train_batch_size=args.batch_size,
                                     learning_rate=args.decoder_learning_rate, logging_steps=args.logging_steps, seed=seed),  # fmt: skip
        train_dataset=examples,
        data_collator=video_only_collator(processor),
    )
    decoder_trainer.train()
    result["decoder"] = decoder.eval()
    # what the trained decoder was built with, for every field an arm may set: the JSON shows the variant measured
    result["decoder_settings"] = {field: decoder.config[field] for field in sorted({f for other in ARMS.values() for f in other["decoder"]})}
    result["decoder_optimizer_steps"] = decoder_trainer.state.global_step
    result["decoder_train_seconds"] = round(time.perf_counter() - started, 1)
    return result


def answer_and_score(model, collator, examples) -> tuple[list[str], np.ndarray]:
    """The greedy answers, and 1.0 where one matches the reference (the `qa_accuracy` normalisation), else
    0.0. The answers are kept so that a wrong one can be told apart (e.g. `colour_binding.answer_kind`)."""
    answers = answer_questions(model, collator, examples)
    scores = qa_accuracy(answers, examples)
    hits = np.array([normalize_answer(a) == normalize_answer(e["answer"]) for a, e in zip(answers, examples)], dtype=float)
    assert abs(scores["accuracy"] - hits.mean()) < 1e-9, "per-question scores disagree with qa_accuracy"
    return answers, hits


def generate_clips(trained: dict, num_frames: int, prompts, args, seed: int) -> dict[str, np.ndarray]:
    """The arm's generated and reconstructed clips of `prompts` through its pipeline (`draw_prompted_clips`),
    8-bit: what is judged and kept, so that a changed judge re-scores them exactly (`--rejudge`)."""
    pipeline = VTokTextToVideoPipeline(model=trained["model"], processor=trained["processor"], decoder=trained["decoder"],
                                       scheduler=FlowMatchEulerDiscreteScheduler())  # fmt: skip
    pipeline.set_progress_bar_config(disable=True)
    return draw_prompted_clips(pipeline, prompts, num_frames, args.num_inference_steps, seed)


def judge_clips(clips: dict[str, dict[str, np.ndarray]], prompts: dict, num_frames: int) -> dict:
    """A seed run's verdicts of its clips (`{split: generate_clips(...)}`), judged on colour+direction, count, size,
    position, consistency and shape, and their overlap with the prompt's own clip, at the frames of the prompt's
    8-frame clip they show (those an arm of `num_frames` frames samples; `judge_generated_clip`)."""
    frame_indices = sample_frame_indices(np.arange(CLIP_FRAMES), num_frames=num_frames)

    def verdicts(frames: np.ndarray, split: str) -> list[dict]:
        return [{key: float(value) for key, value in judge_generated_clip(clip, prompt["shapes"][0], num_frames=CLIP_FRAMES,
                                                                          frame_indices=frame_indices).items()}
                for clip, prompt in zip(frames, prompts[split], strict=True)]  # fmt: skip

    return {
        "verdicts": {split: verdicts(clips[split]["generated"], split) for split in SPLITS},
        "reconstruction_verdicts": {split: verdicts(clips[split]["reconstructed"], split) for split in SPLITS},
    }


def save_clips(clips: dict[str, dict[str, np.ndarray]], path: Path) -> str:
    """Keeps a seed run's clips as one `.npz` of uint8 arrays (`{split}_{kind}`, read back without unpickling) and
    returns its path relative to its checkout (`relative_to_checkout`), which `load_clips` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{f"{split}_{kind}": frames for split, by_kind in clips.items() for kind, frames in by_kind.items()})
    return relative_to_checkout(path)


def load_clips(recorded_path: str) -> dict[str, dict[str, np.ndarray]]:
    with np.load(REPO / recorded_path, allow_pickle=False) as stored:
        return {split: {kind: stored[f"{split}_{kind}"] for kind in ("generated", "reconstructed")} for split in SPLITS}


def judge_true_clips(prompts) -> dict:
    """The judge's scores of the prompts' true clips: what a perfect generator would get (the judge's own
    ceiling; every check should pass)."""
    verdicts = [judge_generated_clip(prompt["video"], prompt["shapes"][0]) for prompt in prompts]
    return {check: round(float(np.mean([verdict[check] for verdict in verdicts])), 4) for check in verdicts[0]}


def seeds_to_resolve(per_seed: np.ndarray, difference: float = DISTINGUISHABLE_DIFFERENCE) -> int:
    """How many training seeds make the 95% interval of a mean over seeds no wider than `difference` on either
    side, so that a true difference of that size is told from noise: the smallest n with
    1.96 * s / sqrt(n) <= difference, where s is the spread (ddof 1) of the `per_seed` means (the question noise
    of each seed is inside it). A normal approximation from few seeds: with 3, s itself is uncertain by about a
    factor of 2 either way, so this says "about how many", not exactly. At least 2, the fewest that show a
    spread."""
    if len(per_seed) < 2:
        raise ValueError(f"A spread over seeds needs at least 2 seeds, got {len(per_seed)}.")
    return max(2, int(np.ceil((1.96 * np.std(per_seed, ddof=1) / difference) ** 2)))


def vtok_minus_this(difference: np.ndarray, seeds: list[int], num_resamples: int) -> dict:
    """VTok's score minus another arm's, `(questions or prompts, seeds)` paired item by item and seed by seed:
    its mean, bootstrap intervals without and with the seed noise, the seeds, the mean per seed (does the
    sign hold across seeds?) and, from two seeds on, about how many seeds a 5-point difference needs
    ([`seeds_to_resolve`])."""
    per_seed = difference.mean(0)
    result = {"vtok_minus_this": round(float(difference.mean()), 4), "vtok_minus_this_interval95": bootstrap_interval(difference, num_resamples),
              "vtok_minus_this_interval95_with_seed_noise": bootstrap_interval(difference, num_resamples, resample_seeds=True),
              "vtok_minus_this_seeds": seeds, "vtok_minus_this_per_seed": [round(float(v), 4) for v in per_seed]}  # fmt: skip
    if len(seeds) > 1:
        result["seeds_to_resolve_5_points"] = seeds_to_resolve(per_seed)
    return result


def summarise_understanding(arms: dict, split: str, categories: list[str], num_resamples: int) -> dict:
    """Per arm: accuracy (mean over seeds) overall and per category with bootstrap intervals over
    questions, per-seed values, and the paired difference to VTok with its interval and per seed, over the
    seeds both arms have (matched by seed number: a cut-off run may leave VTok with one more). `interval95`
    resamples questions only; `interval95_with_seed_noise` resamples the seeds too (the differences: the
    pairs of seeds), and the per-seed values show that noise directly."""
    summary = {}
    categories = np.array(categories)
    vtok_seeds = [run["seed"] for run in arms.get("vtok", {"seeds": []})["seeds"]]
    for arm, record in arms.items():
        seeds = [run["seed"] for run in record["seeds"]]
        matrix = np.array([run["hits"][split] for run in record["seeds"]], dtype=float).T  # (questions, seeds)
        common = [seed for seed in seeds if seed in vtok_seeds]
        entry = {}
        for name in ["all", *CATEGORIES]:
            rows = slice(None) if name == "all" else categories == name
            values = matrix[rows]
            if not len(values):
                continue
            cell = {"accuracy": round(float(values.mean()), 4), "interval95": bootstrap_interval(values, num_resamples),
                    "interval95_with_seed_noise": bootstrap_interval(values, num_resamples, resample_seeds=True),
                    "per_seed": [round(float(v), 4) for v in values.mean(0)], "num_questions": int(len(values))}  # fmt: skip
            if arm != "vtok" and common:  # paired: the same questions and seeds
                vtok = np.array([arms["vtok"]["seeds"][vtok_seeds.index(seed)]["hits"][split] for seed in common], dtype=float).T
                cell.update(vtok_minus_this(vtok[rows] - values[:, [seeds.index(seed) for seed in common]], common, num_resamples))
            entry[name] = cell
        summary[arm] = entry
    return summary


def summarise_generation(record: dict, split: str, num_resamples: int, key: str = "verdicts", vtok: dict | None = None) -> dict:
    """Judge scores of one arm averaged over prompts and seeds, with bootstrap intervals over prompts (and over
    prompts and seeds: `interval95_with_seed_noise`) and the mean of each seed (`key`: the seeds' `"verdicts"`
    of generated clips or `"reconstruction_verdicts"`). Given `vtok`, VTok's record, also VTok minus this arm
    paired over the same prompts and the seeds both have, as `summarise_understanding` pairs questions (a
    frames_budget clip is judged at its 2 frames, VTok's at 8: the pairing is over prompts, not frames).

    A seed judged before a check was added lacks it: that check is summarised over the seeds that have it,
    which its `seeds` then lists."""
    runs = record["seeds"]
    vtok_runs = {run["seed"]: run for run in vtok["seeds"] if key in run} if vtok is not None and vtok is not record else {}
    summary = {"num_prompts": len(runs[0][key][split]), "num_seeds": len(runs)}
    for check in dict.fromkeys(check for run in runs for check in run[key][split][0]):
        judged = [run for run in runs if check in run[key][split][0]]
        values = np.array([[v[check] for v in run[key][split]] for run in judged]).T  # (prompts, seeds)
        cell = {"mean": round(float(values.mean()), 4), "interval95": bootstrap_interval(values, num_resamples),
                "interval95_with_seed_noise": bootstrap_interval(values, num_resamples, resample_seeds=True),
                "per_seed": [round(float(v), 4) for v in values.mean(0)]}  # fmt: skip
        if len(judged) < len(runs):
            cell["seeds"] = [run["seed"] for run in judged]
            print(f"{key} {split}: {check!r} summarised over seeds {cell['seeds']}: the others were judged before it was added")
        common = [i for i, run in enumerate(judged) if run["seed"] in vtok_runs and check in vtok_runs[run["seed"]][key][split][0]]
        if common:
            vtok_values = np.array([[v[check] for v in vtok_runs[judged[i]["seed"]][key][split]] for i in common]).T
            cell.update(vtok_minus_this(vtok_values - values[:, common], [judged[i]["seed"] for i in common], num_resamples))
        summary[check] = cell
    return summary


# The judge's checks drawn (those the results have: runs judged before `shape_right` and the IoU lack them;
# a check some seeds lack is drawn over those that have it, its title says which)
GENERATION_CHECKS = ("colour_moves_as_prompted", "count_right", "size_right", "position_right", "all_right", "shape_right", "iou_with_prompted_clip")


def plot(results: dict, path: Path) -> None:
    """Accuracy against LLM tokens per video, one panel per split and category, one point per arm; below,
    the judge's checks of the test split's clips, generated from prompts (filled) and reconstructed from the
    true clips' own tokens (hollow: the decoder's ceiling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits, names = list(results["understanding"]), ["all", *CATEGORIES]
    fig, axes = plt.subplots(len(splits) + 1, len(names), figsize=(2.2 * len(names), 2.6 * (len(splits) + 1)), sharex=True, sharey=True,
                             squeeze=False)  # fmt: skip
    colours = dict(zip(ARMS, ("tab:red", "tab:blue", "tab:gray", "tab:orange", "tab:green")))
    tokens = {arm: info["tokens_per_video"] for arm, info in results["arms"].items()}
    seeds = {arm: [run["seed"] for run in info["seeds"]] for arm, info in results["arms"].items()}  # arms may have different seeds
    # arms of the same token count (VTok's variants) side by side, a little apart
    x = {arm: count * 1.06 ** [other for other in tokens if tokens[other] == count].index(arm) for arm, count in tokens.items()}

    def point(ax, arm, value, interval, offset=1.0, hollow=False, label=None):
        low, high = interval
        ax.errorbar([x[arm] * offset], [value], yerr=[[value - low], [high - value]], fmt="s" if hollow else "o", capsize=3, color=colours[arm],
                    markerfacecolor="white" if hollow else colours[arm], label=label)  # fmt: skip

    for row, split in zip(axes, splits):
        for ax, name in zip(row, names):
            for arm, cells in results["understanding"][split].items():
                point(ax, arm, cells[name]["accuracy"], cells[name]["interval95"], label=f"{arm} ({tokens[arm]} tokens, seeds {seeds[arm]})")
            ax.set_title(f"{split}: {name}", fontsize=9)
        row[0].set_ylabel("accuracy (95% CI)")
    checks = [check for check in GENERATION_CHECKS if all(check in record["test"] for record in results["generation"].values())]
    for ax, check in zip(axes[-1], checks):
        for arm in results["arms"]:
            generated = results["generation"][arm]["test"][check]
            point(ax, arm, generated["mean"], generated["interval95"], offset=0.97)
            if arm in results["reconstruction"]:
                reconstructed = results["reconstruction"][arm]["test"][check]
                point(ax, arm, reconstructed["mean"], reconstructed["interval95"], offset=1.03, hollow=True)
        judged_seeds = {tuple(results["generation"][arm]["test"][check].get("seeds", ())) for arm in results["arms"]} - {()}
        ax.set_title(check.replace("_", " ") + "".join(f"\n(seeds {list(seeds)})" for seeds in judged_seeds), fontsize=9)
    axes[-1][0].set_ylabel("test clips passing (95% CI)\nfilled: generated\nhollow: reconstructed", fontsize=8)
    for ax in axes[-1][len(checks):]:
        ax.axis("off")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(tokens.values())), minor=False)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.tick_params(axis="x", labelrotation=90)  # 23 and 32 sit too close to read side by side
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_ylim(0, 1)
        ax.margins(x=0.2)
        ax.grid(alpha=0.3)
    for ax in [*axes[-1][: len(checks)], *axes[-2][len(checks):]]:  # the lowest panels drawn
        ax.set_xlabel("tokens / video")
    legend_room = axes[-1][len(checks)]  # the empty panels beside the generation row
    legend_room.legend(*axes[0][0].get_legend_handles_labels(), fontsize=8, loc="center left")
    settings = results["settings"]
    fig.suptitle(f"VTok-Shapes question accuracy and text-to-video checks against LLM tokens per 8-frame video: {settings['size']} preset, "
                 f"{settings['steps']} LLM steps, {settings['decoder_steps']} decoder steps, seeds {settings['seeds']}, "
                 f"{settings['num_questions']} questions per split", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def merge_runs(paths: list[str]) -> tuple[dict, list[dict]]:
    """The result files at `paths`, runs of the same settings (seeds aside) that trained different arms or
    seeds (e.g. in parallel processes), merged into one result: every seed run of every arm, in seed order,
    with what it stored (its per-question correctness among them, so paired differences stay exact).
    A seed of an arm may come from one run only; `machine` lists each distinct machine line of the runs.
    Returns the merged result and the runs as read; the turning-objects benchmark merges its runs the same way."""
    runs = [json.loads(Path(path).read_text()) for path in paths]

    def shared(run: dict) -> dict:
        return {"settings": {k: v for k, v in run["settings"].items() if k != "seeds"}, "question_categories": run.get("question_categories")}

    for path, run in zip(paths, runs):
        if shared(run)["question_categories"] is None:
            raise ValueError(f"{path} stores no per-question results (written before they were kept): run its arms again to combine them.")
        for key, value in shared(run).items():
            if value != shared(runs[0])[key]:
                raise ValueError(f"Runs to combine need the same {key} (seeds aside): {paths[0]} has {shared(runs[0])[key]}, {path} {value}.")
    merged = {**runs[0], "command": " + ".join(run["command"] for run in runs), "arms": {},
              "machine": " + ".join(dict.fromkeys(run["machine"] for run in runs))}  # each distinct one (torch threads may differ)
    for path, run in zip(paths, runs):
        for arm, record in run["arms"].items():
            merged_record = merged["arms"].setdefault(arm, {**record, "seeds": []})
            for seed_run in record["seeds"]:
                if any(seed_run["seed"] == other["seed"] for other in merged_record["seeds"]):
                    raise ValueError(f"Seed {seed_run['seed']} of arm {arm!r} is in more than one run ({path} and another).")
                merged_record["seeds"].append(seed_run)
    for record in merged["arms"].values():
        record["seeds"].sort(key=lambda run: run["seed"])
    merged["settings"]["seeds"] = sorted({run["seed"] for record in merged["arms"].values() for run in record["seeds"]})
    return merged, runs


def rejudge(path: str, output: Path, num_resamples: int) -> dict:
    """The result at `path` with every seed run's kept clips judged again by the current judge (after a judge
    change: no training, no generation); its answers and everything else are kept."""
    results = json.loads(Path(path).read_text())
    prompts = {split: list(text_to_video_clips(split, num_frames=CLIP_FRAMES))[: results["settings"]["num_prompts"]] for split in SPLITS}
    results["judge_on_true_clips"] = {split: judge_true_clips(prompts[split]) for split in SPLITS}
    for arm, record in results["arms"].items():
        for run in record["seeds"]:
            if "clips" not in run:
                raise ValueError(f"{path}: seed {run['seed']} of arm {arm!r} kept no clips (run before they were kept): it cannot be re-judged.")
            run.update(judge_clips(load_clips(run["clips"]), prompts, ARMS[arm]["num_frames"]))
    results["command"] += f" + python benchmarks/tv_align_shapes.py --rejudge {relative_to_checkout(path)}"
    return write_results(results, output, num_resamples)


def combine(paths: list[str], output: Path, num_resamples: int) -> dict:
    """One JSON and PNG from runs of the same settings that trained different arms or seeds (`merge_runs`)."""
    return write_results(merge_runs(paths)[0], output, num_resamples)


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
                        help="train nothing: merge the arms and seeds of these result files (same settings) into --output")
    parser.add_argument("--rejudge", default=None, metavar="JSON",
                        help="train nothing: judge the clips this result file's runs kept again, with the current judge, into --output")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("steps", "decoder_steps", "num_train_samples", "batch_size", "num_questions", "num_inference_steps", "bootstrap"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_prompts is not None and args.num_prompts < 1:
        parser.error(f"--num-prompts must be >= 1 (or left out: every prompt), got {args.num_prompts}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, Path(args.output), args.bootstrap)
    if args.rejudge:
        return rejudge(args.rejudge, Path(args.output), args.bootstrap)
    logging.set_verbosity_warning()
    train = load_vtok_shapes("train", num_samples=args.num_train_samples, num_frames=CLIP_FRAMES)
    examples = training_examples(train, CLIP_FRAMES, image_size=32, generation_repeats=args.generation_repeats)
    texts = example_texts(train)
    splits = {split: load_vtok_shapes(split, num_samples=args.num_questions, num_frames=CLIP_FRAMES) for split in SPLITS}
    questions = {split: [data[i] for i in range(len(data))] for split, data in splits.items()}
    prompts = {split: list(text_to_video_clips(split, num_frames=CLIP_FRAMES))[: args.num_prompts] for split in SPLITS}

    results = {
        "benchmark": "VTok-Shapes TV-Align-style accuracy and text-to-video alignment (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"{torch.get_num_threads()} torch threads",
        "settings": {key: getattr(args, key) for key in ("quick", "size", "steps", "decoder_steps", "num_train_samples",
                                                         "generation_repeats", "batch_size", "learning_rate", "decoder_learning_rate",
                                                         "num_questions", "num_prompts", "num_inference_steps", "seeds", "bootstrap")},  # fmt: skip
        "frames_per_clip": CLIP_FRAMES,
        "question_categories": {split: [q["category"] for q in questions[split]] for split in SPLITS},
        "judge_on_true_clips": {split: judge_true_clips(prompts[split]) for split in SPLITS},
        "arms": {},
    }
    for seed in args.seeds:
        for arm in args.arms:
            print(f"== seed {seed}, arm {arm}", flush=True)
            trained = train_arm(arm, seed, args, texts, examples, Path(args.work_dir) / f"{arm}_seed{seed}")
            tokens = measured_video_tokens(trained["collator"], questions["test"][0])
            record = results["arms"].setdefault(arm, {**ARMS[arm], "tokens_per_video": tokens,
                                                      "tokens_per_video_from_layout": trained["processor"].num_video_tokens(ARMS[arm]["num_frames"]),
                                                      "seeds": []})  # fmt: skip
            if record["tokens_per_video"] != tokens:
                raise RuntimeError(f"{arm}: {tokens} tokens per video with seed {seed}, {record['tokens_per_video']} before")
            run = {"seed": seed, **{key: trained[key] for key in ("optimizer_steps", "train_seconds", "final_losses")}, "hits": {}, "answers": {}}
            for split in SPLITS:
                started = time.perf_counter()
                run["answers"][split], hits = answer_and_score(trained["model"], trained["collator"], questions[split])
                run[f"{split}_answer_seconds"] = round(time.perf_counter() - started, 1)
                run["hits"][split] = hits.astype(int).tolist()
                print(f"   {split}: accuracy {hits.mean():.3f}", flush=True)
            run.update({key: trained[key] for key in ("decoder_optimizer_steps", "decoder_train_seconds", "decoder_settings")})
            started = time.perf_counter()
            clips = {split: generate_clips(trained, ARMS[arm]["num_frames"], prompts[split], args, seed) for split in SPLITS}
            run.update(judge_clips(clips, prompts, ARMS[arm]["num_frames"]))
            run["generate_and_judge_seconds"] = round(time.perf_counter() - started, 1)
            run["clips"] = save_clips(clips, Path(args.work_dir) / f"{arm}_seed{seed}" / "clips.npz")
            record["seeds"].append(run)
            print(f"   { {k: v for k, v in run.items() if k not in ('hits', 'answers', 'verdicts', 'reconstruction_verdicts', 'clips')} }", flush=True)
            write_results(results, Path(args.output), args.bootstrap)  # after every arm: a cut-off run keeps what finished
    return results


def write_results(results: dict, output: Path, num_resamples: int) -> dict:
    """Adds the summaries of every arm and seed trained so far, writes the JSON and the PNG."""
    results["understanding"] = {split: summarise_understanding(results["arms"], split, results["question_categories"][split], num_resamples)
                                for split in SPLITS}  # fmt: skip
    vtok = results["arms"].get("vtok")
    results["generation"] = {arm: {split: summarise_generation(record, split, num_resamples, vtok=vtok) for split in SPLITS}
                             for arm, record in results["arms"].items()}  # fmt: skip
    # runs written before reconstructions were judged have none: such an arm is left out of this summary, and said so
    reconstructed = {arm for arm, record in results["arms"].items() if all("reconstruction_verdicts" in run for run in record["seeds"])}
    for arm in results["arms"].keys() - reconstructed:
        print(f"{arm}: a seed has no reconstruction verdicts (written before they were judged); the arm is left out of 'reconstruction'")
    results["reconstruction"] = {arm: {split: summarise_generation(record, split, num_resamples, key="reconstruction_verdicts", vtok=vtok)
                                       for split in SPLITS}
                                 for arm, record in results["arms"].items() if arm in reconstructed}  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    plot(results, output.with_suffix(".png"))
    print(f"wrote {output}", flush=True)
    return results


if __name__ == "__main__":
    main()
