"""A model-free judge for generated VTok-Shapes clips: did the named colour move the asked way, is
there the right number of shapes, of the right size, in the right place, and does the shape stay the
same from frame to frame?

A pixel belongs to a colour when that `COLORS` entry is its nearest palette colour (black
background included) and lies within `max_distance`; the colour's centroid is tracked over the
frames and a least-squares line through it gives the net displacement. Shapes are counted as
4-connected blobs of non-background pixels; a blob's shape is the renderer's shape (drawn at the
prompted size on the blob's centroid) it overlaps best. `judge_generated_clip` applies every check to a
clip generated from a prompt whose shape parameters are known (`text_to_video_clips`), and scores it
against the clip the prompt describes pixel by pixel: pass/fail checks saturate once a decoder is good,
these scores still rank.
"""

import numpy as np

from .dataset import BACKGROUND, COLORS, DIRECTIONS, SHAPES, draw_shape, render_clip, shape_trajectory

# Fraction of a 32x32 frame that a rendered shape covers: small 2.0-3.5% (triangle, circle, square),
# big 7.8-11.7%. The boundary between the two sizes sits between the largest small and smallest big one.
BIG_SHAPE_MIN_AREA = 0.055


def _to_frames(frames) -> np.ndarray:
    """Any clip as float RGB in [0, 255], shape `(T, H, W, 3)`."""
    if hasattr(frames, "detach"):  # torch tensor
        frames = frames.detach().cpu().float().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4:
        raise ValueError(f"frames must have shape (T, H, W, 3) or (T, 3, H, W), got {frames.shape}.")
    if frames.shape[-1] != 3 and frames.shape[1] == 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must be RGB with 3 channels, got shape {frames.shape}.")
    is_float = np.issubdtype(frames.dtype, np.floating)
    frames = frames.astype(np.float32)
    if is_float and frames.size and frames.max() <= 1.0:  # float clips are taken to be in [0, 1]
        frames = frames * 255.0
    return frames


def _palette_distances(frames) -> np.ndarray:
    """`(T, H, W, P)` distance of every pixel to each `COLORS` entry, then to the background (last)."""
    palette = np.array([*COLORS.values(), BACKGROUND], dtype=np.float32)
    return np.linalg.norm(_to_frames(frames)[..., None, :] - palette, axis=-1)


def colour_masks(frames, color: str, max_distance: float = 100.0) -> np.ndarray:
    """Boolean `(T, H, W)` mask of the pixels of `color` (nearest palette entry and close enough)."""
    if color not in COLORS:
        raise ValueError(f"Unknown color {color!r}. Has to be one of {list(COLORS)}.")
    dist = _palette_distances(frames)
    target = list(COLORS).index(color)
    return (dist.argmin(-1) == target) & (dist[..., target] <= max_distance)


def shape_masks(frames, max_distance: float = 100.0) -> np.ndarray:
    """Boolean `(T, H, W)` mask of the pixels of any shape colour (nearest palette entry not the background)."""
    dist = _palette_distances(frames)
    nearest = dist.argmin(-1)
    return (nearest < len(COLORS)) & (np.take_along_axis(dist, nearest[..., None], -1)[..., 0] <= max_distance)


def blobs(mask: np.ndarray, min_pixels: int = 4) -> list[np.ndarray]:
    """The 4-connected components of a `(H, W)` boolean mask with at least `min_pixels` pixels (smaller
    ones are specks of noise, not shapes), each as its `(n, 2)` pixel coordinates `(y, x)`."""
    seen = np.zeros(mask.shape, dtype=bool)
    found = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start], stack, pixels = True, [start], []
        while stack:
            y, x = stack.pop()
            pixels.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if len(pixels) >= min_pixels:
            found.append(np.array(pixels))
    return found


def largest_blobs(frames, color: str, min_pixels: int = 4, max_distance: float = 100.0) -> list[np.ndarray | None]:
    """Per frame, the pixels `(n, 2)` of the largest blob of `color` (the shape; scattered pixels of the
    colour elsewhere are ignored), `None` where there is none."""
    return [max(found, key=len) if (found := blobs(mask, min_pixels)) else None for mask in colour_masks(frames, color, max_distance)]


def count_shapes(frames, min_pixels: int = 4, max_distance: float = 100.0) -> int:
    """Shapes in the clip: the median over frames of the blobs of shape-coloured pixels (touching
    shapes count as one, as in any blob counter; VTok-Shapes lays shapes out apart)."""
    counts = [len(blobs(mask, min_pixels)) for mask in shape_masks(frames, max_distance)]
    return int(np.median(counts))


def colour_size(frames, color: str, min_pixels: int = 4, max_distance: float = 100.0) -> str | None:
    """`"small"` or `"big"`: the median area (fraction of the frame) of `color`'s largest blob over the
    frames where it is found, against `BIG_SHAPE_MIN_AREA`; `None` when the colour is never found."""
    frames = _to_frames(frames)
    areas = [len(blob) / np.prod(frames.shape[1:3]) for blob in largest_blobs(frames, color, min_pixels, max_distance) if blob is not None]
    if not areas:
        return None
    return "big" if np.median(areas) >= BIG_SHAPE_MIN_AREA else "small"


def colour_centroids(frames, color: str, min_pixels: int = 2, max_distance: float = 100.0) -> np.ndarray:
    """`(T, 2)` centroid `(x, y)` of `color` per frame, NaN where fewer than `min_pixels` match."""
    masks = colour_masks(frames, color, max_distance)
    centroids = np.full((masks.shape[0], 2), np.nan)
    for t, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs) >= min_pixels:
            centroids[t] = xs.mean() + 0.5, ys.mean() + 0.5
    return centroids


def detect_colour_motion(
    frames,
    color: str,
    min_displacement: float = 0.1,
    min_frames_fraction: float = 0.5,
    min_pixels: int = 2,
    max_distance: float = 100.0,
) -> str | None:
    """Direction (`"left"`, `"right"`, `"up"`, `"down"`) in which `color` moves, or `None`.

    Args:
        frames (`np.ndarray` or `torch.Tensor`):
            The clip, `(T, H, W, 3)` (or `(T, 3, H, W)`), uint8 in [0, 255] or float in [0, 1].
        color (`str`):
            A key of `COLORS`.
        min_displacement (`float`, defaults to 0.1):
            Net displacement below which the colour counts as still, as a fraction of the frame side.
        min_frames_fraction (`float`, defaults to 0.5):
            The colour must be found (at least `min_pixels` pixels) in this fraction of the frames
            and in at least two of them; otherwise `None`.
    """
    centroids = colour_centroids(frames, color, min_pixels, max_distance)
    found = ~np.isnan(centroids[:, 0])
    num_frames = len(centroids)
    if found.sum() < max(2, min_frames_fraction * num_frames):
        return None
    t = np.nonzero(found)[0].astype(np.float64)
    # Slope of a least-squares line through the centroids, times the clip length: robust to one bad frame.
    slopes = np.polyfit(t, centroids[found], 1)[0]
    dx, dy = slopes * (num_frames - 1)
    side = max(np.shape(_to_frames(frames))[1:3])
    if max(abs(dx), abs(dy)) < min_displacement * side:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def score_generated_clip(frames, color: str, direction: str, **kwargs) -> bool:
    """Whether `color` moves in `direction` in the clip (the judge of a `"a <color> <shape> moving <direction>"` prompt)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}. Has to be one of {list(DIRECTIONS)}.")
    return detect_colour_motion(frames, color, **kwargs) == direction


def track_error(frames, color: str, expected_centres: np.ndarray, min_pixels: int = 4, max_distance: float = 100.0) -> float:
    """Mean distance, as a fraction of the frame side, between the centre of `color`'s largest blob and
    the `(T, 2)` expected centres `(x, y)`, over the frames where it is found; `inf` when never found."""
    frames = _to_frames(frames)
    distances = [np.linalg.norm(blob[:, ::-1].mean(0) + 0.5 - centre)
                 for blob, centre in zip(largest_blobs(frames, color, min_pixels, max_distance), np.asarray(expected_centres))
                 if blob is not None]  # fmt: skip
    return float(np.mean(distances) / max(frames.shape[1:3])) if distances else float("inf")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0  # two empty masks agree


def shape_overlaps(blob: np.ndarray, size: str, image_size: int) -> dict[str, float]:
    """How well a blob (`(n, 2)` pixels `(y, x)`) overlaps each of `SHAPES` drawn at `size` and moved so its
    centroid sits on the blob's: intersection over union per shape."""
    mask = np.zeros((image_size, image_size), dtype=bool)
    mask[blob[:, 0], blob[:, 1]] = True
    centre = blob[:, ::-1].mean(0) + 0.5

    def overlap(shape: str) -> float:
        # A triangle's centroid is not the centre it is drawn around: draw once to find the offset, then again.
        template = np.argwhere(draw_shape(shape, size, *centre, image_size))
        offset = template[:, ::-1].mean(0) + 0.5 - centre if len(template) else 0.0
        return _iou(mask, draw_shape(shape, size, *(centre - offset), image_size))

    return {shape: overlap(shape) for shape in SHAPES}


def recognise_shape(blob: np.ndarray, size: str, image_size: int) -> str:
    """Which of `SHAPES` a blob is: the one it overlaps best ([`shape_overlaps`])."""
    overlaps = shape_overlaps(blob, size, image_size)
    return max(overlaps, key=overlaps.get)


def clip_shape(frames, color: str, size: str, min_pixels: int = 4, max_distance: float = 100.0) -> str | None:
    """The shape of `color` in the clip: the one its largest blob overlaps best on average over the frames
    where it is found ([`shape_overlaps`]); `None` when it never is. An average, not a vote of the frames: a
    2-frame clip whose frames disagree would tie, and a tie must not fall to whichever shape is listed first."""
    frames = _to_frames(frames)
    overlaps = [shape_overlaps(blob, size, frames.shape[1]) for blob in largest_blobs(frames, color, min_pixels, max_distance) if blob is not None]
    if not overlaps:
        return None
    return max(SHAPES, key=lambda shape: np.mean([frame[shape] for frame in overlaps]))


def frame_ious(frames, expected_frames, color: str, max_distance: float = 100.0, aligned: bool = False) -> np.ndarray:
    """Per frame, the intersection over union of `color`'s pixels in `frames` and in `expected_frames` (the
    clip the prompt describes): 1.0 where the colour covers exactly the expected pixels, lower for every
    pixel of shape, size or position that differs; no threshold to saturate. With `aligned`, each frame's
    pixels are first moved (whole pixels) so their centroid sits on the expected one: the shape and size
    alone, wherever it is drawn, so that a low overlap can be told to be the position's or the shape's."""
    generated, expected = colour_masks(frames, color, max_distance), colour_masks(expected_frames, color, max_distance)
    if generated.shape != expected.shape:
        raise ValueError(f"The clips differ in shape: {generated.shape} and {expected.shape}.")
    if not aligned:
        return np.array([_iou(a, b) for a, b in zip(generated, expected)])
    return np.array([_iou_aligned(a, b) if a.any() and b.any() else _iou(a, b) for a, b in zip(generated, expected)])


def _shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`mask` moved by whole pixels, what leaves the frame dropped (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return out


def _iou_aligned(mask: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of `mask`, moved by whole pixels so its centroid sits on `target`'s, and
    `target`: how alike two shapes are wherever they are; 0.0 when either is empty."""
    if not mask.any() or not target.any():
        return 0.0
    (y0, x0), (y1, x1) = np.argwhere(mask).mean(0), np.argwhere(target).mean(0)
    return _iou(_shifted(mask, int(round(y1 - y0)), int(round(x1 - x0))), target)


def temporal_consistency(frames, color: str, max_distance: float = 100.0) -> float:
    """How much `color`'s shape stays itself from one frame to the next, in [0, 1]: the mean over
    consecutive frame pairs of the intersection over union of the two masks once the first is moved by
    the centroid displacement. A rigid moving shape scores near 1; flicker, a vanishing shape or one
    that changes form score lower (a pair where either frame lacks the colour scores 0)."""
    masks = colour_masks(frames, color, max_distance)
    if len(masks) < 2:
        raise ValueError(f"Temporal consistency needs at least 2 frames, got {len(masks)}.")
    return float(np.mean([_iou_aligned(before, after) for before, after in zip(masks[:-1], masks[1:])]))


def judge_generated_clip(frames, shape: dict, num_frames: int | None = None, max_track_error: float = 0.15,
                         min_consistency: float = 0.5, frame_indices=None, **kwargs) -> dict:  # fmt: skip
    """Every check of a clip generated from a one-shape prompt whose shape parameters are known (a
    `shapes[0]` of `text_to_video_clips`: `color`, `size`, `direction`, `motion`, start `x`, `y`):

    - `colour_moves_as_prompted`: the prompted colour moves in the prompted direction ([`score_generated_clip`]);
    - `count_right`: exactly one shape ([`count_shapes`]);
    - `size_right`: the prompted size ([`colour_size`]);
    - `position_right`: the colour follows the prompt's path, within `max_track_error` of the frame
      side on average ([`track_error`]);
    - `temporal_consistency`: [`temporal_consistency`] (a float), and `consistent`: at least `min_consistency`;
    - `all_right`: every check above passed;
    - `shape_right`: the prompted shape ([`clip_shape`]);
    - `track_error`: the [`track_error`] itself (at most 1.0: a colour never found counts as a frame side off);
    - `iou_with_prompted_clip`: [`frame_ious`] against the prompt's own clip (`render_clip` of `shape`),
      the mean over frames; `iou_first_frame` and `iou_last_frame`: at the first and the last frame the clip
      shows (frames 0 and 7 of an 8-frame prompt for every arm of the accuracy benchmark, so they compare
      across arms that show different numbers of frames; for VTok, the key frame and the last residual one).

    The last ones came after `all_right` was first measured and are left out of it, so that runs judged
    before and after them still compare on `all_right`.

    `frame_indices`: which frames of the prompt's `num_frames`-frame clip the generated frames show, when they
    are fewer (a frame-sampling model writes only its sampled frames); the path is checked at those frames.
    `kwargs` go to [`detect_colour_motion`]."""
    clip = _to_frames(frames)
    side = clip.shape[1]
    expected = shape_trajectory(shape["motion"], shape["direction"], shape["x"], shape["y"], num_frames or len(clip), side)
    prompted_clip = render_clip([shape], num_frames or len(clip), side)
    if frame_indices is not None:
        expected, prompted_clip = expected[np.asarray(frame_indices)], prompted_clip[np.asarray(frame_indices)]
    if len(expected) != len(clip):
        raise ValueError(f"The clip has {len(clip)} frames but the path {len(expected)}: pass the frame_indices the clip shows.")
    error = track_error(clip, shape["color"], expected)
    verdict = {
        "colour_moves_as_prompted": score_generated_clip(clip, shape["color"], shape["direction"], **kwargs),
        "count_right": count_shapes(clip) == 1,
        "size_right": colour_size(clip, shape["color"]) == shape["size"],
        "position_right": error <= max_track_error,
        "temporal_consistency": round(temporal_consistency(clip, shape["color"]), 4),
    }
    verdict["consistent"] = verdict["temporal_consistency"] >= min_consistency
    verdict["all_right"] = all(verdict[k] for k in ("colour_moves_as_prompted", "count_right", "size_right", "position_right", "consistent"))
    verdict["shape_right"] = clip_shape(clip, shape["color"], shape["size"]) == shape["shape"]
    verdict["track_error"] = round(min(error, 1.0), 4)
    ious = frame_ious(clip, prompted_clip, shape["color"])
    verdict.update({"iou_with_prompted_clip": round(float(ious.mean()), 4), "iou_first_frame": round(float(ious[0]), 4),
                    "iou_last_frame": round(float(ious[-1]), 4)})  # fmt: skip
    return verdict


def colour_motion_accuracy(clips, colors, directions, **kwargs) -> float:
    """Fraction of `clips` whose `colors[i]` moves in `directions[i]` (0.0 for an empty list)."""
    if not len(clips) == len(colors) == len(directions):
        raise ValueError(
            f"clips, colors and directions must have the same length, got {len(clips)}, {len(colors)}, {len(directions)}."
        )
    if not len(clips):
        return 0.0
    hits = [score_generated_clip(c, col, d, **kwargs) for c, col, d in zip(clips, colors, directions)]
    return float(np.mean(hits))


__all__ = [
    "blobs",
    "clip_shape",
    "colour_centroids",
    "colour_masks",
    "colour_motion_accuracy",
    "colour_size",
    "count_shapes",
    "detect_colour_motion",
    "frame_ious",
    "judge_generated_clip",
    "largest_blobs",
    "recognise_shape",
    "score_generated_clip",
    "shape_overlaps",
    "shape_masks",
    "temporal_consistency",
    "track_error",
]
