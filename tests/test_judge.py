"""The colour-motion judge on rendered clips: all four directions, blank clips, absent colours."""

import numpy as np
import pytest
import torch

from vtok_shapes.judge import colour_motion_accuracy, detect_colour_motion, score_generated_clip
from vtok_shapes.dataset import COLORS, generation_subset, load_vtok_shapes, render_clip

STARTS = {"left": (24.0, 16.0), "right": (8.0, 16.0), "up": (16.0, 24.0), "down": (16.0, 8.0)}


def _clip(color="red", shape="circle", direction="right", motion="constant", size="small"):
    x, y = STARTS[direction]
    s = {"color": color, "shape": shape, "size": size, "direction": direction, "motion": motion,
         "end_color": color, "end_size": size, "x": x, "y": y}
    return render_clip([s])


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
@pytest.mark.parametrize("color,shape", [("red", "circle"), ("cyan", "triangle"), ("yellow", "square")])
def test_detects_all_directions(direction, color, shape):
    clip = _clip(color, shape, direction)
    assert detect_colour_motion(clip, color) == direction
    assert score_generated_clip(clip, color, direction)
    # float in [0, 1], channel-first torch tensors and mild noise give the same verdict
    assert detect_colour_motion(clip.astype(np.float32) / 255.0, color) == direction
    assert detect_colour_motion(torch.from_numpy(clip).permute(0, 3, 1, 2), color) == direction
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 20, clip.shape), 0, 255).astype(np.uint8)
    assert detect_colour_motion(noisy, color) == direction


def test_none_when_absent_blank_or_still():
    assert detect_colour_motion(np.zeros((8, 32, 32, 3), np.uint8), "red") is None
    assert detect_colour_motion(_clip("red"), "blue") is None
    still = np.repeat(_clip("green")[:1], 8, axis=0)
    assert detect_colour_motion(still, "green") is None
    # a turn-around ends near its start: little net displacement
    assert detect_colour_motion(_clip(motion="turn"), "red") in (None, "right")
    # seen in too few frames
    sparse = _clip("red")
    sparse[2:] = 0
    assert detect_colour_motion(sparse, "red") is None
    assert not score_generated_clip(_clip("red", direction="left"), "red", "right")


def test_ignores_other_colours():
    a, b = _clip("red", direction="left"), _clip("blue", "square", direction="down")
    both = np.maximum(a, b)
    assert detect_colour_motion(both, "red") == "left"
    assert detect_colour_motion(both, "blue") == "down"


def test_accuracy_on_dataset_clips():
    data = generation_subset(load_vtok_shapes("test", num_samples=140))
    rows = data[:]
    rate = colour_motion_accuracy(rows["video"], rows["color"], rows["direction"])
    assert rate == 1.0
    wrong = [{"left": "right", "right": "left", "up": "down", "down": "up"}[d] for d in rows["direction"]]
    assert colour_motion_accuracy(rows["video"], rows["color"], wrong) == 0.0
    assert colour_motion_accuracy([], [], []) == 0.0
    with pytest.raises(ValueError, match="same length"):
        colour_motion_accuracy(rows["video"], rows["color"][:1], rows["direction"])
    with pytest.raises(ValueError, match="color"):
        detect_colour_motion(rows["video"][0], "purple")
    assert set(COLORS) >= set(rows["color"])
