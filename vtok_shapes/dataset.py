"""VTok-Shapes: a procedural, seeded video–text dataset of coloured shapes moving on black.

Nothing is downloaded. Each example stores the parameters of its clip (a few numbers per shape);
the `video` column is rendered from them on access (`Dataset.set_transform`), so the dataset is
small and the same split + seed always gives the same pixels. Questions follow the categories of
the paper's TV-Align benchmark: counting, direction, position, size, color, state and motion,
the last two including events that uniform frame sampling misses (turning around, stopping,
speeding up). See docs/dataset.md.
"""

import numpy as np

from modeling_vtok.import_utils import require

require("datasets", "The VTok-Shapes dataset")
from datasets import Dataset, Features, List, Value, concatenate_datasets  # noqa: E402

# Fixed, well separated RGB values: the motion judge (`judge.py`) thresholds on these.
COLORS = {
    "red": (230, 30, 30),
    "green": (30, 210, 30),
    "blue": (40, 70, 255),
    "yellow": (240, 220, 30),
    "magenta": (220, 40, 220),
    "cyan": (30, 210, 220),
}
BACKGROUND = (0, 0, 0)
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
SIZES = ("small", "big")
# `constant` moves steadily; `turn` reverses half-way; `speed_up`/`slow_down` change speed;
# `stop` halts half-way. Only the middle three are invisible to sparse frame sampling.
MOTIONS = ("constant", "turn", "speed_up", "slow_down", "stop")
CATEGORIES = ("counting", "direction", "position", "size", "color", "state", "motion")
SPLITS = ("train", "validation", "test", "heldout")
# Colour–shape pairs that only ever appear in the "heldout" split (compositional generalisation).
HELDOUT_COMBINATIONS = (("red", "triangle"), ("green", "square"), ("blue", "circle"), ("yellow", "triangle"))
NUMBER_WORDS = ("one", "two", "three")
ANSWER_VOCABULARY = tuple(
    dict.fromkeys(
        ("yes", "no") + NUMBER_WORDS + DIRECTIONS + ("above", "below") + SIZES + ("faster", "slower")
        + tuple(COLORS)
    )
)
MAX_SHAPES = 3

_SPLIT_IDS = {split: i for i, split in enumerate(SPLITS)}
_DEFAULT_NUM_SAMPLES = {"train": 2000, "validation": 200, "test": 200, "heldout": 200}
_RADIUS_FRACTION = {"small": 0.10, "big": 0.19}
_PATH_FRACTION = 0.4  # how far (fraction of the frame) a steadily moving shape travels
_UNIT = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

_SHAPE_FEATURES = {
    "color": Value("string"),
    "shape": Value("string"),
    "size": Value("string"),
    "direction": Value("string"),
    "motion": Value("string"),
    "end_color": Value("string"),
    "end_size": Value("string"),
    "x": Value("float32"),
    "y": Value("float32"),
}
FEATURES = Features(
    {
        "caption": Value("string"),
        "question": Value("string"),
        "answer": Value("string"),
        "category": Value("string"),
        "color": Value("string"),
        "shape": Value("string"),
        "direction": Value("string"),
        "size": Value("string"),
        "motion": Value("string"),
        "num_shapes": Value("int32"),
        "num_frames": Value("int32"),
        "image_size": Value("int32"),
        "shapes": List(_SHAPE_FEATURES),
    }
)


def make_generation_prompt(color: str, shape: str, direction: str) -> str:
    """The text-to-video prompt of a single steadily moving shape: `"a red circle moving left"`."""
    for name, value, allowed in (("color", color, COLORS), ("shape", shape, SHAPES), ("direction", direction, DIRECTIONS)):
        if value not in allowed:
            raise ValueError(f"Unknown {name} {value!r}. Has to be one of {list(allowed)}.")
    return f"a {color} {shape} moving {direction}"


def _step_multipliers(motion: str, num_frames: int) -> np.ndarray:
    """Signed speed (in path units) of each of the `num_frames - 1` steps."""
    steps = num_frames - 1
    half = (steps + 1) // 2
    k = np.arange(steps)
    if motion == "constant":
        m = np.ones(steps)
    elif motion == "turn":
        m = np.where(k < half, 1.0, -1.0)
    elif motion == "stop":
        m = np.where(k < half, 1.0, 0.0)
    elif motion in ("speed_up", "slow_down"):
        m = np.linspace(0.15, 1.85, steps) if steps > 1 else np.ones(1)
        m = m if motion == "speed_up" else m[::-1]
    else:
        raise ValueError(f"Unknown motion {motion!r}. Has to be one of {list(MOTIONS)}.")
    # Scale so the furthest point of the path is `_PATH_FRACTION` of the frame away from the start.
    return m / np.abs(np.cumsum(m)).max()


def shape_trajectory(motion: str, direction: str, x: float, y: float, num_frames: int, image_size: int) -> np.ndarray:
    """Centre `(x, y)` in pixels of a shape at each frame, shape `(num_frames, 2)`."""
    offsets = np.concatenate([[0.0], np.cumsum(_step_multipliers(motion, num_frames))]) * _PATH_FRACTION * image_size
    return np.array([x, y]) + offsets[:, None] * np.array(_UNIT[direction])


def draw_shape(shape: str, size: str, cx: float, cy: float, image_size: int) -> np.ndarray:
    """Boolean `(image_size, image_size)` mask of `shape` of `size` centred at `(cx, cy)` pixels, as
    `render_clip` draws it (the judge draws the same templates to recognise a generated shape)."""
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}. Has to be one of {list(SIZES)}.")
    radius = _RADIUS_FRACTION[size] * image_size
    coords = np.arange(image_size) + 0.5
    dy, dx = coords[:, None] - cy, coords[None, :] - cx
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        half = radius * 0.85
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":  # apex up, base down
        rel = (dy + radius) / (2 * radius)
        return (rel >= 0) & (rel <= 1) & (np.abs(dx) <= rel * radius * 1.1)
    raise ValueError(f"Unknown shape {shape!r}. Has to be one of {list(SHAPES)}.")


def render_clip(shapes: list[dict], num_frames: int = 8, image_size: int = 32) -> np.ndarray:
    """Renders a clip from shape parameters (the `shapes` column): uint8 array `(T, H, W, 3)`.

    Each shape dict has `color`, `shape`, `size`, `direction`, `motion`, start centre `x`, `y`
    (pixels) and optionally `end_color` / `end_size`, which take over from the middle frame on.
    The first (main) shape is drawn on top of the others. Pure and deterministic.
    """
    video = np.zeros((num_frames, image_size, image_size, 3), dtype=np.uint8)
    video[...] = BACKGROUND
    for s in reversed(shapes):
        centres = shape_trajectory(s["motion"], s["direction"], s["x"], s["y"], num_frames, image_size)
        for t in range(num_frames):
            late = t >= num_frames // 2
            color = (s.get("end_color") or s["color"]) if late else s["color"]
            size = (s.get("end_size") or s["size"]) if late else s["size"]
            mask = draw_shape(s["shape"], size, *centres[t], image_size)
            video[t][mask] = COLORS[color]
    return video


def _shape_phrase(s: dict) -> str:
    phrase = f"a {s['color']} {s['shape']} moving {s['direction']}"
    phrase += {
        "constant": "",
        "turn": " then turning back",
        "speed_up": " and speeding up",
        "slow_down": " and slowing down",
        "stop": " then stopping",
    }[s["motion"]]
    if s["end_color"] != s["color"]:
        phrase += f" and turning {s['end_color']}"
    if s["end_size"] != s["size"]:
        phrase += " and growing" if s["end_size"] == "big" else " and shrinking"
    return phrase


def make_caption(shapes: list[dict]) -> str:
    """Describes every shape, main shape first; a single steady shape gives `make_generation_prompt`."""
    phrases = [_shape_phrase(s) for s in shapes]
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _allowed_pairs(split: str) -> list[tuple[str, str]]:
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    return [p for p in pairs if p not in HELDOUT_COMBINATIONS]


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _sample_layout(rng, shapes: list[dict], num_frames: int, image_size: int, tries: int = 50) -> bool:
    """Chooses start positions keeping every shape inside the frame and apart from the others."""
    for _ in range(tries):
        tracks = []
        for s in shapes:
            radius = max(_RADIUS_FRACTION[s["size"]], _RADIUS_FRACTION[s["end_size"]]) * image_size
            path = shape_trajectory(s["motion"], s["direction"], 0.0, 0.0, num_frames, image_size)
            low = radius + 1 - path.min(axis=0)
            high = image_size - radius - 1 - path.max(axis=0)
            start = low + rng.random(2) * np.maximum(high - low, 0.0)
            s["x"], s["y"] = float(start[0]), float(start[1])
            tracks.append((path + start, radius))
        apart = all(
            np.linalg.norm(ta - tb, axis=1).min() >= 0.9 * (ra + rb)
            for i, (ta, ra) in enumerate(tracks)
            for tb, rb in tracks[i + 1 :]
        )
        if apart:
            return True
    return False


def _sample_example(rng, category: str, split: str, num_frames: int, image_size: int) -> dict:
    n_min = 2 if category == "position" else 1
    num_shapes = int(rng.integers(n_min, MAX_SHAPES + 1))
    allowed = _allowed_pairs(split)
    for _ in range(200):
        # Distinct colours and distinct shape types, so "the red circle" / "the square" are unambiguous.
        if split == "heldout":
            main = HELDOUT_COMBINATIONS[int(rng.integers(len(HELDOUT_COMBINATIONS)))]
        else:
            main = _pick(rng, allowed)
        pairs = [main]
        while len(pairs) < num_shapes:
            c, s = _pick(rng, allowed)
            if all(c != pc and s != ps for pc, ps in pairs):
                pairs.append((c, s))
        shapes = [
            {
                "color": c,
                "shape": s,
                "size": _pick(rng, SIZES),
                "direction": _pick(rng, DIRECTIONS),
                "motion": "constant",
                "end_color": c,
                "end_size": None,
                "x": 0.0,
                "y": 0.0,
            }
            for c, s in pairs
        ]
        for s in shapes:
            s["end_size"] = s["size"]
        m = shapes[0]
        ref = f"{m['color']} {m['shape']}"
        used_colors = {s["color"] for s in shapes}

        if category == "counting":
            question, answer = "how many shapes are there?", NUMBER_WORDS[num_shapes - 1]
        elif category == "direction":
            question, answer = f"which way does the {ref} move?", m["direction"]
        elif category == "size":
            question, answer = f"is the {ref} big or small?", m["size"]
        elif category == "color":
            question, answer = f"what color is the {m['shape']}?", m["color"]
        elif category == "position":
            other = shapes[1]
            if rng.random() < 0.5:
                question = f"is the {ref} left or right of the {other['color']} {other['shape']} at the end?"
                axis, answer_words = 0, ("left", "right")
            else:
                question = f"is the {ref} above or below the {other['color']} {other['shape']} at the end?"
                axis, answer_words = 1, ("above", "below")
        elif category == "state":
            kind, yes = _pick(rng, ("color", "size", "stop")), bool(rng.random() < 0.5)
            answer = "yes" if yes else "no"
            if kind == "color":
                question = f"does the {ref} change color?"
                if yes:
                    free = [c for c in COLORS if c not in used_colors and (c, m["shape"]) in allowed]
                    m["end_color"] = _pick(rng, free)
            elif kind == "size":
                question = f"does the {ref} change size?"
                if yes:
                    m["end_size"] = "big" if m["size"] == "small" else "small"
            else:
                question = f"does the {ref} stop moving?"
                if yes:
                    m["motion"] = "stop"
        else:  # motion
            if rng.random() < 0.5:
                question = f"does the {ref} turn around?"
                m["motion"] = _pick(rng, ("turn", "turn", "constant", "speed_up", "slow_down"))
                answer = "yes" if m["motion"] == "turn" else "no"
            else:
                question = f"does the {ref} get faster or slower?"
                m["motion"] = _pick(rng, ("speed_up", "slow_down"))
                answer = "faster" if m["motion"] == "speed_up" else "slower"

        if not _sample_layout(rng, shapes, num_frames, image_size):
            continue
        if category == "position":
            ends = [shape_trajectory(s["motion"], s["direction"], s["x"], s["y"], num_frames, image_size)[-1] for s in shapes[:2]]
            gap = ends[0][axis] - ends[1][axis]
            if abs(gap) < 0.15 * image_size:
                continue
            answer = answer_words[0] if gap < 0 else answer_words[1]
        break
    return {
        "caption": make_caption(shapes),
        "question": question,
        "answer": answer,
        "category": category,
        "color": m["color"],
        "shape": m["shape"],
        "direction": m["direction"],
        "size": m["size"],
        "motion": m["motion"],
        "num_shapes": num_shapes,
        "num_frames": num_frames,
        "image_size": image_size,
        "shapes": shapes,
    }


def render_videos(batch: dict) -> dict:
    """Format transform adding the rendered `video` column to a batch of rows (re-apply after concatenation)."""
    if not {"shapes", "num_frames", "image_size"} <= set(batch):  # a column subset was asked for
        return batch
    batch["video"] = [
        render_clip(shapes, int(t), int(size))
        for shapes, t, size in zip(batch["shapes"], batch["num_frames"], batch["image_size"])
    ]
    return batch


def load_vtok_shapes(
    split: str = "train",
    num_samples: int | None = None,
    num_frames: int = 8,
    image_size: int = 32,
    seed: int | None = None,
) -> Dataset:
    """Builds a split of VTok-Shapes as a `datasets.Dataset` (generated here, nothing downloaded).

    Args:
        split (`str`, defaults to `"train"`):
            `"train"`, `"validation"`, `"test"` (disjoint random streams, no held-out colour–shape
            pair anywhere in a clip) or `"heldout"` (the main shape is always one of
            `HELDOUT_COMBINATIONS`).
        num_samples (`int`, *optional*):
            Number of examples; defaults to 2000 for train, 200 otherwise. Categories cycle, so
            every category is equally frequent.
        num_frames (`int`, defaults to 8) / image_size (`int`, defaults to 32):
            Clip length (at least 4) and square frame side in pixels (at least 16).
        seed (`int`, *optional*):
            Seed of the split's stream; `None` means 0. Same split + seed + sizes -> same data.

    Returns:
        A `Dataset` with the columns of `FEATURES` plus `video` (uint8 `(T, H, W, 3)` numpy array),
        rendered on access from `shapes`. Use `with_format(None)` or `reset_format()` to drop it.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Has to be one of {list(SPLITS)}.")
    if num_frames < 4:
        raise ValueError(f"num_frames must be at least 4 (motion questions need a middle), got {num_frames}.")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}.")
    num_samples = _DEFAULT_NUM_SAMPLES[split] if num_samples is None else num_samples
    if num_samples < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}.")
    seed = 0 if seed is None else seed
    rows = []
    for i in range(num_samples):
        # One independent stream per (split, seed, index): splits never share a clip's randomness.
        rng = np.random.default_rng([_SPLIT_IDS[split], seed, i])
        rows.append(_sample_example(rng, CATEGORIES[i % len(CATEGORIES)], split, num_frames, image_size))
    dataset = Dataset.from_list(rows, features=FEATURES) if rows else Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    dataset.set_transform(render_videos)
    return dataset


def text_to_video_clips(split: str = "train", num_frames: int = 8, image_size: int = 32, size: str = "big") -> Dataset:
    """One clip per text-to-video prompt: every (colour, shape, direction) of the split, drawn in a
    canonical layout (a `size` shape whose straight path is centred in the frame).

    Why a canonical layout: a prompt such as `"a red circle moving left"` says nothing about where
    the shape starts, and an LLM regressing continuous tokens predicts their mean over all start
    positions, which decodes to a blur. Fixing the layout makes the prompt determine the clip.
    `"heldout"` gives the `HELDOUT_COMBINATIONS` pairs (prompts never trained on); the other
    splits give the remaining pairs. Rows have the columns of `FEATURES` (`category` is
    `"generation"`, question and answer empty) and a rendered `video`.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Has to be one of {list(SPLITS)}.")
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}. Has to be one of {list(SIZES)}.")
    pairs = list(HELDOUT_COMBINATIONS) if split == "heldout" else _allowed_pairs(split)
    rows = []
    for (color, shape), direction in ((pair, direction) for pair in pairs for direction in DIRECTIONS):
        path = shape_trajectory("constant", direction, 0.0, 0.0, num_frames, image_size)
        x, y = image_size / 2 - (path[0] + path[-1]) / 2
        spec = {"color": color, "shape": shape, "size": size, "direction": direction, "motion": "constant",
                "end_color": color, "end_size": size, "x": float(x), "y": float(y)}  # fmt: skip
        rows.append(
            {"caption": make_generation_prompt(color, shape, direction), "question": "", "answer": "", "category": "generation",
             "color": color, "shape": shape, "direction": direction, "size": size, "motion": "constant", "num_shapes": 1,
             "num_frames": num_frames, "image_size": image_size, "shapes": [spec]}
        )  # fmt: skip
    dataset = Dataset.from_list(rows, features=FEATURES)
    dataset.set_transform(render_videos)
    return dataset


def training_examples(dataset: Dataset, num_frames: int = 8, image_size: int = 32, generation_repeats: int = 2) -> Dataset:
    """The training mix of VTok-Shapes: every clip of `dataset` with its question (`task` `"understanding"`)
    and the canonical text-to-video clips of the train split ([`text_to_video_clips`], `task`
    `"generation"`), each repeated `generation_repeats` times (0: understanding only), shuffled with
    seed 0, videos rendered on access."""
    understanding = dataset.add_column("task", ["understanding"] * len(dataset))
    generation = text_to_video_clips("train", num_frames=num_frames, image_size=image_size)
    generation = generation.add_column("task", ["generation"] * len(generation))
    examples = concatenate_datasets([understanding] + [generation] * generation_repeats).shuffle(seed=0)
    return examples.with_transform(render_videos)


def generation_subset(dataset: Dataset) -> Dataset:
    """The text-to-video examples: one steadily moving shape whose caption is `make_generation_prompt`."""
    return dataset.filter(
        lambda caption, color, shape, direction: caption == make_generation_prompt(color, shape, direction),
        input_columns=["caption", "color", "shape", "direction"],
    )


__all__ = [
    "ANSWER_VOCABULARY",
    "CATEGORIES",
    "COLORS",
    "DIRECTIONS",
    "FEATURES",
    "HELDOUT_COMBINATIONS",
    "SHAPES",
    "SPLITS",
    "draw_shape",
    "generation_subset",
    "load_vtok_shapes",
    "make_caption",
    "make_generation_prompt",
    "render_clip",
    "render_videos",
    "shape_trajectory",
    "text_to_video_clips",
    "training_examples",
]
