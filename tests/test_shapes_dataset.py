"""VTok-Shapes: determinism, splits, held-out combinations, categories and answer correctness."""

import numpy as np
import pytest

from vtok_shapes import detect_colour_motion
from vtok_shapes.dataset import (
    ANSWER_VOCABULARY,
    CATEGORIES,
    COLORS,
    DIRECTIONS,
    HELDOUT_COMBINATIONS,
    SHAPES,
    generation_subset,
    load_vtok_shapes,
    make_caption,
    make_generation_prompt,
    render_clip,
    shape_trajectory,
    text_to_video_clips,
)


@pytest.fixture(scope="module")
def train():
    return load_vtok_shapes("train", num_samples=280)


def _shape(color="red", shape="circle", direction="right", motion="constant", size="small", x=8.0, y=16.0, **kw):
    return {"color": color, "shape": shape, "size": size, "direction": direction, "motion": motion,
            "end_color": kw.get("end_color", color), "end_size": kw.get("end_size", size), "x": x, "y": y}


def _centroid(frame, color):
    ys, xs = np.nonzero(np.all(frame == COLORS[color], axis=-1))
    return np.array([xs.mean(), ys.mean()])


def test_columns_and_video(train):
    for column in ("video", "caption", "question", "answer", "category", "color", "shape", "direction"):
        assert column in train[0]
    video = train[0]["video"]
    assert isinstance(video, np.ndarray) and video.dtype == np.uint8 and video.shape == (8, 32, 32, 3)
    other = load_vtok_shapes("test", num_samples=3, num_frames=6, image_size=24)
    assert other[1]["video"].shape == (6, 24, 24, 3)
    assert len(train[:5]["video"]) == 5


def test_deterministic_and_splits_differ():
    a = load_vtok_shapes("validation", num_samples=20, seed=3)
    b = load_vtok_shapes("validation", num_samples=20, seed=3)
    assert a["question"] == b["question"] and a["caption"] == b["caption"]
    np.testing.assert_array_equal(np.stack(a[:20]["video"]), np.stack(b[:20]["video"]))
    c = load_vtok_shapes("test", num_samples=20, seed=3)
    d = load_vtok_shapes("validation", num_samples=20, seed=4)
    for other in (c, d):
        assert not np.array_equal(np.stack(a[:20]["video"]), np.stack(other[:20]["video"]))
        assert a["shapes"] != other["shapes"]


def test_heldout_combinations(train):
    seen = {(s["color"], s["shape"]) for shapes in train["shapes"] for s in shapes}
    seen |= {(s["end_color"], s["shape"]) for shapes in train["shapes"] for s in shapes}
    assert not seen & set(HELDOUT_COMBINATIONS)
    heldout = load_vtok_shapes("heldout", num_samples=30)
    assert all((c, s) in HELDOUT_COMBINATIONS for c, s in zip(heldout["color"], heldout["shape"]))


def test_every_category_and_vocabulary(train):
    assert set(train["category"]) == set(CATEGORIES)
    assert set(train["answer"]) <= set(ANSWER_VOCABULARY)
    for category in CATEGORIES:  # no category is answerable by a constant
        answers = [a for a, c in zip(train["answer"], train["category"]) if c == category]
        assert len(set(answers)) >= 2, category
    # Generation-friendly clips: one steady shape, captioned exactly by the prompt format.
    single = generation_subset(train)
    assert len(single) >= 20 and set(single["num_shapes"]) == {1} and set(single["motion"]) == {"constant"}
    assert {d for d in single["direction"]} == {"left", "right", "up", "down"}
    assert single[0]["video"].shape == (8, 32, 32, 3)


def test_answers_match_pixels(train):
    for row in train.select(range(70)):
        video, main = row["video"], row["shapes"][0]
        if row["category"] == "direction":
            start, end = _centroid(video[0], main["color"]), _centroid(video[-1], main["color"])
            dx, dy = end - start
            expected = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
            assert row["answer"] == expected
        if row["category"] == "counting":
            colours = {c for c in COLORS if np.all(video[0] == COLORS[c], axis=-1).any()}
            assert row["answer"] == ("one", "two", "three")[len(colours) - 1]
        if row["category"] == "motion":
            pos = np.stack([_centroid(f, main["color"]) for f in video])
            axis = 0 if main["direction"] in ("left", "right") else 1
            first, second = pos[4, axis] - pos[0, axis], pos[-1, axis] - pos[4, axis]
            if "turn around" in row["question"]:
                assert row["answer"] == ("yes" if first * second < 0 else "no")
            else:
                steps = np.abs(np.diff(pos[:, axis]))
                assert row["answer"] == ("faster" if steps[-1] > steps[0] else "slower")
        if row["category"] == "color":
            assert row["answer"] == main["color"] and row["shape"] in row["question"]


def test_rendered_direction_and_caption():
    video = render_clip([_shape(direction="right")])
    xs = [_centroid(f, "red")[0] for f in video]
    assert np.all(np.diff(xs) > 0)
    assert make_caption([_shape(direction="right")]) == "a red circle moving right" == make_generation_prompt("red", "circle", "right")
    up = render_clip([_shape(direction="up", x=16.0, y=24.0)])
    assert _centroid(up[-1], "red")[1] < _centroid(up[0], "red")[1]


def test_turn_around_and_speed_change():
    video = render_clip([_shape(motion="turn")])
    c = [_centroid(f, "red")[0] for f in video]
    first, second = c[4] - c[0], c[-1] - c[4]
    assert first > 0 and second < 0
    track = shape_trajectory("speed_up", "right", 8.0, 16.0, 8, 32)
    steps = np.diff(track[:, 0])
    assert np.all(np.diff(steps) > 0)
    slow = np.diff(shape_trajectory("slow_down", "left", 24.0, 16.0, 8, 32)[:, 0])
    assert np.all(slow < 0) and np.all(np.diff(np.abs(slow)) < 0)
    stop = np.diff(shape_trajectory("stop", "down", 16.0, 8.0, 8, 32)[:, 1])
    assert np.all(stop[:4] > 0) and np.all(stop[4:] == 0)


def test_state_changes_render():
    video = render_clip([_shape(end_color="blue", end_size="big")])
    assert np.all(video[0] == COLORS["red"], axis=-1).any() and not np.all(video[-1] == COLORS["red"], axis=-1).any()
    assert np.all(video[-1] == COLORS["blue"], axis=-1).sum() > np.all(video[0] == COLORS["red"], axis=-1).sum()


def test_errors():
    with pytest.raises(ValueError, match="split"):
        load_vtok_shapes("dev")
    with pytest.raises(ValueError, match="num_frames"):
        load_vtok_shapes(num_samples=1, num_frames=2)
    with pytest.raises(ValueError, match="color"):
        make_generation_prompt("purple", "circle", "left")


def test_text_to_video_clips_cover_every_prompt_in_a_canonical_layout():
    trained, heldout = text_to_video_clips("train"), text_to_video_clips("heldout")
    assert len(trained) == (len(COLORS) * len(SHAPES) - len(HELDOUT_COMBINATIONS)) * len(DIRECTIONS) == 56
    assert len(heldout) == len(HELDOUT_COMBINATIONS) * len(DIRECTIONS)
    assert not {(c, s) for c, s in zip(trained["color"], trained["shape"])} & set(HELDOUT_COMBINATIONS)
    for clip in list(trained) + list(heldout):
        assert clip["caption"] == make_generation_prompt(clip["color"], clip["shape"], clip["direction"])
        assert detect_colour_motion(clip["video"], clip["color"]) == clip["direction"]
        path = [_centroid(frame, clip["color"]) for frame in clip["video"]]
        assert np.abs((path[0] + path[-1]) / 2 - 16).max() < 1.5  # the path is centred in the frame
    with pytest.raises(ValueError, match="Unknown size 'huge'"):
        text_to_video_clips("train", size="huge")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        text_to_video_clips("dev")
