"""Property tests (hypothesis) over frame counts, frame sizes, temporal strides, key-frame refresh, frame
rates and sampling: the number of `<video>` placeholders the processor writes (`num_video_tokens`) is
always the number of video features the model computes and consumes, and the frames chosen by time are
sorted, distinct and in range. Examples are bounded (`max_examples`) so the file runs in a few seconds."""

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers.video_utils import VideoMetadata

from conftest import tiny_vtok_config
from modeling_vtok import VTokForConditionalGeneration
from processing_vtok import VTokProcessor, VTokVideoProcessor, train_text_tokenizer
from processing_vtok.video_io import _TIME_TOLERANCE, sample_frame_indices


# database=None: no .hypothesis/ folder in the checkout; failures print their example instead.
SETTINGS = settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def tokenizer():
    return train_text_tokenizer(["describe the video", "what happens in this clip?"] * 10, vocab_size=320)


@functools.cache
def processor_and_model(temporal_stride: int, video_tokenization: str, refresh: tuple = ()):
    """One tiny model per layout (built once: hypothesis calls the test many times); `refresh` holds
    `(name, value)` pairs of the key-frame refresh fields."""
    text_tokenizer = tokenizer()
    config = tiny_vtok_config(
        temporal_stride=temporal_stride,
        video_tokenization=video_tokenization,
        **dict(refresh),
        text_config={"model_type": "qwen2", "vocab_size": len(text_tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 4096},
        video_token_id=text_tokenizer.convert_tokens_to_ids("<video>"),
        video_start_token_id=text_tokenizer.convert_tokens_to_ids("<vid_start>"),
        video_end_token_id=text_tokenizer.convert_tokens_to_ids("<vid_end>"),
    )
    processor = VTokProcessor.from_model_config(config, VTokVideoProcessor(size={"height": 32, "width": 32}), text_tokenizer)
    return processor, VTokForConditionalGeneration(config).eval()


videos = st.lists(
    st.tuples(st.integers(1, 24), st.integers(4, 40), st.integers(4, 40)),  # frames, height, width
    min_size=1,
    max_size=2,
)
samplings = st.one_of(
    st.just({}),  # every frame of an in-memory video
    st.builds(lambda n: {"num_frames": n}, st.integers(1, 30)),
    st.builds(lambda f: {"fps": f}, st.floats(0.25, 30)),
)


@SETTINGS
@given(
    shapes=videos,
    sampling=samplings,
    source_fps=st.floats(1, 60),
    layout=st.one_of(  # stride, tokenization, key-frame refresh
        st.tuples(st.integers(1, 4), st.just("vtok"), st.just(())),
        st.just((1, "frames", ())),
        st.tuples(st.integers(1, 3), st.just("vtok"), st.sampled_from([
            (("key_frame_refresh", "interval"), ("key_frame_interval", 3)),
            (("key_frame_refresh", "scene_cut"), ("max_key_frames", 2), ("scene_cut_threshold", 0.15)),
        ])),
    ),
)
def test_placeholders_written_equal_features_the_model_consumes(shapes, sampling, source_fps, layout):
    processor, model = processor_and_model(*layout)
    rng = np.random.default_rng(len(shapes))
    clips = [rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8) for frames, height, width in shapes]
    metadata = [VideoMetadata(total_num_frames=len(clip), fps=source_fps) for clip in clips]
    text = [f"<video> describe {i}" for i in range(len(clips))]
    inputs = processor(text=text, videos=clips, video_metadata=metadata, **sampling)

    lengths = inputs["video_lengths"].tolist()
    for clip, length in zip(clips, lengths):
        if "num_frames" in sampling:
            assert length == min(sampling["num_frames"], len(clip))
        elif not sampling:
            assert length == len(clip)
        else:  # the frame on display every 1 / fps seconds (see the sampling tests below)
            assert 1 <= length <= len(clip)
    placeholders = (inputs["input_ids"] == model.config.video_token_id).sum(dim=1).tolist()
    assert placeholders == [processor.num_video_tokens(length) for length in lengths]
    assert placeholders == [model.config.num_video_tokens(length) for length in lengths]

    with torch.no_grad():
        features, _ = model.get_video_features(inputs["pixel_values_videos"], inputs["video_lengths"])
        assert features.shape[0] == sum(placeholders)
        logits = model(**{k: v for k, v in inputs.items() if k != "video_metadata"}).logits  # raises on a mismatch
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()


frame_steps = st.lists(st.floats(1e-3, 2.0), min_size=0, max_size=60)  # seconds between frames: variable rate


@settings(max_examples=200, deadline=None, database=None)
@given(steps=frame_steps, start=st.floats(-5, 100), num_frames=st.integers(1, 80))
def test_frames_sampled_by_count_are_sorted_distinct_and_span_the_video(steps, start, num_frames):
    timestamps = start + np.concatenate([[0.0], np.cumsum(steps)])
    indices = sample_frame_indices(timestamps, num_frames=num_frames)
    assert len(indices) == min(num_frames, len(timestamps))
    assert np.all(np.diff(indices) > 0) and indices[0] >= 0 and indices[-1] < len(timestamps)
    assert indices[0] == 0
    if num_frames > 1:
        assert indices[-1] == len(timestamps) - 1


@settings(max_examples=200, deadline=None, database=None)
@given(steps=frame_steps, start=st.floats(-5, 100), fps=st.floats(0.05, 60))
# a frame starting 0.9 µs after instant 1 (1 / fps = 1.4142131 s): within the loader's timestamp tolerance
@example(steps=[0.707107, 0.707107], start=0.0, fps=0.707107)
def test_frames_sampled_by_rate_are_sorted_distinct_and_on_display_at_each_instant(steps, start, fps):
    timestamps = start + np.concatenate([[0.0], np.cumsum(steps)])
    indices = sample_frame_indices(timestamps, fps=fps)
    assert np.all(np.diff(indices) > 0) and indices[0] == 0 and indices[-1] < len(timestamps)
    # every instant k / fps within the video shows one of the chosen frames; a frame that starts within the
    # timestamp tolerance of an instant may count as on display then, or its predecessor may
    instants = timestamps[0] + np.arange(0, (timestamps[-1] - timestamps[0]) * fps + 1e-9) / fps
    tolerance = 2 * _TIME_TOLERANCE
    on_display_before = np.searchsorted(timestamps, instants - tolerance, side="right") - 1
    on_display_after = np.searchsorted(timestamps, instants + tolerance, side="right") - 1
    chosen = set(indices.tolist())
    missed = [(t, a, b) for t, a, b in zip(instants, on_display_before, on_display_after) if a not in chosen and b not in chosen]
    assert not missed, f"instants (s) showing none of the chosen frames {sorted(chosen)}: {missed}"
