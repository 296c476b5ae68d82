"""Turning objects: a toy world for where VTok's tokens lose motion (issue 13, item 4).

Each clip shows one textured square (a checkerboard of a colour and its darker shade) on a static
textured grey background. The square moves in one direction for the first half of the clip, then
turns to another direction (a reverse or a right angle) for the rest. Three questions per clip, one
category each:

- `first_direction`: which way the square moves first (visible in the early residuals);
- `second_direction`: which way it moves after the turn (late residuals against the key frame mix
  both motions, which is what this world probes);
- `color`: its colour (static, read from the key frame alone).

The backgrounds of the `"test"` split are of kinds never drawn in `"train"` (checkerboards and
gradients against noise and stripes), so an arm cannot answer from memorised backgrounds. Nothing is
downloaded; the same split, seed and sizes give the same pixels (rendered on access, as VTok-Shapes).
"""

import numpy as np

from modeling_vtok.import_utils import require

from .dataset import COLORS, DIRECTIONS

require("datasets", "The turning-objects world")
from datasets import Dataset  # noqa: E402


TURNING_CATEGORIES = ("first_direction", "second_direction", "color")
TURNING_SPLITS = ("train", "test")
# Background kinds per split: the test split's kinds never appear in training.
BACKGROUNDS = {"train": ("noise", "vertical_stripes", "horizontal_stripes"), "test": ("checkerboard", "gradient")}
QUESTIONS = {
    "first_direction": "which way does the square move first?",
    "second_direction": "which way does the square move after it turns?",
    "color": "what color is the square?",
}
_SPLIT_IDS = {"train": 10, "test": 11}  # streams disjoint from VTok-Shapes' splits
_SQUARE_FRACTION = 0.25  # side of the square, as a fraction of the frame
_STEP_FRACTION = 0.09  # distance moved per frame, as a fraction of the frame
_UNIT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def turn_frame(num_frames: int) -> int:
    """The frame at which the square turns: the first `num_frames // 2` steps go the first way, the rest
    (at least one) the second way."""
    return num_frames // 2


def square_path(first_direction: str, second_direction: str, x: float, y: float, num_frames: int, image_size: int) -> np.ndarray:
    """Top-left corner `(x, y)` in pixels of the square at each frame, shape `(num_frames, 2)`."""
    for name, value in (("first_direction", first_direction), ("second_direction", second_direction)):
        if value not in DIRECTIONS:
            raise ValueError(f"Unknown {name} {value!r}. Has to be one of {list(DIRECTIONS)}.")
    turn = turn_frame(num_frames)
    steps = [_UNIT[first_direction] if t < turn else _UNIT[second_direction] for t in range(num_frames - 1)]
    offsets = np.concatenate([np.zeros((1, 2)), np.cumsum(np.array(steps, dtype=float), axis=0)])
    return np.array([x, y]) + offsets * _STEP_FRACTION * image_size


def render_background(kind: str, seed: int, image_size: int) -> np.ndarray:
    """A static grey texture of `kind`, uint8 `(H, W)`, darker than every object colour."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:image_size, 0:image_size]
    if kind == "noise":
        grey = rng.integers(0, 70, (image_size, image_size))
    elif kind in ("vertical_stripes", "horizontal_stripes"):
        period, phase = int(rng.integers(3, 7)), int(rng.integers(0, 7))
        coordinate = xs if kind == "vertical_stripes" else ys
        grey = np.where((coordinate + phase) // period % 2 == 0, int(rng.integers(40, 80)), int(rng.integers(0, 20)))
    elif kind == "checkerboard":
        cell = int(rng.integers(3, 6))
        grey = np.where((xs // cell + ys // cell) % 2 == 0, int(rng.integers(40, 80)), int(rng.integers(0, 20)))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        grey = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6) * 80
    else:
        raise ValueError(f"Unknown background {kind!r}. Has to be one of {[k for kinds in BACKGROUNDS.values() for k in kinds]}.")
    return np.asarray(grey, dtype=np.uint8)


def render_turning_clip(example: dict, num_frames: int = 8, image_size: int = 32) -> np.ndarray:
    """The clip of one example's parameters (`color`, `first_direction`, `second_direction`, `x`, `y`,
    `background`, `background_seed`): uint8 `(T, H, W, 3)`. Pure and deterministic."""
    background = render_background(example["background"], example["background_seed"], image_size)
    colour = np.array(COLORS[example["color"]], dtype=np.uint8)
    side = round(_SQUARE_FRACTION * image_size)
    cells = np.add.outer(np.arange(side) // 2, np.arange(side) // 2) % 2 == 0
    texture = np.where(cells[..., None], colour, (colour * 0.45).astype(np.uint8))  # checkerboard of 2-pixel cells
    video = np.repeat(background[None, :, :, None], 3, axis=3).repeat(num_frames, axis=0)
    for t, (x, y) in enumerate(square_path(example["first_direction"], example["second_direction"], example["x"], example["y"], num_frames, image_size)):
        left, top = round(x), round(y)
        video[t, top : top + side, left : left + side] = texture
    return video


def _render_videos(batch: dict) -> dict:
    """Format transform adding the rendered `video` column."""
    if not {"color", "first_direction", "second_direction", "x", "y", "background", "background_seed"} <= set(batch):
        return batch
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    batch["video"] = [render_turning_clip(row, int(row["num_frames"]), int(row["image_size"])) for row in rows]
    return batch


def _sample_clip(rng, split: str, num_frames: int, image_size: int) -> dict:
    first = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
    others = [d for d in DIRECTIONS if d != first]
    second = others[int(rng.integers(len(others)))]
    path = square_path(first, second, 0.0, 0.0, num_frames, image_size)
    side = round(_SQUARE_FRACTION * image_size)
    low, high = -path.min(axis=0), image_size - side - path.max(axis=0)  # keep the square inside every frame
    x, y = low + rng.random(2) * (high - low)
    return {
        "color": list(COLORS)[int(rng.integers(len(COLORS)))],
        "first_direction": first,
        "second_direction": second,
        "x": float(x),
        "y": float(y),
        "background": BACKGROUNDS[split][int(rng.integers(len(BACKGROUNDS[split])))],
        "background_seed": int(rng.integers(2**31)),
    }


def load_turning_objects(split: str = "train", num_samples: int = 300, num_frames: int = 8, image_size: int = 32, seed: int = 0) -> Dataset:
    """A split of the turning-objects world as a `datasets.Dataset` (generated, nothing downloaded).

    Args:
        split (`str`, defaults to `"train"`): `"train"` or `"test"` (backgrounds of unseen kinds).
        num_samples (`int`, defaults to 300): Questions; the categories cycle (`TURNING_CATEGORIES`),
            so each is equally frequent, and each clip is asked one question.
        num_frames (`int`, defaults to 8) / image_size (`int`, defaults to 32): at least 4 frames (two steps
            before the turn, one after) and 16 pixels.
        seed (`int`, defaults to 0): Seed of the split's stream.

    Returns:
        Rows with `question`, `answer`, `category`, the clip's parameters and `video` (uint8
        `(T, H, W, 3)`, rendered on access).
    """
    if split not in TURNING_SPLITS:
        raise ValueError(f"Unknown split {split!r}. Has to be one of {list(TURNING_SPLITS)}.")
    if num_frames < 4:
        raise ValueError(f"num_frames must be at least 4 (a motion before and after the turn), got {num_frames}.")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}.")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}.")
    rows = []
    for i in range(num_samples):
        clip = _sample_clip(np.random.default_rng([_SPLIT_IDS[split], seed, i]), split, num_frames, image_size)
        category = TURNING_CATEGORIES[i % len(TURNING_CATEGORIES)]
        answer = clip["color"] if category == "color" else clip[category]
        rows.append({"question": QUESTIONS[category], "answer": answer, "category": category,
                     "num_frames": num_frames, "image_size": image_size, **clip})  # fmt: skip
    dataset = Dataset.from_list(rows)
    dataset.set_transform(_render_videos)
    return dataset


__all__ = ["BACKGROUNDS", "TURNING_CATEGORIES", "load_turning_objects", "render_turning_clip", "square_path", "turn_frame"]
