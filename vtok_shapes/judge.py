"""A model-free judge for generated VTok-Shapes clips: did the named colour move the asked way?

A pixel belongs to a colour when that `COLORS` entry is its nearest palette colour (black
background included) and lies within `max_distance`; the colour's centroid is tracked over the
frames and a least-squares line through it gives the net displacement.
"""

import numpy as np

from .dataset import BACKGROUND, COLORS, DIRECTIONS


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


def colour_masks(frames, color: str, max_distance: float = 100.0) -> np.ndarray:
    """Boolean `(T, H, W)` mask of the pixels of `color` (nearest palette entry and close enough)."""
    if color not in COLORS:
        raise ValueError(f"Unknown color {color!r}. Has to be one of {list(COLORS)}.")
    frames = _to_frames(frames)
    names = list(COLORS)
    palette = np.array([COLORS[c] for c in names] + [BACKGROUND], dtype=np.float32)
    dist = np.linalg.norm(frames[..., None, :] - palette, axis=-1)  # (T, H, W, P)
    target = names.index(color)
    return (dist.argmin(-1) == target) & (dist[..., target] <= max_distance)


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


__all__ = ["colour_centroids", "colour_masks", "colour_motion_accuracy", "detect_colour_motion", "score_generated_clip"]
