"""VTokProcessor: exact placeholder counts (from count_video_tokens and by hand), errors (unknown keywords, invalid
videos), the chat template and the direct call agreeing, save/load."""

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from conftest import tiny_vtok_config
from modeling_vtok import count_video_tokens
from processing_vtok import VTokProcessor, VTokVideoError, VTokVideoProcessor, train_text_tokenizer, write_video

CORPUS = ["describe the video", "what happens in this clip?", "a cat jumps over the dog"] * 10


@pytest.fixture(scope="module")
def tokenizer():
    return train_text_tokenizer(CORPUS, vocab_size=320)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = np.stack([np.full((32, 32, 3), i * 8, np.uint8) for i in range(30)])
    return write_video(tmp_path_factory.mktemp("videos") / "count.mp4", frames, fps=10)


def make_processor(tokenizer, **config_overrides) -> VTokProcessor:
    ids = {
        "video_token_id": tokenizer.convert_tokens_to_ids("<video>"),
        "video_start_token_id": tokenizer.convert_tokens_to_ids("<vid_start>"),
        "video_end_token_id": tokenizer.convert_tokens_to_ids("<vid_end>"),
    }
    config = tiny_vtok_config(**ids, **config_overrides)
    video_processor = VTokVideoProcessor(size={"height": 32, "width": 32})
    return VTokProcessor.from_model_config(config, video_processor, tokenizer)


def video(num_frames: int) -> np.ndarray:
    return np.zeros((num_frames, 32, 32, 3), np.uint8)


# (config overrides, frames per video, hand-computed placeholders with S = 16)
CASES = [
    ({}, [9, 4], [16 + 8, 16 + 3]),
    ({"temporal_stride": 3}, [9, 4], [16 + 3, 16 + 1]),  # ceil(8 / 3) = 3, ceil(3 / 3) = 1
    ({"video_tokenization": "frames"}, [9, 4], [16 * 9, 16 * 4]),
    ({"key_frame_pool_size": 2}, [1, 7], [4, 4 + 6]),
]


@pytest.mark.parametrize("overrides, frames, expected", CASES)
def test_exact_placeholder_counts(tokenizer, overrides, frames, expected):
    processor = make_processor(tokenizer, **overrides)
    config = tiny_vtok_config(**overrides)
    for num_frames, count in zip(frames, expected):
        assert processor.num_video_tokens(num_frames) == count == config.num_video_tokens(num_frames)
        assert count == count_video_tokens(
            num_frames, config.num_key_frame_tokens, config.temporal_stride, config.video_tokenization
        )
    out = processor(text=["<video> describe the video", "what happens <video>"], videos=[video(n) for n in frames])
    assert set(out.keys()) == {"input_ids", "attention_mask", "pixel_values_videos", "video_lengths"}
    assert out["video_lengths"].tolist() == frames
    input_ids = out["input_ids"]
    assert (input_ids == processor.video_token_id).sum(1).tolist() == expected
    assert (input_ids == processor.video_start_token_id).sum(1).tolist() == [1, 1]
    assert (input_ids == processor.video_end_token_id).sum(1).tolist() == [1, 1]
    # the placeholders form one contiguous run between <vid_start> and <vid_end>
    for row, count in zip(input_ids.tolist(), expected):
        start = row.index(processor.video_start_token_id)
        assert row[start + 1 + count] == processor.video_end_token_id
        assert set(row[start + 1 : start + 1 + count]) == {processor.video_token_id}


def test_left_padding_and_several_videos_per_prompt(tokenizer):
    processor = make_processor(tokenizer)
    out = processor(text=["<video> and <video>", "<video>"], videos=[video(2), video(3), video(5)])
    assert out["video_lengths"].tolist() == [2, 3, 5]
    assert (out["input_ids"] == processor.video_token_id).sum(1).tolist() == [17 + 18, 20]
    assert out["attention_mask"][1, 0] == 0 and out["attention_mask"][:, -1].tolist() == [1, 1]
    assert out["pixel_values_videos"].shape == (3, 5, 3, 32, 32)


def test_short_video_costs_its_real_frame_count(tokenizer, clip):
    processor = make_processor(tokenizer)
    out = processor(text="<video> describe", videos=clip, num_frames=50)
    assert out["video_lengths"].tolist() == [30]
    assert (out["input_ids"] == processor.video_token_id).sum().item() == 16 + 29


def test_placeholder_video_mismatch_names_both_numbers(tokenizer):
    processor = make_processor(tokenizer)
    with pytest.raises(ValueError, match="2 <video> placeholders but 1 videos"):
        processor(text="<video> <video>", videos=[video(2)])
    with pytest.raises(ValueError, match="1 <video> placeholders but 0 videos"):
        processor(text="<video> hi")
    with pytest.raises(ValueError, match="0 <video> placeholders but 2 videos"):
        processor(text="hi", videos=[video(2), video(3)])


def test_num_frames_and_fps_together_is_an_error(tokenizer, clip):
    with pytest.raises(ValueError, match="num_frames.*fps"):
        make_processor(tokenizer)(text="<video>", videos=clip, num_frames=4, fps=2)


def test_config_and_tokenizer_must_agree(tokenizer):
    video_processor = VTokVideoProcessor(size={"height": 32, "width": 32})
    with pytest.raises(ValueError, match="config.video_token_id"):
        VTokProcessor.from_model_config(tiny_vtok_config(), video_processor, tokenizer)
    with pytest.raises(ValueError, match="num_key_frame_tokens"):
        VTokProcessor(video_processor, tokenizer)
    with pytest.raises(ValueError, match=r"`num_stored_key_frame_tokens` \(4\) must be at least `num_key_frame_tokens` \(16\)"):
        VTokProcessor(video_processor, tokenizer, num_key_frame_tokens=16, num_stored_key_frame_tokens=4)


def test_apply_chat_template_decodes_video_paths(tokenizer, clip):
    processor = make_processor(tokenizer, temporal_stride=2)
    messages = [
        {"role": "user", "content": [{"type": "video", "video": clip}, {"type": "text", "text": "What happens?"}]}
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n<video>What happens?<eos>\n<|im_start|>assistant\n"
    out = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True, num_frames=7
    )
    assert out["video_lengths"].tolist() == [7]
    assert (out["input_ids"] == processor.video_token_id).sum().item() == 16 + 3  # ceil(6 / 2)
    assert out["pixel_values_videos"].shape == (1, 7, 3, 32, 32)
    assert processor.decode(out["input_ids"][0]).endswith("What happens?<eos>\n<|im_start|>assistant\n")
    # an in-memory video works the same way
    out = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video", "video": video(5)}, {"type": "text", "text": "hi"}]}],
        tokenize=True, return_dict=True, add_generation_prompt=True,
    )
    assert (out["input_ids"] == processor.video_token_id).sum().item() == 16 + 2


def test_save_load_round_trip(tokenizer, clip, tmp_path):
    processor = make_processor(tokenizer, temporal_stride=3)
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is VTokProcessor and type(loaded.video_processor) is VTokVideoProcessor
    assert (loaded.num_key_frame_tokens, loaded.temporal_stride, loaded.video_tokenization) == (16, 3, "vtok")
    assert loaded.num_video_tokens(10) == processor.num_video_tokens(10) == 19
    kwargs = {"text": ["<video> describe", "hi <video> the dog"], "videos": [clip, video(3)], "num_frames": 5}
    expected, actual = processor(**kwargs), loaded(**kwargs)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert loaded.batch_decode(actual["input_ids"][:, -2:]) == processor.batch_decode(expected["input_ids"][:, -2:])


def test_unknown_keyword_is_a_type_error_on_every_route(tokenizer, clip):
    processor = make_processor(tokenizer)
    messages = [{"role": "user", "content": [{"type": "video", "video": clip}, {"type": "text", "text": "hi"}]}]
    unknown = r"unexpected keyword arguments \['num_frame'\]"
    with pytest.raises(TypeError, match=unknown):
        processor(text="<video> hi", videos=clip, num_frame=8)
    with pytest.raises(TypeError, match=unknown):
        processor.apply_chat_template(messages, tokenize=True, return_dict=True, num_frame=8)
    with pytest.raises(TypeError, match=unknown):
        processor.apply_chat_template(messages, tokenize=True, return_dict=True, processor_kwargs={"num_frame": 8})
    # the keywords that do exist still reach the tokenizer and the video processor
    out = processor(text="<video> hi", videos=clip, num_frames=3, padding="longest", allow_partial=False)
    assert out["video_lengths"].tolist() == [3]


def test_a_single_frame_is_the_same_video_through_both_routes(tokenizer):
    processor = make_processor(tokenizer)
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video", "video": frame}, {"type": "text", "text": "hi"}]}]
    from_chat = processor.apply_chat_template(messages, tokenize=True, return_dict=True)
    prompt = processor.apply_chat_template(messages)
    direct = processor(text=prompt, videos=frame)
    assert from_chat["video_lengths"].tolist() == direct["video_lengths"].tolist() == [1]
    assert torch.equal(from_chat["pixel_values_videos"], direct["pixel_values_videos"])
    assert torch.equal(from_chat["input_ids"], direct["input_ids"])


def test_invalid_video_names_its_position(tokenizer):
    processor = make_processor(tokenizer)
    broken = np.full((2, 32, 32, 3), np.nan, np.float32)
    with pytest.raises(VTokVideoError, match="^Video 1 of 2 in the batch: Invalid video: .*NaN") as error:
        processor(text=["<video> a", "<video> b"], videos=[video(2), broken])
    assert error.value.batch_index == 1
