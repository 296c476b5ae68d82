"""Where in the clip each arm of the accuracy benchmark loses the prompted shape: the overlap (IoU) of the
prompted colour's pixels with the prompt's own clip, frame by frame (issue 13).

VTok draws frame 0, its key frame, from S spatial tokens and every later frame from one residual token; a
frames arm draws each of its frames from S tokens. `tv_align_shapes.py` judges a clip by its mean overlap,
which cannot tell the two apart. This reads a `tv_align_shapes.py` result whose runs kept their clips
(it trains and generates nothing), scores each kept clip per frame (`vtok_shapes.judge.frame_ious`), and
gives, per arm, split and kind of clip (generated from the prompt; reconstructed from the true clip's own
tokens), the mean overlap at every frame the arm shows, and the later frames' mean minus frame 0's, each
with a bootstrap interval over prompts (and seeds, when there are several) and the mean of each seed; for
every other arm, VTok minus it paired prompt by prompt on the seeds both kept clips of. The same once each frame's
shape is moved onto the prompt's position (`*_aligned`: the shape alone), so that a lost overlap can be
told to be a wrong position or a wrong shape. Writes a JSON and a PNG.

    python benchmarks/frame_overlap.py benchmarks/results/tv_align_shapes_small_decoder_2100_steps.json \\
        --output benchmarks/results/frame_overlap_decoder_2100_steps.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from processing_vtok.video_io import sample_frame_indices
from vtok_shapes.dataset import text_to_video_clips
from vtok_shapes.judge import frame_ious

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402
from tv_align_shapes import ARMS, CLIP_FRAMES, RESULTS, SPLITS, bootstrap_interval, load_clips  # noqa: E402


KINDS = ("generated", "reconstructed")


def mean_with_interval(values: np.ndarray, num_resamples: int) -> dict:
    """Mean of `values` `(prompts, seeds)`, its 95% interval (the seeds resampled too when there are several)
    and the mean of each seed."""
    return {"mean": round(float(values.mean()), 4), "interval95": bootstrap_interval(values, num_resamples, resample_seeds=True),
            "per_seed": [round(float(v), 4) for v in values.mean(axis=0)]}  # fmt: skip


def arm_ious(arm: str, runs: list[dict], prompts: dict) -> dict:
    """One arm's overlaps `(prompts, seeds, frames shown)` per split, kind of clip and alignment (`""` or
    `"_aligned"`), over its seeds that kept clips."""
    frame_indices = sample_frame_indices(np.arange(CLIP_FRAMES), num_frames=ARMS[arm]["num_frames"])
    clips = [load_clips(run["clips"]) for run in runs]
    ious = {}
    for split in SPLITS:
        expected = [np.asarray(prompt["video"])[frame_indices] for prompt in prompts[split]]
        for kind in KINDS:
            for suffix, aligned in (("", False), ("_aligned", True)):
                ious[split, kind, suffix] = np.stack([[frame_ious(clip, truth, prompt["color"], aligned=aligned)
                                                       for clip, truth, prompt in zip(seed[split][kind], expected, prompts[split], strict=True)]
                                                      for seed in clips], axis=1)  # fmt: skip
    return {"seeds": [run["seed"] for run in runs], "frames": [int(i) for i in frame_indices], "ious": ious}


def per_frame_cells(ious: dict, num_resamples: int) -> dict:
    """`{(split, kind, suffix): (prompts, seeds, frames)}` overlaps (or differences of them) -> per split and kind
    of clip: the value at every frame and the later frames' mean minus frame 0's."""
    result = {}
    for (split, kind, suffix), values in ious.items():
        cell = result.setdefault(f"{split}_{kind}", {})
        cell["per_frame" + suffix] = [mean_with_interval(values[:, :, i], num_resamples) for i in range(values.shape[2])]
        cell["later_minus_first" + suffix] = mean_with_interval(values[:, :, 1:].mean(axis=2) - values[:, :, 0], num_resamples)
    return result


def vtok_minus_this(vtok: dict, other: dict, num_resamples: int) -> dict | None:
    """VTok's overlaps minus another arm's, paired prompt by prompt over the seeds both kept clips of (a
    difference between seeds would be the seed's as much as the arm's), at the frames both show: per frame,
    and for the later frames' loss against frame 0. `None` when they share no seed."""
    seeds = [seed for seed in other["seeds"] if seed in vtok["seeds"]]
    if not seeds:
        return None
    frames = [frame for frame in other["frames"] if frame in vtok["frames"]]

    def shared(measured: dict, key) -> np.ndarray:  # (prompts, shared seeds, shared frames)
        ious = measured["ious"][key][:, [measured["seeds"].index(seed) for seed in seeds]]
        return ious[:, :, [measured["frames"].index(frame) for frame in frames]]

    differences = {key: shared(vtok, key) - shared(other, key) for key in other["ious"]}
    return {"seeds": seeds, "frames": frames, **per_frame_cells(differences, num_resamples)}


def frame_overlaps(source: dict, num_resamples: int) -> dict:
    """Every arm of `source` with kept clips, and each arm's `vtok_minus_this` on the seeds it shares with VTok;
    an arm none of whose seeds kept clips is left out, and said so."""
    prompts = {split: list(text_to_video_clips(split, num_frames=CLIP_FRAMES))[: source["settings"]["num_prompts"]] for split in SPLITS}
    measured = {}
    for arm, record in source["arms"].items():
        runs = [run for run in record["seeds"] if "clips" in run]
        if len(runs) < len(record["seeds"]):
            print(f"{arm}: seeds {[run['seed'] for run in record['seeds'] if 'clips' not in run]} kept no clips (run before they were kept); left out")
        if runs:
            measured[arm] = arm_ious(arm, runs, prompts)
    if not measured:
        raise ValueError("No run of this result kept its clips (runs before they were kept): nothing to score per frame.")
    arms = {arm: {"seeds": m["seeds"], "frames": m["frames"], **per_frame_cells(m["ious"], num_resamples)} for arm, m in measured.items()}
    for arm in measured:
        paired = vtok_minus_this(measured["vtok"], measured[arm], num_resamples) if arm != "vtok" and "vtok" in measured else None
        if paired is not None:
            arms[arm]["vtok_minus_this"] = paired
    return arms


def plot(results: dict, path: Path) -> None:
    """Overlap against frame index, one line per arm, one panel per split and kind of clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SPLITS), len(KINDS), figsize=(9, 6.5), sharex=True, sharey=True, squeeze=False)
    for row, split in enumerate(SPLITS):
        for col, kind in enumerate(KINDS):
            ax = axes[row][col]
            for colour, (arm, overlaps) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], results["arms"].items()):
                for key, style, face, label in (("per_frame", "-", colour, ""), ("per_frame_aligned", ":", "none", ", shape alone (hollow)")):
                    cells = overlaps[f"{split}_{kind}"][key]
                    means = np.array([cell["mean"] for cell in cells])
                    low, high = np.array([cell["interval95"] for cell in cells]).T
                    ax.errorbar(overlaps["frames"], means, yerr=[means - low, high - means], marker="o", capsize=3, color=colour,
                                markerfacecolor=face, linestyle=style, label=f"{arm}{label} (seeds {overlaps['seeds']})")  # fmt: skip
            ax.set_title(f"{split}, {kind}", fontsize=9)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("frame (0: VTok's key frame)")
    for ax in axes[:, 0]:
        ax.set_ylabel("overlap with the prompt's clip (95% CI)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Where the prompted shape is lost: overlap per frame", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", help="a tv_align_shapes.py JSON whose runs kept their clips")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--output", default=str(RESULTS / "frame_overlap.json"))
    args = parser.parse_args(argv)
    source = json.loads(Path(args.result).read_text())
    results = {
        "benchmark": "Overlap with the prompt's clip per frame, from the accuracy benchmark's kept clips (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "source_command": source["command"],
        "arms": frame_overlaps(source, args.bootstrap),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    plot(results, output.with_suffix(".png"))
    print(f"wrote {output}")
    return results


if __name__ == "__main__":
    main()
