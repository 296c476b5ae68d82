"""Key-frame refresh for long videos (issue 9): a new key frame every K frames or at scene cuts, the
segments' layout, the count the processor reserves (exact, or the bound for scene cuts), and the LLM
reading that count the same way in one forward and in cached generation."""

import itertools

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from conftest import tiny_stack, tiny_vtok_config
from modeling_vtok import VTokTextToVideoPipeline, VTokTokenLayout, VTokVideoDecoder, VTokVideoTokenizer, count_video_tokens
from video_files import encode


THRESHOLD = 0.15  # calibrated with key_frame_indices on 8 tiny random encoders: within a scene <= 0.09, at a cut >= 0.24


def scene_clip(frames_per_scene=(4, 4, 4), size=32, seed=0) -> torch.Tensor:
    """Frames `(T, 3, size, size)` in [-1, 1]: scenes of different textures and colours (red noise, green
    stripes, blue checks), each with a small white square moving right by one pixel (at size 32) a frame."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    textures = [torch.rand(size, size, generator=g), (torch.sin(xx / 1.5) > 0).float(), ((xx // 4 + yy // 4) % 2).float()]
    tints = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9]])[:, :, None, None]
    scale = size // 32
    frames = []
    for scene, length in enumerate(frames_per_scene):
        background = tints[scene % 3] * (0.4 + 0.6 * textures[scene % 3])
        for t in range(length):
            frame = background.clone()
            frame[:, 14 * scale : 18 * scale, (4 + t) * scale : (8 + t) * scale] = 1.0
            frames.append(frame)
    return torch.stack(frames) * 2 - 1


def scene_cut_tokenizer(**overrides) -> VTokVideoTokenizer:
    options = {"key_frame_refresh": "scene_cut", "scene_cut_threshold": THRESHOLD, "max_key_frames": 4, **overrides}
    return VTokVideoTokenizer(tiny_vtok_config(**options)).eval()


# -- the layout --


@pytest.mark.parametrize("num_frames, interval, stride", [(12, 4, 1), (10, 4, 1), (10, 4, 2), (7, 3, 3), (5, 8, 1), (1, 2, 1)])
def test_interval_count_is_exact_per_segment(num_frames, interval, stride):
    layout = VTokTokenLayout(4, temporal_stride=stride, key_frame_refresh="interval", key_frame_interval=interval)
    segments = layout.segments(num_frames)
    assert [key for key, _ in segments] == list(range(0, num_frames, interval)) == layout.key_frames(num_frames)
    covered = sorted([key for key, _ in segments] + [t for _, windows in segments for w in windows for t in w])
    assert covered == list(range(num_frames))  # no frame skipped or counted twice
    lengths = [min(interval, num_frames - start) for start in range(0, num_frames, interval)]
    expected = sum(16 + -(-(length - 1) // stride) for length in lengths)
    assert layout.num_video_tokens(num_frames) == expected == sum(16 + len(windows) for _, windows in segments)
    assert len(layout.temporal_positions(num_frames)) == expected


def test_interval_segments_and_positions_by_hand():
    layout = VTokTokenLayout(1, temporal_stride=2, key_frame_refresh="interval", key_frame_interval=4)
    assert layout.segments(10) == [(0, [[1, 2], [3]]), (4, [[5, 6], [7]]), (8, [[9]])]
    assert layout.num_video_tokens(10) == 3 + 5
    assert layout.temporal_positions(10).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]  # key, r, r, key, r, r, key, r


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("max_key_frames", [1, 2, 3])
def test_scene_cut_bound_is_the_most_any_key_frames_can_cost(stride, max_key_frames):
    """The bound equals the maximum, over every admissible set of key frames, of the real token count."""
    for num_frames in range(1, 8):
        layout = VTokTokenLayout(2, temporal_stride=stride, key_frame_refresh="scene_cut", max_key_frames=max_key_frames)
        costs = []
        for m in range(1, min(max_key_frames, num_frames) + 1):
            for later in itertools.combinations(range(1, num_frames), m - 1):
                key_frames = [0, *later]
                costs.append(sum(4 + len(windows) for _, windows in layout.segments(num_frames, key_frames)))
                assert len(layout.temporal_positions(num_frames, key_frames)) == layout.num_video_tokens(num_frames)
        assert layout.num_video_tokens(num_frames) == max(costs)
        if stride == 1:  # m * S + (T - m) with m = min(max_key_frames, T)
            m = min(max_key_frames, num_frames)
            assert layout.num_video_tokens(num_frames) == m * 4 + num_frames - m


def test_scene_cut_positions_fill_unused_slots_after_the_last_step():
    layout = VTokTokenLayout(1, key_frame_refresh="scene_cut", max_key_frames=3)
    assert layout.num_video_tokens(5) == 3 + 2
    assert layout.temporal_positions(5, [0, 2]).tolist() == [0, 1, 2, 3, 4]  # k r k r r: full
    assert layout.temporal_positions(5, [0]).tolist() == [0, 1, 2, 3, 4]
    assert len(layout.temporal_positions(5, [0])) == 5
    layout = VTokTokenLayout(2, key_frame_refresh="scene_cut", max_key_frames=2)  # S = 4
    assert layout.temporal_positions(3, [0]).tolist() == [0] * 4 + [1, 2] + [3] * 3  # 3 no-refresh slots
    with pytest.raises(ValueError, match="need the `key_frames` the video tokenizer chose"):
        layout.temporal_positions(3)
    with pytest.raises(ValueError, match="not scene-cut key frames"):
        layout.segments(3, [1])


# -- the tokenizer --


@pytest.mark.parametrize("scenes", [(4, 4, 4), (3, 5, 4)])
def test_scene_cut_key_frames_follow_the_cuts(scenes):
    tokenizer = scene_cut_tokenizer()
    clip = scene_clip(scenes)
    key_frames, distances = tokenizer.key_frame_indices(clip)
    cuts = np.cumsum((0, *scenes[:-1])).tolist()
    assert key_frames == cuts
    inside = [t for t in range(len(clip)) if t not in cuts]
    assert distances[inside].max() < THRESHOLD < distances[cuts[1:]].min()

    out = tokenizer(clip[None])
    assert out.key_frames == [cuts]
    layout = tokenizer.config.token_layout
    bound = layout.num_video_tokens(len(clip))
    assert out.tokens.shape == (1, bound, 32) and bound == 4 * 16 + len(clip) - 4
    real = 3 * 16 + len(clip) - 3
    torch.testing.assert_close(out.tokens[0, real:], tokenizer.no_refresh_token.expand(bound - real, 32))  # one unused key frame
    assert out.positions[0].tolist() == layout.temporal_positions(len(clip), cuts).tolist()


def test_one_scene_takes_one_key_frame_and_fills_the_rest():
    tokenizer = scene_cut_tokenizer(max_key_frames=2)
    out = tokenizer(scene_clip((6,))[None])
    assert out.key_frames == [[0]] and out.tokens.shape[1] == 2 * 16 + 4
    torch.testing.assert_close(out.tokens[0, 16 + 5 :], tokenizer.no_refresh_token.expand(15, 32))


def test_more_cuts_than_max_key_frames_stay_residuals_with_a_warning():
    tokenizer = scene_cut_tokenizer(max_key_frames=2)
    logger = logging.get_logger("modeling_vtok.tokenizer_vtok")
    logger.warning_once.cache_clear()  # an earlier test may have shown this warning once already
    with CaptureLogger(logger) as captured:
        out = tokenizer(scene_clip((3, 3, 3))[None])
    assert out.key_frames == [[0, 3]]
    assert out.tokens.shape[1] == tokenizer.config.num_video_tokens(9) == 2 * 16 + 7  # the bound, no unused slot
    assert "more scene cuts than max_key_frames=2" in captured.out


@pytest.mark.parametrize("refresh", ["interval", "scene_cut"])
@pytest.mark.parametrize("reference", ["key_frame", "previous_frame"])
def test_residuals_are_taken_within_each_segment(refresh, reference):
    """Frame 5 sits in the segment of key frame 4: its residual is against frame 4 for both references."""
    options = {"key_frame_interval": 4} if refresh == "interval" else {}
    tokenizer = scene_cut_tokenizer(key_frame_refresh=refresh, residual_reference=reference, **options)
    clip = scene_clip((4, 4))
    with torch.no_grad():
        parts = tokenizer.unnormalized_parts(clip)
        features = tokenizer.encode_frames(clip)
    assert parts.key_frames == [0, 4]
    torch.testing.assert_close(parts.spatial, features[[0, 4]].flatten(1, 2).flatten(0, 1))
    reference_of = {1: 0, 2: {"key_frame": 0, "previous_frame": 1}[reference], 5: 4, 6: {"key_frame": 4, "previous_frame": 5}[reference]}
    rows = {1: 0, 2: 1, 5: 3, 6: 4}  # windows [1] [2] [3] | [5] [6] [7]
    for frame, against in reference_of.items():
        expected = (features[frame] - features[against]).mean(dim=(0, 1))
        torch.testing.assert_close(parts.pooled[rows[frame]], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"key_frame_refresh": "scene_cut", "temporal_stride": 2},
    {"key_frame_refresh": "scene_cut", "residual_image_size": 16, "residual_reference": "both"},
    {"key_frame_refresh": "interval", "key_frame_interval": 5, "temporal_stride": 3, "residual_pooling": "spatial_map"},
])
def test_chunked_encoding_streams_the_same_segments(options):
    tokenizer = scene_cut_tokenizer(**options)
    clip = scene_clip((4, 5, 3))[None]
    with torch.no_grad():
        whole = tokenizer(clip)
        for chunk_size in (1, 5):
            tokenizer.config.vision_chunk_size = chunk_size
            chunked = tokenizer(clip)
            assert chunked.key_frames == whole.key_frames
            torch.testing.assert_close(chunked.tokens, whole.tokens, rtol=1e-5, atol=1e-5)
    expected_keys = [0, 5, 10] if options["key_frame_refresh"] == "interval" else [0, 4, 9]
    assert whole.key_frames == [expected_keys]
    assert whole.tokens.shape[1] == tokenizer.config.num_video_tokens(12)


def test_a_real_h264_file_of_concatenated_scenes(tmp_path):
    """Through the processor from a file PyAV encoded: the key frames land on the cuts."""
    model, processor = tiny_stack(key_frame_refresh="scene_cut", scene_cut_threshold=THRESHOLD, max_key_frames=4)
    frames = ((scene_clip((5, 4, 5), size=64) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    path = encode(tmp_path / "scenes.mp4", frames, codec="libx264")
    inputs = processor(text=["<video> which way ?"], videos=[path], num_frames=14)
    assert inputs["video_lengths"].tolist() == [14]
    tokenizer = model.model.video_tokenizer
    key_frames, distances = tokenizer.key_frame_indices(inputs["pixel_values_videos"][0])
    assert key_frames == [0, 5, 9], distances
    placeholders = int((inputs["input_ids"] == model.config.video_token_id).sum())
    assert placeholders == processor.num_video_tokens(14) == 4 * 16 + 10
    model(**inputs)  # the model fills exactly the reserved placeholders


# -- the LLM: the processor's count, one forward == cached generation --


@pytest.mark.parametrize("options", [
    {"key_frame_refresh": "scene_cut", "scene_cut_threshold": THRESHOLD, "max_key_frames": 3},
    {"key_frame_refresh": "interval", "key_frame_interval": 3, "temporal_stride": 2},
])
def test_processor_count_is_what_the_model_reads_and_generate_equals_full_forwards(options):
    model, processor = tiny_stack(**options)
    videos = [scene_clip((3, 3, 2)), scene_clip((8,), seed=1)]  # 3 key frames, and 1 (unused slots)
    pixels = [((v + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy() for v in videos]
    inputs = processor(text=["<video> which way ?", "<video> describe the video"], videos=pixels, num_frames=8)
    counts = (inputs["input_ids"] == model.config.video_token_id).sum(dim=1).tolist()
    assert counts == [processor.num_video_tokens(8)] * 2 == [model.config.num_video_tokens(8)] * 2
    vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"])
    assert vtok.mask.sum(dim=1).tolist() == counts
    if options["key_frame_refresh"] == "scene_cut":
        assert vtok.key_frames == [[0, 3, 6], [0]]

    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False, output_scores=True, return_dict_in_generate=True)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    for step in range(3):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, pixel_values_videos=inputs["pixel_values_videos"],
                           video_lengths=inputs["video_lengths"], use_cache=False).logits[:, -1]
        torch.testing.assert_close(generated.scores[step], logits, rtol=1e-4, atol=1e-4)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    assert torch.equal(generated.sequences, ids)


def test_no_refresh_token_trains_and_round_trips(tmp_path):
    model, processor = tiny_stack(key_frame_refresh="scene_cut", scene_cut_threshold=THRESHOLD, max_key_frames=3)
    pixels = ((scene_clip((6,)) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    inputs = processor(text=["<video> which way ?"], videos=[pixels], num_frames=6)
    model.train()
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    token = model.model.video_tokenizer.no_refresh_token
    assert token.grad is not None and token.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        token.normal_()
        expected = model(**inputs).logits
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "processor")
    reloaded = type(model).from_pretrained(tmp_path / "model").eval()
    assert torch.equal(reloaded.model.video_tokenizer.no_refresh_token, token)
    assert torch.equal(reloaded(**inputs).logits, expected)
    config = reloaded.config
    assert (config.key_frame_refresh, config.scene_cut_threshold, config.max_key_frames) == ("scene_cut", THRESHOLD, 3)
    reloaded_processor = type(processor).from_pretrained(tmp_path / "processor")
    assert reloaded_processor.num_video_tokens(6) == processor.num_video_tokens(6) == 3 * 16 + 3


# -- what refresh does not support, and bad configs --


def test_stored_tokens_of_an_interval_model_read_like_its_pixels():
    model, processor = tiny_stack(key_frame_refresh="interval", key_frame_interval=3)
    pixels = ((scene_clip((7,)) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    inputs = processor(text=["<video> which way ?"], videos=[pixels], num_frames=7)
    with torch.no_grad():
        vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"])
        tokens, positions = model.model.unpad_video_embeds(vtok.tokens, inputs["video_lengths"])
    assert torch.equal(tokens, vtok.tokens[vtok.mask]) and torch.equal(positions, vtok.positions[vtok.mask])


def test_stored_tokens_of_a_scene_cut_model_are_refused():
    model, _ = tiny_stack(key_frame_refresh="scene_cut", max_key_frames=2)
    count = model.config.num_video_tokens(6)
    with pytest.raises(ValueError, match=r"stored VTok tokens \(video_embeds\) do not carry them"):
        model.model.unpad_video_embeds(torch.zeros(1, count, 32), torch.tensor([6]))


def test_a_scene_cut_model_refuses_to_write_video_tokens():
    model, processor = tiny_stack(key_frame_refresh="scene_cut", max_key_frames=2)
    input_ids = processor.tokenizer(["a red circle moves left"], return_tensors="pt")["input_ids"]
    with pytest.raises(ValueError, match="cannot write a video of a key_frame_refresh='scene_cut' model"):
        model.generate_video_tokens(input_ids, num_frames=6)


def test_decoder_and_pipeline_refuse_a_refreshed_layout():
    model, processor = tiny_stack(key_frame_refresh="interval", key_frame_interval=4)
    with pytest.raises(ValueError, match="key_frame_refresh='interval'.*video generation does not support"):
        VTokVideoDecoder.from_model_config(model.config, num_layers=1, attention_head_dim=8)
    decoder = VTokVideoDecoder.from_model_config(tiny_vtok_config(), num_layers=1, attention_head_dim=8)
    pipe = VTokTextToVideoPipeline(model=model, processor=processor, decoder=decoder, scheduler=FlowMatchEulerDiscreteScheduler())
    with pytest.raises(ValueError, match="VTokVideoDecoder.from_model_config"):
        pipe("a red circle moves left", num_frames=3, num_inference_steps=1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"key_frame_refresh": "always"}, r"Unknown key_frame_refresh='always'. Has to be one of \['none', 'interval', 'scene_cut'\]"),
        ({"key_frame_refresh": "interval"}, "needs key_frame_interval >= 1"),
        ({"key_frame_refresh": "interval", "key_frame_interval": 0}, "needs key_frame_interval >= 1"),
        ({"key_frame_refresh": "scene_cut", "max_key_frames": 0}, "max_key_frames must be >= 1"),
        ({"key_frame_refresh": "scene_cut", "scene_cut_threshold": 0}, "scene_cut_threshold must be between 0 and 2"),
        ({"key_frame_refresh": "scene_cut", "key_frame_index": 2}, "Set key_frame_index=0"),
        ({"key_frame_refresh": "interval", "key_frame_interval": 4, "video_tokenization": "frames"}, "does not have; leave key_frame_refresh='none'"),
    ],
)
def test_bad_refresh_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_vtok_config(**overrides)


def test_count_video_tokens_checks_the_policy_fields():
    assert count_video_tokens(10, 16, 1, "vtok", "interval", key_frame_interval=4) == 3 * 16 + 7
    assert count_video_tokens(10, 16, 1, "vtok", "scene_cut", max_key_frames=2) == 2 * 16 + 8
    with pytest.raises(ValueError, match="needs max_key_frames >= 1"):
        count_video_tokens(10, 16, 1, "vtok", "scene_cut")
    with pytest.raises(ValueError, match="Unknown key_frame_refresh='cut'"):
        count_video_tokens(10, 16, 1, "vtok", "cut")
