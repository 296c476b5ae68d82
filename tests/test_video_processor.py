"""VTokVideoProcessor: accepted inputs, sampling, padding with true lengths, errors, save/load."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoVideoProcessor

import modeling_vtok  # noqa: F401  (registers the "vtok" model type)
from processing_vtok import VTokVideoProcessor, write_video

LEVEL = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = np.stack([np.full((32, 32, 3), i * LEVEL, np.uint8) for i in range(30)])
    return write_video(tmp_path_factory.mktemp("videos") / "count.mp4", frames, fps=10)


@pytest.fixture
def processor():
    return VTokVideoProcessor(size={"height": 32, "width": 32})


def _levels(pixel_values: torch.Tensor) -> list[int]:
    # undo normalisation (mean = std = 0.5) and the 1/255 rescale, then read the grey level
    pixels = (pixel_values * 0.5 + 0.5) * 255
    return torch.round(pixels.flatten(1).mean(1) / LEVEL).long().tolist()


def test_all_input_types_in_one_batch(processor, clip):
    rng = np.random.default_rng(0)
    channels_last = rng.integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
    channels_first = torch.randint(0, 256, (3, 3, 20, 20), dtype=torch.uint8)
    pil_frames = [Image.fromarray(frame) for frame in channels_last[:4]]
    video_bytes = open(clip, "rb").read()
    out = processor([channels_last, channels_first, pil_frames, clip, video_bytes], num_frames=8)
    assert set(out.keys()) == {"pixel_values_videos", "video_lengths"}
    assert out["pixel_values_videos"].shape == (5, 8, 3, 32, 32)
    assert out["pixel_values_videos"].dtype == torch.float32
    assert out["video_lengths"].tolist() == [5, 3, 4, 8, 8]
    assert out["video_lengths"].dtype == torch.long


def test_padding_is_zero_after_each_video(processor):
    short, long = np.full((2, 32, 32, 3), 255, np.uint8), np.full((6, 32, 32, 3), 255, np.uint8)
    out = processor([short, long])
    pixel_values = out["pixel_values_videos"]
    assert pixel_values.shape == (2, 6, 3, 32, 32) and out["video_lengths"].tolist() == [2, 6]
    assert torch.all(pixel_values[0, :2] == 1.0) and torch.all(pixel_values[0, 2:] == 0)
    assert torch.all(pixel_values[1] == 1.0)


def test_arrays_keep_all_frames_files_default_to_sixteen(processor, clip):
    array = np.zeros((30, 32, 32, 3), np.uint8)
    assert processor(array)["video_lengths"].tolist() == [30]
    assert processor(clip)["video_lengths"].tolist() == [16]


def test_sampling_files_and_arrays_pick_the_same_frames(processor, clip):
    from_file = processor(clip, num_frames=6)["pixel_values_videos"][0]
    assert _levels(from_file) == [0, 6, 12, 17, 23, 29]
    array = np.stack([np.full((32, 32, 3), i * LEVEL, np.uint8) for i in range(30)])
    from_array = processor(array, num_frames=6)["pixel_values_videos"][0]
    assert _levels(from_array) == [0, 6, 12, 17, 23, 29]
    by_fps = processor(clip, fps=2)["pixel_values_videos"][0]
    assert _levels(by_fps) == [0, 5, 10, 15, 20, 25]
    array_fps = processor(array, fps=2, video_metadata={"total_num_frames": 30, "fps": 10})
    assert _levels(array_fps["pixel_values_videos"][0]) == [0, 5, 10, 15, 20, 25]


def test_fewer_frames_than_asked_warns_and_reports_true_length(processor, clip, caplog):
    with caplog.at_level(logging.WARNING):
        out = processor(clip, num_frames=40)
    assert out["video_lengths"].tolist() == [30]
    assert "fewer than the 40 requested" in caplog.text


def test_errors(processor, clip):
    with pytest.raises(ValueError, match="num_frames.*fps"):
        processor(clip, num_frames=4, fps=2)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['frames_per_second'\\]"):
        processor(clip, frames_per_second=2)
    with pytest.raises(ValueError, match="needs its frame rate"):
        processor(np.zeros((4, 32, 32, 3), np.uint8), fps=2)
    with pytest.raises(ValueError, match="Cannot read video <.* bytes>"):
        processor(b"definitely not a video" * 20)
    with pytest.raises(TypeError, match="Unsupported video input"):
        processor(42)


def test_save_load_round_trip(processor, tmp_path, clip):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "video_preprocessor_config.json").is_file()
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is VTokVideoProcessor
    expected = processor(clip, num_frames=4)
    actual = loaded(clip, num_frames=4)
    assert torch.equal(expected["pixel_values_videos"], actual["pixel_values_videos"])
    assert torch.equal(expected["video_lengths"], actual["video_lengths"])
