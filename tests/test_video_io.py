"""PyAV decoding: sampling by time (num_frames / fps), seeking, short videos, broken files, the frame choice
of `sample_frame_indices` and the `--quick` video-loading benchmark. Real files of every codec and container:
test_video_files.py."""

import io
import json
import logging
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from processing_vtok import VTokVideoError, load_video, write_video
from processing_vtok import video_io
from processing_vtok.video_io import sample_frame_indices

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


def test_file_like_is_read_from_its_start(clip):
    with open(clip, "rb") as file:
        file.read()  # a caller (or an earlier load of the same object) left it at the end
        frames, metadata = load_video(file, num_frames=3)
        again, _ = load_video(file, num_frames=3)
    assert metadata.frames_indices == [0, 14, 29] and _decoded_indices(frames) == [0, 14, 29]
    assert np.array_equal(frames, again)


def test_metadata_reports_each_frames_pts(clip):
    _, metadata = load_video(clip, num_frames=4)
    assert metadata.frames_indices == [0, 10, 19, 29]
    # write_video's MP4 has 1024 pts units per frame at 10 fps
    assert metadata.time_base * 1024 == pytest.approx(0.1)
    assert metadata.frames_pts == [0, 10 * 1024, 19 * 1024, 29 * 1024]
    assert metadata.timestamps == pytest.approx([0.0, 1.0, 1.9, 2.9])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_frames": 4, "fps": 2}, "num_frames.*fps"),
        ({"num_frames": 0}, "num_frames` must be >= 1"),
        ({"fps": 0}, "fps` must be > 0"),
    ],
)
def test_bad_sampling_arguments_are_value_errors_not_video_errors(clip, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        load_video(clip, **kwargs)
    assert not isinstance(error.value, VTokVideoError)  # a mistake in the call, not a bad video to skip


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
def test_broken_sources_raise_the_video_error(tmp_path, make_source, problem):
    source = make_source(tmp_path)
    with pytest.raises(VTokVideoError, match=problem) as error:
        load_video(source)
    assert "Cannot read video" in str(error.value)
    assert isinstance(error.value, ValueError) and error.value.batch_index is None


def test_truncated_file_raises(clip):
    data = open(clip, "rb").read()
    with pytest.raises(VTokVideoError, match=f"Cannot read video <{len(data) // 3} bytes>"):
        load_video(data[: len(data) // 3], num_frames=4)


def test_seeking_decodes_only_near_the_samples(tmp_path, monkeypatch):
    total = 600
    frames = np.stack([np.full((16, 16, 3), (i % 30) * LEVEL, np.uint8) for i in range(total)])
    path = write_video(tmp_path / "long.mp4", frames, fps=30, gop_size=10)
    decoded = []
    original = video_io._frames_from

    def counting_frames_from(*args):
        for frame in original(*args):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video_io, "_frames_from", counting_frames_from)
    out, metadata = load_video(path, num_frames=4)
    assert metadata.frames_indices == [0, 200, 399, 599]
    assert _decoded_indices(out) == [i % 30 for i in (0, 200, 399, 599)]
    assert len(decoded) < 60  # a full decode would touch all 600 frames


# -- choosing frames by time --

# The variable-frame-rate clip: 20 frames at 24 fps, then 20 at 6 fps (4 s).
VFR_TIMES = [i / 24 for i in range(20)] + [20 / 24 + i / 6 for i in range(20)]


def test_constant_frame_rate_gives_linspace_rounded():
    for total, num_frames in ((total, n) for total in range(1, 41) for n in range(1, total + 1)):
        timestamps = np.arange(total) / 30
        # round(linspace(0, T - 1, N)) in exact arithmetic, a tie going to the earlier frame
        steps = [Fraction(k * (total - 1), max(num_frames - 1, 1)) for k in range(num_frames)]
        expected = [math.ceil(step - Fraction(1, 2)) for step in steps]
        assert sample_frame_indices(timestamps, num_frames=num_frames).tolist() == expected


def test_variable_frame_rate_is_sampled_evenly_in_time():
    # instants k * 4 / 7 s: 0, .57, 1.14, 1.71, 2.29, 2.86, 3.43, 4 -> the nearest frames
    # (0.58 s = frame 14; from 0.83 s on a frame every 1/6 s: 1.17 = 22, 1.67 = 25, 2.33 = 29, ...)
    assert sample_frame_indices(VFR_TIMES, num_frames=8).tolist() == [0, 14, 22, 25, 29, 32, 36, 39]
    assert sample_frame_indices(VFR_TIMES, num_frames=40).tolist() == list(range(40))
    # one frame every 0.5 s: the frame on display then (0.5 s is frame 12, 1.0 s frame 21, ...)
    assert sample_frame_indices(VFR_TIMES, fps=2).tolist() == [0, 12, 21, 24, 27, 30, 33, 36, 39]


@pytest.mark.parametrize("num_frames", [2, 5, 17, 29, 38, 39])
def test_num_frames_always_gives_that_many_distinct_frames(num_frames):
    # Instants crowd onto the slow part of the clip; two nearest to one frame must not give it twice.
    rng = np.random.default_rng(num_frames)
    timestamps = np.cumsum(np.concatenate([[0], rng.choice([0.01, 0.5], 39)]))
    indices = sample_frame_indices(timestamps, num_frames=num_frames).tolist()
    assert len(indices) == num_frames and indices == sorted(set(indices))
    assert indices[0] == 0 and indices[-1] == 39


def test_fewer_frames_than_asked_warns_with_the_name(caplog):
    with caplog.at_level(logging.WARNING):
        assert sample_frame_indices(np.arange(3) / 10, num_frames=5, name="Video 7").tolist() == [0, 1, 2]
        assert sample_frame_indices(np.arange(3) / 10, fps=20, name="Video 8").tolist() == [0, 1, 2]
    assert "Video 7 has 3 frames, fewer than the 5 requested (num_frames=5)" in caplog.text
    assert "Video 8 has 3 frames, fewer than the 5 requested (fps=20)" in caplog.text  # instants 0, .05, ..., .2


def test_fps_sampling_counts_frames_not_instants():
    # A damaged file can put a frame a billion seconds in: sampling must not build one instant per 1/fps.
    assert sample_frame_indices([0.0, 0.5, 1e9], fps=30).tolist() == [0, 1, 2]


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 32, 32, 3), np.float32))


def test_chat_template_without_tokenizing_rejects_an_unknown_keyword():
    """`apply_chat_template(tokenize=False)` processes no video, yet a misspelt sampling keyword must not be
    dropped with a warning: it raises the same TypeError as `processor(...)` and `tokenize=True`."""
    from test_processor import CORPUS, make_processor

    from processing_vtok import train_text_tokenizer

    processor = make_processor(train_text_tokenizer(CORPUS, vocab_size=320))
    messages = [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}, {"type": "text", "text": "hi"}]}]
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['num_frame'\]"):
        processor.apply_chat_template(messages, tokenize=False, num_frame=8)
    prompt = processor.apply_chat_template(messages, tokenize=False, num_frames=8, add_generation_prompt=True)
    assert prompt.count("<video>") == 1 and prompt.endswith("assistant\n")


def test_unwanted_non_reference_frames_are_skipped_and_change_nothing(tmp_path, monkeypatch):
    """Decoding toward a sample skips the B-frames no other frame refers to (libx264's default has them):
    fewer frames are decoded, and the frames returned are the same as with every frame decoded."""
    total = 300
    # a texture panning one pixel a frame: no scene cut, so libx264 keeps its GOP of 100 frames
    texture = np.random.default_rng(0).integers(0, 256, (16, 16, 1), dtype=np.uint8).repeat(2, 0).repeat(2, 1)
    texture = texture.repeat(3, axis=2)  # grey: chroma subsampling loses nothing
    frames = np.stack([np.roll(texture, i, axis=1) for i in range(total)])
    path = write_video(tmp_path / "long.mp4", frames, fps=30, gop_size=100)
    original = video_io._frames_from

    def decode(skip: bool):
        decoded = []

        def counting_frames_from(container, stream, pts, wanted=None):
            for frame in original(container, stream, pts, wanted if skip else None):
                decoded.append(frame.pts)
                yield frame

        monkeypatch.setattr(video_io, "_frames_from", counting_frames_from)
        out, metadata = load_video(path, num_frames=4)
        assert metadata.frames_indices == [0, 100, 199, 299]
        return out, len(decoded)

    skipped, decoded_with_skipping = decode(skip=True)
    every, decoded_without = decode(skip=False)
    np.testing.assert_array_equal(skipped, every)
    assert np.abs(skipped.astype(int) - frames[[0, 100, 199, 299]]).mean() < 12  # the frames encoded there
    assert decoded_with_skipping < 0.75 * decoded_without


@pytest.mark.slow  # three processes, one imports torch and transformers: ~20 s on 2 cores
def test_video_io_benchmark_quick_runs_and_returns_the_same_frames(tmp_path):
    """`benchmarks/video_io.py --quick` end to end (a 33 s 160x96 clip): every method returns the loader's
    frames, and the whole-video baseline holds the decoded video while the loader does not. Timings are
    recorded, not asserted."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "video_io.py"
    output = tmp_path / "video_io.json"
    subprocess.run([sys.executable, str(script), "--quick", "--output", str(output)], check=True, capture_output=True)
    report = json.loads(output.read_text())
    clip, results = report["clip"], report["results"]
    assert (clip["num_frames"], clip["width"], clip["height"], clip["key_frames"] > 2) == (1000, 160, 96, True)
    assert all(result["same_frames_as_loader"] for result in results.values())
    decoded_mb = clip["num_frames"] * 160 * 96 * 3 / 2**20
    assert results["decode_every_frame_held"]["peak_rss_mb"] > 0.9 * decoded_mb
    assert results["loader"]["peak_rss_mb"] < decoded_mb / 2
    assert all(result["wall_seconds"] > 0 and result["cpu_seconds"] > 0 for result in results.values())
