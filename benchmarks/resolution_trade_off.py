"""Accuracy against vision cost for VTok's residual resolutions (issue 13, item 3), from two measured results
joined on the encoder patches one later frame costs.

A residual token pools the patches of one later frame, so `residual_image_size` sets how many patches the
encoder runs per later frame ((residual_image_size // patch_size) ** 2). Neither scale this machine can
train at gives the trade-off alone: at the tiny preset the encoder is so small that fixed overheads hide
the saving (`motion_turning.py`'s vision time per video rises from 4.7 to 5.6 ms as the resolution falls),
and a SigLIP-base-sized model cannot be trained here. So:

- accuracy from `motion_turning.py` (turning objects, tiny preset: 32-px frames, 8-px patches; residuals at
  32, 16 and 8 px are 16, 4 and 1 patches a later frame), the VTok arms that change only
  `residual_image_size`, with frame sampling's accuracy for reference;
- cost from `efficiency.py` (224-px frames, 16-px patches; residuals at 224, 112, 64, 32 and 16 px are 196,
  49, 16, 4 and 1 patches), vision and end-to-end seconds at one T, with frame sampling's for reference.

The join assumes that what a residual token can carry depends on how many patches it pools, not on the
frame size; each number is measured, the pairing is the assumption. It trains and times nothing.

    python benchmarks/resolution_trade_off.py     # the committed results -> results/resolution_trade_off.json and .png
"""

import argparse
import json
import os
import sys
from pathlib import Path

from modeling_vtok import VTokConfig
from modeling_vtok.training_vtok import build_vtok_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import efficiency  # noqa: E402  (its shapes and arms, read back from its result)
from provenance import recorded_command  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CATEGORIES_DRAWN = ("all", "first_direction", "second_direction")


def residual_patches(config: VTokConfig) -> int:
    """Encoder patches one later frame costs (its residual is taken at `residual_image_size` where set)."""
    return config.residual_patch_grid_size**2


def accuracy_by_patches(motion: dict) -> tuple[dict[int, dict], dict[str, dict]]:
    """The turning-objects accuracy of each VTok arm that differs from `vtok` only in `residual_image_size`,
    keyed by its patches per later frame; and the frame-sampling arms' accuracy, for reference."""
    by_patches, frames = {}, {}
    for arm, record in motion["arms"].items():
        accuracy = {name: {key: cell[key] for key in ("accuracy", "interval95_with_seed_noise", "per_seed")}
                    for name, cell in motion["summary"][arm]["accuracy"].items()}  # fmt: skip
        if record["video_tokenization"] == "frames":
            frames[arm] = {"num_frames": record["num_frames"], "accuracy": accuracy}
        elif set(record["config"]) <= {"residual_image_size"}:
            model, _ = build_vtok_model(["a"], size=motion["size"], num_frames=record["num_frames"], **record["config"])
            by_patches[residual_patches(model.config)] = {"arm": arm, "accuracy": accuracy}
    return by_patches, frames


def cost_by_patches(report: dict, num_frames: int) -> tuple[dict[int, dict], dict | None]:
    """Vision and end-to-end seconds at `num_frames` of VTok and each `residual_image_size` arm, keyed by its
    patches per later frame; and frame sampling's, for reference (None where it was not run at that T)."""
    shapes = efficiency.Shapes(**report["shapes"])
    overrides = efficiency.arm_overrides(shapes)
    rows = {arm: next((row for row in arm_rows if row["num_frames"] == num_frames), None) for arm, arm_rows in report["arms"].items()}
    if rows["vtok"] is None:
        measured = [row["num_frames"] for row in report["arms"]["vtok"]]
        raise ValueError(f"The cost result has no VTok row at T = {num_frames}: it measured T = {measured}.")
    by_patches = {}
    for arm, row in rows.items():
        if arm == "vtok" or arm.startswith("vtok_res"):
            config = efficiency.build_config(shapes, overrides[arm], 1, 1, shapes.vocab_size)
            by_patches[residual_patches(config)] = {"arm": arm, "vision_s": row["vision_s"], "end_to_end_s": row["end_to_end_s"]}
    frames = rows.get("frames")
    return by_patches, frames and {"vision_s": frames["vision_s"], "end_to_end_s": frames["end_to_end_s"]}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, (accuracy_ax, cost_ax) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for name, colour in zip(CATEGORIES_DRAWN, ("black", "tab:blue", "tab:orange")):
        measured = [row for row in rows if row["accuracy"] is not None]
        values = [row["accuracy"][name]["accuracy"] for row in measured]
        low = [value - row["accuracy"][name]["interval95_with_seed_noise"][0] for value, row in zip(values, measured)]
        high = [row["accuracy"][name]["interval95_with_seed_noise"][1] - value for value, row in zip(values, measured)]
        accuracy_ax.errorbar([row["patches_per_later_frame"] for row in measured], values, yerr=[low, high], marker="o", capsize=3,
                             color=colour, label=f"VTok: {name.replace('_', ' ')}")  # fmt: skip
    for (arm, record), style in zip(result["frames_accuracy"].items(), ("--", ":")):
        accuracy_ax.axhline(record["accuracy"]["all"]["accuracy"], color="gray", linestyle=style, label=f"{arm}: all")
    costed = [row for row in rows if row["cost"] is not None]
    for key, label in (("vision_s", "vision"), ("end_to_end_s", "end to end")):
        cost_ax.plot([row["patches_per_later_frame"] for row in costed], [row["cost"][key] for row in costed], marker="o", label=f"VTok {label}")
    if result["frames_cost"] is not None:
        cost_ax.axhline(result["frames_cost"]["vision_s"], color="gray", linestyle="--", label="frames: vision alone")
    accuracy_ax.set(xlabel="encoder patches per later frame", ylabel="accuracy (95% CI over questions and seeds)", ylim=(0, 1),
                    title="Turning objects, tiny preset (32-px frames, 8-px patches)")  # fmt: skip
    cost_ax.set(xlabel="encoder patches per later frame", ylabel="seconds (CPU)", yscale="log",
                title=f"SigLIP-base + Qwen2-0.5B shapes, T = {result['num_frames']}")  # fmt: skip
    for ax in (accuracy_ax, cost_ax):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("VTok's residual resolution: accuracy (tiny, measured) and cost (realistic shapes, measured), joined on patches per later frame",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accuracy", type=Path, default=RESULTS / "motion_turning_4000_steps.json", help="a motion_turning.py result")
    parser.add_argument("--cost", type=Path, default=RESULTS / "efficiency.json", help="an efficiency.py result")
    parser.add_argument("--frames", type=int, default=64, help="the T whose cost is read")
    parser.add_argument("--output", type=Path, default=RESULTS / "resolution_trade_off.json")
    args = parser.parse_args(argv)
    accuracy, frames_accuracy = accuracy_by_patches(json.loads(args.accuracy.read_text()))
    cost, frames_cost = cost_by_patches(json.loads(args.cost.read_text()), args.frames)
    result = {
        "benchmark": "VTok's residual resolution: accuracy against vision cost, joined on patches per later frame (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "accuracy_source": os.path.relpath(args.accuracy),  # relative, so the JSON names no folder of this machine
        "cost_source": os.path.relpath(args.cost),
        "num_frames": args.frames,
        "rows": [{"patches_per_later_frame": patches, "accuracy_arm": accuracy.get(patches, {}).get("arm"),
                  "accuracy": accuracy.get(patches, {}).get("accuracy"), "cost_arm": cost.get(patches, {}).get("arm"),
                  "cost": {key: cost[patches][key] for key in ("vision_s", "end_to_end_s")} if patches in cost else None}
                 for patches in sorted({*accuracy, *cost}, reverse=True)],  # fmt: skip
        "frames_accuracy": frames_accuracy,
        "frames_cost": frames_cost,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    plot(result, args.output.with_suffix(".png"))
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
