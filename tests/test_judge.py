"""The judge on rendered clips whose answer is known: colour motion in all four directions, blank clips,
absent colours; shape count, size, position along the path and frame-to-frame consistency, each also on
a clip where it is wrong; the shape recognised, and the overlap with the prompt's own clip."""

import numpy as np
import pytest
import torch

from vtok_shapes.dataset import SHAPES, COLORS, draw_shape, generation_subset, load_vtok_shapes, render_clip, shape_trajectory, text_to_video_clips
from vtok_shapes.judge import (
    clip_shape,
    colour_motion_accuracy,
    colour_size,
    count_shapes,
    detect_colour_motion,
    frame_ious,
    judge_generated_clip,
    recognise_shape,
    score_generated_clip,
    temporal_consistency,
    track_error,
)

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


# -- count, size, position and temporal consistency -------------------------------------------------


def _spec(color="red", shape="circle", size="big", direction="right", x=10.0, y=16.0, motion="constant"):
    return {"color": color, "shape": shape, "size": size, "direction": direction, "motion": motion,
            "end_color": color, "end_size": size, "x": x, "y": y}  # fmt: skip


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
@pytest.mark.parametrize("size", ["small", "big"])
def test_size_of_every_shape(shape, size):
    clip = render_clip([_spec(shape=shape, size=size)])
    assert colour_size(clip, "red") == size
    assert colour_size(clip, "blue") is None


def test_counts_shapes_apart_and_ignores_specks():
    one = render_clip([_spec()])
    two = render_clip([_spec(y=6.0, size="small"), _spec("cyan", "square", "small", "left", x=24.0, y=26.0)])
    three = render_clip([_spec(y=5.0, size="small"), _spec("cyan", "square", "small", "left", x=24.0, y=16.0),
                         _spec("yellow", "triangle", "small", "up", x=6.0, y=26.0)])  # fmt: skip
    assert (count_shapes(one), count_shapes(two), count_shapes(three)) == (1, 2, 3)
    speckled = one.copy()
    speckled[:, 0, 0] = COLORS["green"]  # one-pixel noise is not a shape
    assert count_shapes(speckled) == 1
    assert count_shapes(np.zeros((8, 32, 32, 3), np.uint8)) == 0


def test_track_error_follows_the_path():
    spec = _spec()
    clip = render_clip([spec])
    path = shape_trajectory("constant", "right", spec["x"], spec["y"], 8, 32)
    assert track_error(clip, "red", path) < 0.05
    assert track_error(clip, "red", path[::-1]) > 0.15  # the same path run backwards
    assert track_error(clip, "red", path + 8) > 0.15  # shifted by a quarter of the frame
    assert track_error(clip, "blue", path) == float("inf")
    # red specks scattered over the frame (an untrained decoder's output) are not a shape on the path
    specks = np.zeros_like(clip)
    specks[:, ::3, ::3] = COLORS["red"]
    assert track_error(specks, "red", path) == float("inf") and colour_size(specks, "red") is None


def test_temporal_consistency_rigid_against_flicker_and_morphing():
    clip = render_clip([_spec("green", "square")])
    assert temporal_consistency(clip, "green") > 0.9
    flicker = clip.copy()
    flicker[1::2] = 0  # the shape vanishes every other frame
    assert temporal_consistency(flicker, "green") == 0.0
    morphing = np.stack([render_clip([_spec("green", ("square", "triangle")[t % 2], ("big", "small")[t % 2])])[t] for t in range(8)])
    assert temporal_consistency(morphing, "green") < 0.6
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_consistency(clip[:1], "green")


def test_judge_generated_clip_right_and_wrong():
    prompt = text_to_video_clips("test").with_format(None)[0]
    spec = prompt["shapes"][0]
    clip = render_clip([spec])
    verdict = judge_generated_clip(clip, spec)
    assert verdict["all_right"] and verdict["temporal_consistency"] > 0.9
    assert set(verdict) == {"colour_moves_as_prompted", "count_right", "size_right", "position_right", "temporal_consistency",
                            "consistent", "all_right", "shape_right", "track_error", "iou_with_prompted_clip", "iou_first_frame",
                            "iou_last_frame"}  # fmt: skip
    assert verdict["shape_right"] and verdict["iou_with_prompted_clip"] == verdict["iou_first_frame"] == verdict["iou_last_frame"] == 1.0
    assert verdict["track_error"] < 0.05
    last_lost = clip.copy()
    last_lost[-1] = 0  # the last frame lost: the first frame's overlap stays whole, the last one's is 0
    late = judge_generated_clip(last_lost, spec)
    assert (late["iou_first_frame"], late["iou_last_frame"], late["iou_with_prompted_clip"]) == (1.0, 0.0, 0.875)
    wrong_size = judge_generated_clip(render_clip([{**spec, "size": "small", "end_size": "small"}]), spec)
    assert not wrong_size["size_right"] and not wrong_size["all_right"] and wrong_size["colour_moves_as_prompted"]
    extra = render_clip([spec, _spec("cyan", "square", "small", "left", x=28.0, y=3.0)])
    assert not judge_generated_clip(extra, spec)["count_right"]
    moved = {**spec, "x": spec["x"] + 9, "y": spec["y"] + 9}
    assert not judge_generated_clip(render_clip([moved]), spec)["position_right"]
    other_shape = judge_generated_clip(render_clip([{**spec, "shape": next(s for s in SHAPES if s != spec["shape"])}]), spec)
    assert not other_shape["shape_right"] and other_shape["all_right"]  # all_right keeps the checks it was first measured with
    assert 0.3 < other_shape["iou_with_prompted_clip"] < 1.0
    # the IoU ranks what the pass/fail checks let through: a shift of 1 pixel passes position_right but costs overlap
    nudged = {**spec, "x": spec["x"] + 1}
    nudged_verdict, moved_verdict = judge_generated_clip(render_clip([nudged]), spec), judge_generated_clip(render_clip([moved]), spec)
    assert nudged_verdict["all_right"] and 0.7 < nudged_verdict["iou_with_prompted_clip"] < 1.0
    assert moved_verdict["iou_with_prompted_clip"] < nudged_verdict["iou_with_prompted_clip"]
    blank = judge_generated_clip(np.zeros_like(clip), spec)
    assert (blank["track_error"], blank["iou_with_prompted_clip"], blank["shape_right"]) == (1.0, 0.0, False)
    flicker = clip.copy()
    flicker[1::2] = 0
    assert not judge_generated_clip(flicker, spec)["consistent"]


def test_judge_a_sampled_clip_at_the_frames_it_shows():
    """A frame-sampling model writes only its sampled frames (frames 0 and 7 of 8): the path is checked there."""
    prompt = text_to_video_clips("test").with_format(None)[0]
    spec = prompt["shapes"][0]
    sampled = render_clip([spec])[[0, 7]]
    assert judge_generated_clip(sampled, spec, num_frames=8, frame_indices=[0, 7])["position_right"]
    assert not judge_generated_clip(sampled, spec, num_frames=8, frame_indices=[0, 1])["position_right"]
    with pytest.raises(ValueError, match="The clip has 2 frames but the path 8: pass the frame_indices"):
        judge_generated_clip(sampled, spec, num_frames=8)


@pytest.mark.parametrize("size", ["small", "big"])
def test_recognises_every_shape_anywhere(size):
    """Each shape as the renderer draws it, at 25 places (edges included, where it is cut off), is recognised as itself."""
    for shape in SHAPES:
        for x in np.linspace(4.0, 28.0, 5):
            for y in np.linspace(4.0, 28.0, 5):
                assert recognise_shape(np.argwhere(draw_shape(shape, size, x, y, 32)), size, 32) == shape, (shape, x, y)


def test_draw_shape_names_a_wrong_shape_or_size():
    with pytest.raises(ValueError, match=r"Unknown size 'huge'. Has to be one of \['small', 'big'\]"):
        draw_shape("circle", "huge", 16.0, 16.0, 32)
    with pytest.raises(ValueError, match="Unknown shape 'star'"):
        draw_shape("star", "big", 16.0, 16.0, 32)


def test_clip_shape_and_frame_ious():
    triangle = render_clip([_spec(shape="triangle")])
    assert clip_shape(triangle, "red", "big") == "triangle"
    assert clip_shape(triangle, "blue", "big") is None
    one_odd_frame = triangle.copy()
    one_odd_frame[3] = render_clip([_spec(shape="square")])[3]
    assert clip_shape(one_odd_frame, "red", "big") == "triangle"  # the shape of most frames
    # two frames that disagree: a clean triangle, and a triangle grown into a circle (which alone reads as a
    # square). A vote would tie and fall to the shape listed first (circle); the mean overlap says triangle.
    spec = _spec(shape="triangle")
    grown = render_clip([spec])[:2]
    grown[1][render_clip([{**spec, "shape": "circle"}])[0].any(-1)] = COLORS["red"]
    assert recognise_shape(np.argwhere(grown[1].any(-1)), "big", 32) == "square"
    assert clip_shape(grown, "red", "big") == "triangle"
    assert frame_ious(triangle, triangle, "red").tolist() == [1.0] * 8
    odd = frame_ious(one_odd_frame, triangle, "red")
    assert odd[3] < 1.0 and np.delete(odd, 3).tolist() == [1.0] * 7  # only the odd frame differs
    assert frame_ious(triangle, triangle, "blue").tolist() == [1.0] * 8  # absent from both: nothing differs
    with pytest.raises(ValueError, match="The clips differ in shape"):
        frame_ious(triangle[:2], triangle, "red")


def test_aligned_frame_ious_separate_position_from_shape():
    triangle = render_clip([_spec(shape="triangle")])
    moved = render_clip([_spec(shape="triangle", x=_spec()["x"] + 3)])  # the same shape, 3 pixels to the right
    assert (frame_ious(moved, triangle, "red") < 0.8).all()
    assert frame_ious(moved, triangle, "red", aligned=True).tolist() == [1.0] * 8  # position off, shape right
    square = render_clip([_spec(shape="square")])
    assert (frame_ious(square, triangle, "red", aligned=True) < 0.8).all()  # a wrong shape stays wrong wherever it is
    missing = triangle.copy()
    missing[5] = 0
    aligned = frame_ious(missing, triangle, "red", aligned=True)
    assert aligned[5] == 0.0 and np.delete(aligned, 5).tolist() == [1.0] * 7  # a frame without the colour overlaps nothing
    assert frame_ious(triangle, triangle, "blue", aligned=True).tolist() == [1.0] * 8  # absent from both: nothing differs
