"""VTokVideoProcessor: accepted inputs, sampling, padding with true lengths, errors (invalid pixel values,
unreadable files, each naming its position in the batch), save/load."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoVideoProcessor

import modeling_vtok  # noqa: F401  (registers the "vtok" model type)
from processing_vtok import VTokVideoError, VTokVideoProcessor, write_video
from video_files import encode, pattern

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


def test_a_saved_num_frames_applies_when_the_call_passes_none(tmp_path, clip):
    """The frame count the model trained on lives in the processor config; `num_frames=None` (what a
    caller forwarding its own optional argument passes) means "not given", not "the 16-frame default"."""
    VTokVideoProcessor(size={"height": 32, "width": 32}, num_frames=5).save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert loaded(clip)["video_lengths"].tolist() == [5]
    assert loaded(clip, num_frames=None)["video_lengths"].tolist() == [5]
    assert loaded(clip, num_frames=3)["video_lengths"].tolist() == [3]
    assert loaded(clip, num_frames=None, fps=2.0)["video_lengths"].tolist() == [6]  # 3 s at 10 fps


def test_max_frames_guards_long_in_memory_videos_and_sampling_picks_the_same_frames(processor):
    frames = np.random.default_rng(0).integers(0, 255, (1500, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(VTokVideoError, match="1500 frames after sampling, more than max_frames=1024"):
        processor(frames)
    assert processor(frames, max_frames=2000)["video_lengths"].tolist() == [1500]
    sampled = processor(frames, num_frames=4)
    picked = processor(frames[[0, 500, 999, 1499]], max_frames=4)  # the sampled frames, converted alone
    assert sampled["video_lengths"].tolist() == [4]
    assert torch.equal(sampled["pixel_values_videos"], picked["pixel_values_videos"])
    with pytest.raises(VTokVideoError, match="more than max_frames=3"):
        processor(frames, num_frames=4, max_frames=3)


# -- invalid videos: one error type, naming the video's position in the batch --

GOOD = np.zeros((2, 32, 32, 3), np.uint8)


@pytest.mark.parametrize(
    "bad, kwargs, message",
    [
        (np.full((2, 32, 32, 3), np.nan, np.float32), {}, "contain NaN or infinity"),
        (np.full((2, 32, 32, 3), np.inf), {}, "contain NaN or infinity"),
        (np.linspace(-500, 1000, 2 * 32 * 32 * 3).reshape(2, 32, 32, 3).astype(np.int64), {},
         r"range from -500 to 1000, outside \[0, 255\]"),
        (np.full((2, 32, 32, 3), 0.5), {}, r"floats in \[0, 1\], which look rescaled already.*do_rescale=False"),
        (np.full((2, 32, 32, 3), 255, np.uint8), {"do_rescale": False}, r"range from 255 to 255, outside \[0, 1\]"),
        (np.ones((2, 32, 32, 3), bool), {}, "dtype bool"),
        (np.zeros((0, 32, 32, 3), np.uint8), {}, "no frames"),
        ([np.zeros((32, 32, 3), np.uint8), np.zeros((16, 32, 3), np.uint8)], {}, "frames differ in shape"),
        (np.zeros((2, 32, 32, 5), np.uint8), {}, "cannot find the channel dimension"),
    ],
)
def test_invalid_videos_raise_the_video_error_naming_their_position(processor, bad, kwargs, message):
    good = GOOD if not kwargs else GOOD.astype(np.float32)  # valid for do_rescale=False as well
    with pytest.raises(VTokVideoError, match=f"^Video 1 of 3 in the batch: Invalid video: .*{message}") as error:
        processor([good, bad, good], **kwargs)
    assert error.value.batch_index == 1


def test_unreadable_bytes_name_their_position_in_the_batch(processor, clip):
    data = open(clip, "rb").read()
    with pytest.raises(VTokVideoError, match=r"^Video 2 of 3 in the batch: Cannot read video <300 bytes>") as error:
        processor([clip, data, data[:300]], num_frames=4)
    assert error.value.batch_index == 2


def test_floats_in_unit_range_are_accepted_with_do_rescale_false(processor):
    video = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    from_uint8 = processor(video)["pixel_values_videos"]
    from_floats = processor(video / 255.0, do_rescale=False)["pixel_values_videos"]  # float64 in [0, 1]
    torch.testing.assert_close(from_floats, from_uint8, atol=1e-5, rtol=0)
    assert from_uint8.min() == -1 and from_uint8.max() == 1  # not divided by 255 twice (all black)


def test_one_channel_frames_are_repeated_to_rgb(processor):
    grey = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    expected = processor(np.repeat(grey, 3, axis=-1))["pixel_values_videos"]
    assert torch.equal(processor(grey)["pixel_values_videos"], expected)
    channels_first = torch.from_numpy(grey).permute(0, 3, 1, 2)  # (T, 1, H, W)
    assert torch.equal(processor(channels_first)["pixel_values_videos"], expected)


def test_channel_count_is_checked_after_input_data_format(processor):
    grey = np.zeros((2, 32, 32, 1), np.uint8)  # channels last, declared channels first: 32 "channels"
    with pytest.raises(VTokVideoError, match="Invalid video: 32 channels with input_data_format=channels_first"):
        processor(grey, input_data_format="channels_first")
    assert processor(grey, input_data_format="channels_last")["pixel_values_videos"].shape == (1, 2, 3, 32, 32)


def test_a_single_frame_is_a_one_frame_video(processor):
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    expected = processor(frame[None])["pixel_values_videos"]
    for video in (frame, [frame], torch.from_numpy(frame).permute(2, 0, 1), Image.fromarray(frame)):
        out = processor(video)
        assert out["video_lengths"].tolist() == [1] and torch.equal(out["pixel_values_videos"], expected)


def test_videos_from_a_datasets_dataset_as_nested_lists(processor):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)]
    dataset = datasets.Dataset.from_dict({"video": clips})
    rows = [example["video"] for example in dataset]  # frames -> rows -> pixels -> channel ints
    assert isinstance(rows[0], list) and isinstance(rows[0][0][0][0][0], int)
    out, expected = processor(rows), processor(clips)
    assert out["video_lengths"].tolist() == [4, 3]
    assert torch.equal(out["pixel_values_videos"], expected["pixel_values_videos"])


def test_allow_partial_reads_a_truncated_file(processor, tmp_path):
    path = encode(tmp_path / "whole.mkv", pattern(30, 32, 32))
    data = open(path, "rb").read()
    with pytest.raises(VTokVideoError, match="^Video 0 of 1 in the batch: .* truncated or damaged"):
        processor(data[: len(data) // 2], num_frames=30)
    partial = processor(data[: len(data) // 2], num_frames=30, allow_partial=True)
    assert 0 < partial["video_lengths"].item() < 30
    # the option can also be the processor's own setting
    lenient = VTokVideoProcessor(size={"height": 32, "width": 32}, allow_partial=True)
    from_setting = lenient(data[: len(data) // 2], num_frames=30)["pixel_values_videos"]
    assert torch.equal(from_setting, partial["pixel_values_videos"])


def test_metadata_of_a_variable_frame_rate_file_has_true_timestamps(processor, tmp_path):
    times = [i / 24 for i in range(20)] + [20 / 24 + i / 6 for i in range(20)]
    path = encode(tmp_path / "vfr.mp4", pattern(40, 32, 32), times=times)
    metadata = processor(path, num_frames=8, return_metadata=True)["video_metadata"][0]
    assert metadata.frames_indices == [0, 14, 22, 25, 29, 32, 36, 39]
    assert metadata.timestamps == pytest.approx([times[i] for i in metadata.frames_indices])
