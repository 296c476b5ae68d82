"""`load_video` on real files made with PyAV's encoders: every codec (H.264, HEVC, AV1, VP9, MPEG-4, MJPEG)
and container, 8- and 10-bit, 4:2:0 and 4:4:4, odd sizes, a one-frame
clip, variable frame rate, display rotation, an edit list, audio, truncation at several points and random
damage. Each result is checked frame by frame against a plain decode of the whole file (`full_decode`)."""

import logging
import re

import av
import numpy as np
import pytest

from processing_vtok import VTokVideoError, load_video
from video_files import X265_OPTIONS, encode, full_decode, mux, pattern

NUM_FRAMES, FPS = 24, 10


def assert_matches_full_decode(frames, metadata, source, expected_indices):
    """The returned frames are exactly the full decode's frames at `metadata.frames_indices`, which are the
    expected ones, and `frames_pts` are the presentation times of those positions. (Those are the decoded
    frames' own pts, except in AVI: it stores no pts, and FFmpeg's guesses come out of the decoder out of
    order for B-frames; in presentation order they are the right times.)"""
    reference_pts, reference = full_decode(source)
    assert metadata.frames_indices == expected_indices
    assert metadata.frames_pts == [sorted(reference_pts)[i] for i in expected_indices]
    assert frames.shape == (len(expected_indices), *reference.shape[1:]) and frames.dtype == np.uint8
    for frame, index in zip(frames, expected_indices):
        np.testing.assert_array_equal(frame, reference[index])


# (codec, file extension, pixel format, width, height, encoder options)
FORMATS = [
    ("libx264", "mp4", "yuv420p", 64, 48, {"g": "6"}),  # B-frames (x264 default)
    ("libx264", "mkv", "yuv444p", 33, 17, {"g": "6"}),  # odd size
    ("libx264", "avi", "yuv420p", 48, 32, {"g": "6"}),  # AVI stores no pts: B-frames come out of order
    ("mpeg4", "mp4", "yuv420p", 48, 32, {"bf": "2", "g": "6"}),
    ("mpeg4", "avi", "yuv420p", 33, 17, {"bf": "2", "g": "6"}),
    ("mjpeg", "avi", "yuvj444p", 33, 17, {}),
    ("mjpeg", "mkv", "yuvj420p", 48, 32, {}),
    ("libvpx-vp9", "webm", "yuv420p", 33, 17, {"g": "6"}),
    ("libvpx-vp9", "mkv", "yuv420p", 48, 32, {"g": "6"}),
    ("libvpx-vp9", "webm", "yuv444p", 48, 32, {"g": "6"}),
    ("libx264", "mp4", "yuv420p10le", 48, 32, {"g": "6"}),  # 10-bit H.264 (High 10)
    ("libx265", "mp4", "yuv420p", 64, 48, {"g": "6", **X265_OPTIONS}),  # HEVC, B-frames (x265 default)
    ("libx265", "mkv", "yuv420p10le", 64, 48, {"g": "6", **X265_OPTIONS}),  # 10-bit HEVC (Main 10)
    ("libx265", "mkv", "yuv444p", 66, 34, {"g": "6", **X265_OPTIONS}),
    ("libsvtav1", "mp4", "yuv420p", 64, 48, {"g": "6"}),  # AV1, decoded by libdav1d
    ("libsvtav1", "webm", "yuv420p10le", 48, 32, {"g": "6"}),  # 10-bit AV1
    ("libsvtav1", "mkv", "yuv420p", 33, 17, {"g": "6"}),
]


@pytest.mark.parametrize("codec, extension, pix_fmt, width, height, options", FORMATS)
def test_every_format_matches_a_full_decode(tmp_path, codec, extension, pix_fmt, width, height, options):
    source = pattern(NUM_FRAMES, height, width)
    path = encode(tmp_path / f"clip.{extension}", source, codec, pix_fmt, fps=FPS, options=options)

    frames, metadata = load_video(path, num_frames=5)  # round(linspace(0, 23, 5))
    assert_matches_full_decode(frames, metadata, path, [0, 6, 11, 17, 23])
    # ... and they are the frames that were encoded there (lossy codecs: close, not equal)
    assert np.abs(frames.astype(int) - source[[0, 6, 11, 17, 23]]).mean() < 12
    assert (metadata.width, metadata.height, metadata.fps) == (width, height, FPS)
    assert metadata.duration == pytest.approx(NUM_FRAMES / FPS)

    frames, metadata = load_video(path, num_frames=NUM_FRAMES)
    assert_matches_full_decode(frames, metadata, path, list(range(NUM_FRAMES)))
    assert metadata.total_num_frames == NUM_FRAMES
    frames, metadata = load_video(path, fps=2.5)  # a frame every 0.4 s
    assert_matches_full_decode(frames, metadata, path, [0, 4, 8, 12, 16, 20])
    assert metadata.timestamps == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6, 2.0])


@pytest.mark.parametrize(
    "codec, extension, pix_fmt",
    [
        ("libx264", "mp4", "yuv444p"),
        ("libx264", "mkv", "yuv420p"),
        ("mjpeg", "avi", "yuvj420p"),
        ("libvpx-vp9", "webm", "yuv420p"),
        ("libx265", "mkv", "yuv420p10le"),
        ("libsvtav1", "mkv", "yuv420p10le"),
    ],
)
def test_one_frame_clip(tmp_path, caplog, codec, extension, pix_fmt):
    path = encode(tmp_path / f"one.{extension}", pattern(1, 48, 64), codec, pix_fmt)
    with caplog.at_level(logging.WARNING):
        frames, metadata = load_video(path, num_frames=8)
    assert_matches_full_decode(frames, metadata, path, [0])
    assert "has 1 frames, fewer than the 8 requested" in caplog.text
    frames, metadata = load_video(path, fps=30)
    assert_matches_full_decode(frames, metadata, path, [0])


def test_a_packet_the_muxer_refuses_is_named(tmp_path):
    """The test files' muxing says which packet a container refused (a timestamp going backwards here), so
    a refusal in a loaded CI run can be told apart from a decoding bug."""
    with av.open(str(tmp_path / "refused.mkv"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        packets = []
        for i, array in enumerate(pattern(3, 32, 32)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode()
        mux(container, packets[0])
        packets[1].pts = packets[1].dts = -5
        with pytest.raises(av.error.ArgumentError, match=r"muxing libx264 packet pts=-?\d+ dts=-?\d+"):
            mux(container, packets[1])


# The variable-frame-rate clip: 20 frames at 24 fps, then 20 at 6 fps (a frame at 0 s ... 4 s).
VFR_TIMES = [i / 24 for i in range(20)] + [20 / 24 + i / 6 for i in range(20)]


@pytest.mark.parametrize("extension", ["mp4", "mkv"])
def test_variable_frame_rate_is_sampled_by_time_and_reports_true_timestamps(tmp_path, extension):
    path = encode(tmp_path / f"vfr.{extension}", pattern(40, 32, 48), times=VFR_TIMES)
    frames, metadata = load_video(path, num_frames=8)
    # 8 instants evenly spaced over 4 s, each the nearest frame (hand-derived in test_video_io.py)
    expected = [0, 14, 22, 25, 29, 32, 36, 39]
    assert_matches_full_decode(frames, metadata, path, expected)
    assert metadata.timestamps == pytest.approx([VFR_TIMES[i] for i in expected], abs=1e-3)  # MKV: milliseconds

    frames, metadata = load_video(path, num_frames=40)  # all 40 frames, each once
    assert_matches_full_decode(frames, metadata, path, list(range(40)))
    frames, metadata = load_video(path, fps=2)  # the frame on display every 0.5 s
    assert_matches_full_decode(frames, metadata, path, [0, 12, 21, 24, 27, 30, 33, 36, 39])


@pytest.mark.parametrize("rotation, corner", [(90, (-1, 0)), (-90, (0, -1)), (180, (-1, -1))])
def test_display_rotation_gives_upright_frames(tmp_path, rotation, corner):
    # a 32 x 16 (w x h) clip whose blue block is in the top-left corner, stored with a display rotation
    path = encode(tmp_path / "phone.mp4", pattern(6, 16, 32), rotation=rotation)
    frames, metadata = load_video(path, num_frames=3)
    turns = rotation // 90  # counter-clockwise quarter turns
    upright_shape = (16, 32) if turns % 2 == 0 else (32, 16)
    assert frames.shape == (3, *upright_shape, 3)
    assert (metadata.height, metadata.width) == upright_shape
    reference_pts, reference = full_decode(path)
    assert metadata.frames_indices == [0, 2, 5]
    for frame, index in zip(frames, metadata.frames_indices):
        np.testing.assert_array_equal(frame, np.rot90(reference[index], turns))
    red, green, blue = frames[0][corner]  # the block is now where a player shows it
    assert blue > 200 and red < 60 and green < 60


def test_frames_an_edit_list_hides_are_not_returned(tmp_path):
    # The first 3 frames lie before time 0: the MP4 edit list starts the video at the 4th.
    path = encode(tmp_path / "trimmed.mp4", pattern(12, 32, 48), times=[(i - 3) / 10 for i in range(12)])
    frames, metadata = load_video(path, num_frames=3)
    assert_matches_full_decode(frames, metadata, path, [0, 4, 8])
    assert metadata.total_num_frames == 9 and metadata.frames_pts[0] == 0


@pytest.mark.parametrize("extension", ["mp4", "mkv"])
def test_audio_that_outlasts_the_video_is_not_truncation(tmp_path, extension):
    path = encode(tmp_path / f"talk.{extension}", pattern(10, 32, 48), audio_seconds=3.0,
                  container_options={"movflags": "faststart"} if extension == "mp4" else None)
    frames, metadata = load_video(path, num_frames=4)
    assert_matches_full_decode(frames, metadata, path, [0, 3, 6, 9])
    data = open(path, "rb").read()
    with pytest.raises(VTokVideoError, match="truncated or damaged"):
        load_video(data[: int(len(data) * 0.9)])


# (file extension, codec, pixel format, container options): files whose index survives a cut at the end
TRUNCATABLE = [
    ("mp4", "libx264", "yuv420p", {"movflags": "faststart"}),  # index (moov) at the front
    ("mkv", "libx264", "yuv420p", {}),
    ("webm", "libvpx-vp9", "yuv420p", {}),
    ("avi", "mjpeg", "yuvj420p", {}),
    ("mkv", "libx265", "yuv420p10le", {}),
    ("webm", "libsvtav1", "yuv420p10le", {}),
]


@pytest.mark.parametrize("extension, codec, pix_fmt, container_options", TRUNCATABLE)
@pytest.mark.parametrize("kept", [0.6, 0.75, 0.9, 0.97])
def test_truncated_file_raises_and_allow_partial_reads_what_is_there(
    tmp_path, caplog, extension, codec, pix_fmt, container_options, kept
):
    source = pattern(NUM_FRAMES, 48, 64)
    options = X265_OPTIONS if codec == "libx265" else None
    whole = encode(tmp_path / f"whole.{extension}", source, codec, pix_fmt, options=options,
                   container_options=container_options)
    data = open(whole, "rb").read()
    cut = tmp_path / f"cut.{extension}"
    cut.write_bytes(data[: int(len(data) * kept)])

    message = (
        rf"Cannot read video '{re.escape(str(cut))}': the file is truncated or damaged: "
        r"its data covers \d\.\d\d s of the 2\.40 s it promises \((\d+) frames\)"
    )
    with pytest.raises(VTokVideoError, match=message) as error:
        load_video(cut, num_frames=8)
    frames_there = int(re.match(message, str(error.value)).group(1))
    assert 0 < frames_there < NUM_FRAMES

    with caplog.at_level(logging.WARNING):
        frames, metadata = load_video(cut, num_frames=NUM_FRAMES, allow_partial=True)
    assert "truncated or damaged" in caplog.text and "allow_partial=True" in caplog.text
    # every frame that is there, identical to the frame of the whole file with the same pts
    assert metadata.total_num_frames == len(frames) == frames_there
    whole_pts, whole_frames = full_decode(whole)
    for frame, pts in zip(frames, metadata.frames_pts):
        np.testing.assert_array_equal(frame, whole_frames[whole_pts.index(pts)])


def test_truncated_mp4_with_its_index_at_the_end_is_not_a_video(tmp_path):
    data = open(encode(tmp_path / "whole.mp4", pattern(NUM_FRAMES, 32, 48)), "rb").read()
    with pytest.raises(VTokVideoError, match=r"Cannot read video <\d+ bytes>: not a decodable video container"):
        load_video(data[: int(len(data) * 0.9)])


def test_damaged_files_raise_only_the_video_error(tmp_path):
    """Random byte changes in real files (seeded): a result that is a valid video, or VTokVideoError, never a
    PyAV, numpy or other exception."""
    seeds = [
        open(encode(tmp_path / name, pattern(12, 48, 64), codec, pix_fmt, options=options), "rb").read()
        for name, codec, pix_fmt, options in [
            ("a.mp4", "libx264", "yuv420p", {"g": "4"}),
            ("b.mkv", "mpeg4", "yuv420p", {"bf": "2", "g": "4"}),
            ("c.webm", "libvpx-vp9", "yuv420p", {"g": "4"}),
            ("d.avi", "mjpeg", "yuvj420p", {}),
            ("e.mp4", "libx265", "yuv420p10le", {"g": "4", **X265_OPTIONS}),
            ("f.mkv", "libsvtav1", "yuv420p", {"g": "4"}),
        ]
    ]
    rng = np.random.default_rng(0)
    outcomes = {"frames": 0, "error": 0}
    for case in range(300):
        data = bytearray(seeds[case % len(seeds)])
        if case % 3 == 2:  # overwrite a run of bytes
            start, length = int(rng.integers(len(data))), int(rng.integers(1, 64))
            data[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        else:  # change a few bytes, or many
            for _ in range(int(rng.integers(1, 9 if case % 3 == 0 else 60))):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        sampling = {"num_frames": int(rng.integers(1, 12))} if case % 2 else {"fps": float(rng.uniform(0.5, 30))}
        try:
            frames, metadata = load_video(bytes(data), allow_partial=case % 5 == 0, **sampling)
        except VTokVideoError:
            outcomes["error"] += 1
            continue
        outcomes["frames"] += 1
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
        assert len(frames) == len(metadata.frames_indices) == len(metadata.frames_pts) > 0
    assert outcomes["frames"] > 30 and outcomes["error"] > 30  # both kinds of damage were met
