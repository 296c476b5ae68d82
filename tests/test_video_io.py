"""PyAV decoding: sampling by num_frames / fps, seeking, short videos and broken files."""

import io
import logging

import numpy as np
import pytest

from processing_vtok import load_video, write_video
from processing_vtok import video_io

NUM_FRAMES, FPS, LEVEL = 30, 10, 8  # frame i is a flat grey of level i * LEVEL


def _decoded_indices(frames: np.ndarray) -> list[int]:
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / LEVEL).astype(int).tolist()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = np.stack([np.full((32, 32, 3), i * LEVEL, np.uint8) for i in range(NUM_FRAMES)])
    return write_video(tmp_path_factory.mktemp("videos") / "count.mp4", frames, fps=FPS)


def test_num_frames_evenly_spaced_over_whole_video(clip):
    frames, metadata = load_video(clip, num_frames=6)
    # linspace(0, 29, 6) = 0, 5.8, 11.6, 17.4, 23.2, 29 -> rounded
    assert frames.shape == (6, 32, 32, 3) and frames.dtype == np.uint8
    assert metadata.frames_indices == [0, 6, 12, 17, 23, 29]
    assert _decoded_indices(frames) == [0, 6, 12, 17, 23, 29]
    assert metadata.total_num_frames == NUM_FRAMES and metadata.fps == FPS and metadata.duration == 3.0


def test_fps_sampling(clip):
    frames, metadata = load_video(clip, fps=2)  # one frame every 0.5 s of a 3 s clip at 10 fps
    assert metadata.frames_indices == [0, 5, 10, 15, 20, 25]
    assert _decoded_indices(frames) == [0, 5, 10, 15, 20, 25]


def test_default_is_sixteen_frames_not_all(clip):
    frames, _ = load_video(clip)
    assert len(frames) == video_io.DEFAULT_NUM_FRAMES == 16


def test_bytes_and_file_like(clip):
    data = open(clip, "rb").read()
    from_bytes, _ = load_video(data, num_frames=3)
    from_file, _ = load_video(io.BytesIO(data), num_frames=3)
    assert _decoded_indices(from_bytes) == _decoded_indices(from_file) == [0, 14, 29]


def test_num_frames_and_fps_together_is_an_error(clip):
    with pytest.raises(ValueError, match="num_frames.*fps"):
        load_video(clip, num_frames=4, fps=2)


def test_fewer_frames_than_asked_warns(clip, caplog):
    with caplog.at_level(logging.WARNING):
        frames, metadata = load_video(clip, num_frames=50)
    assert len(frames) == NUM_FRAMES and _decoded_indices(frames) == list(range(NUM_FRAMES))
    assert "fewer than the 50 requested" in caplog.text


@pytest.mark.parametrize(
    "make_source, problem",
    [
        (lambda d: b"\x00\x01garbage" * 50, "not a decodable video"),
        (lambda d: b"", "empty"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") and None or str(d / "empty.mp4"), "empty"),
        (lambda d: (d / "text.mp4").write_text("not a video") and None or str(d / "text.mp4"), "not a decodable"),
        (lambda d: str(d / "missing.mp4"), "no such file"),
    ],
)
def test_broken_sources_raise_value_error(tmp_path, make_source, problem):
    source = make_source(tmp_path)
    with pytest.raises(ValueError, match=problem) as error:
        load_video(source)
    assert "Cannot read video" in str(error.value)


def test_truncated_file_raises_or_warns(clip):
    data = open(clip, "rb").read()
    with pytest.raises(ValueError, match="Cannot read video"):
        load_video(data[: len(data) // 3], num_frames=4)


def test_seeking_decodes_only_near_the_samples(tmp_path, monkeypatch):
    total = 600
    frames = np.stack([np.full((16, 16, 3), (i % 30) * LEVEL, np.uint8) for i in range(total)])
    path = write_video(tmp_path / "long.mp4", frames, fps=30, gop_size=10)
    decoded = []
    original = video_io._frame_index
    monkeypatch.setattr(video_io, "_frame_index", lambda *a: decoded.append(1) or original(*a))
    out, metadata = load_video(path, num_frames=4)
    assert metadata.frames_indices == [0, 200, 399, 599]
    assert _decoded_indices(out) == [i % 30 for i in (0, 200, 399, 599)]
    assert len(decoded) < 60  # a full decode would touch all 600 frames


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 32, 32, 3), np.float32))
