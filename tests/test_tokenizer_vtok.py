"""The VTok tokenizer module: token counts, motion dependence, padding, stride windows."""

import math

import pytest
import torch

from conftest import tiny_vision_config, tiny_vtok_config
from modeling_vtok import VTokVideoTokenizer, count_video_tokens


def tokenizer_for(**overrides) -> VTokVideoTokenizer:
    return VTokVideoTokenizer(tiny_vtok_config(**overrides)).eval()


@pytest.mark.parametrize("num_frames", [1, 2, 5, 8])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_vtok_token_count_is_s_plus_ceil_residuals(num_frames, stride):
    tokenizer = tokenizer_for(temporal_stride=stride)
    out = tokenizer(torch.randn(1, num_frames, 3, 32, 32))
    expected = 16 + math.ceil((num_frames - 1) / stride)
    assert out.tokens.shape == (1, expected, 32)
    assert tokenizer.config.num_video_tokens(num_frames) == expected
    assert count_video_tokens(num_frames, 16, stride, "vtok") == expected


@pytest.mark.parametrize("num_frames", [1, 4])
def test_frames_mode_costs_s_times_t(num_frames):
    tokenizer = tokenizer_for(video_tokenization="frames")
    out = tokenizer(torch.randn(1, num_frames, 3, 32, 32))
    assert out.tokens.shape[1] == 16 * num_frames == tokenizer.config.num_video_tokens(num_frames)


def test_key_frame_pooling_sets_spatial_token_count():
    tokenizer = tokenizer_for(key_frame_pool_size=2)
    out = tokenizer(torch.randn(1, 6, 3, 32, 32))
    assert out.tokens.shape[1] == 4 + 5
    assert out.positions[0].tolist() == [0] * 4 + [1, 2, 3, 4, 5]


def test_one_frame_video_gives_key_frame_tokens_only():
    out = tokenizer_for()(torch.randn(1, 1, 3, 32, 32))
    assert out.tokens.shape[1] == 16 and out.positions.tolist() == [[0] * 16]


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_residual_tokens_depend_on_motion_not_key_tokens(pooling):
    tokenizer = tokenizer_for(residual_pooling=pooling)
    video_a = torch.randn(1, 4, 3, 32, 32)
    video_b = video_a.clone()
    video_b[:, 1:] = torch.randn(1, 3, 3, 32, 32)  # same key frame, different later frames
    tokens_a = tokenizer(video_a).tokens
    tokens_b = tokenizer(video_b).tokens
    torch.testing.assert_close(tokens_a[:, :16], tokens_b[:, :16], rtol=0, atol=0)
    assert (tokens_a[:, 16:] - tokens_b[:, 16:]).abs().amax(dim=-1).min() > 1e-4


def test_static_video_residuals_are_the_mlp_of_zero():
    tokenizer = tokenizer_for()
    frame = torch.randn(1, 1, 3, 32, 32)
    out = tokenizer(frame.repeat(1, 3, 1, 1, 1))
    zero_token = tokenizer.residual_mlp(torch.zeros(32))
    torch.testing.assert_close(out.tokens[0, 16:], zero_token.expand(2, 32))


def test_stride_averages_window_residuals_without_skipping_frames():
    tokenizer = tokenizer_for(temporal_stride=2)
    video = torch.randn(1, 4, 3, 32, 32)  # non-key frames 1, 2 | 3
    out = tokenizer(video)
    features = tokenizer.encode_frames(video[0]).flatten(1, 2)
    residual = features - features[0]
    window_1 = tokenizer.residual_mlp(residual[1:3].mean(dim=0).mean(dim=0))
    window_2 = tokenizer.residual_mlp(residual[3].mean(dim=0))
    torch.testing.assert_close(out.tokens[0, 16], window_1)
    torch.testing.assert_close(out.tokens[0, 17], window_2)
    changed = video.clone()
    changed[0, 2] = torch.randn(3, 32, 32)  # the second frame of the first window still counts
    assert not torch.allclose(tokenizer(changed).tokens[0, 16], out.tokens[0, 16])


def test_batch_with_different_lengths_matches_single_videos_and_ignores_padding():
    tokenizer = tokenizer_for()
    long_video, short_video = torch.randn(6, 3, 32, 32), torch.randn(3, 3, 32, 32)
    batch = torch.zeros(2, 6, 3, 32, 32)
    batch[0], batch[1, :3] = long_video, short_video
    batch[1, 3:] = 1e3  # garbage in the padding must not leak
    out = tokenizer(batch, torch.tensor([6, 3]))
    alone_long = tokenizer(long_video[None]).tokens[0]
    alone_short = tokenizer(short_video[None]).tokens[0]
    assert out.mask.sum(dim=1).tolist() == [21, 18]
    torch.testing.assert_close(out.tokens[0], alone_long, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.tokens[1, :18], alone_short, atol=1e-5, rtol=1e-5)
    assert (out.tokens[1, 18:] == 0).all()


def test_key_frame_index_selects_the_spatial_frame():
    tokenizer = tokenizer_for(key_frame_index=2)
    video = torch.randn(1, 4, 3, 32, 32)
    key_frame_tokens = tokenizer.spatial_tokens(tokenizer.encode_frames(video[0, 2:3]))
    torch.testing.assert_close(tokenizer(video).tokens[:, :16], key_frame_tokens)


def test_temporal_positions_follow_the_token_count():
    config = tiny_vtok_config(temporal_stride=3)
    assert config.token_layout.temporal_positions(8).tolist() == [0] * 16 + [1, 2, 3]


def test_bad_lengths_and_short_videos_raise():
    tokenizer = tokenizer_for(key_frame_index=3)
    with pytest.raises(ValueError, match="video_lengths"):
        tokenizer(torch.randn(2, 4, 3, 32, 32), torch.tensor([4, 5]))
    with pytest.raises(ValueError, match="key_frame_index=3"):
        tokenizer(torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="expects 32x32"):
        tokenizer(torch.randn(1, 4, 3, 48, 48))


def test_residual_layer_norm_is_a_config_switch():
    with_norm = tokenizer_for()
    without = tokenizer_for(residual_layer_norm=False)
    assert isinstance(with_norm.residual_mlp.norm, torch.nn.LayerNorm)
    assert isinstance(without.residual_mlp.norm, torch.nn.Identity)
    small = 0.05 * torch.randn(1, 32)  # the size of a pooled residual
    torch.testing.assert_close(with_norm.residual_mlp.norm(small * 100), with_norm.residual_mlp.norm(small), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("tokenization", ["vtok", "frames"])
def test_fitted_feature_statistics_standardise_tokens(tokenization):
    tokenizer = tokenizer_for(video_tokenization=tokenization)
    videos = torch.rand(12, 5, 3, 32, 32)
    raw = tokenizer(videos).tokens
    tokenizer.fit_feature_statistics(videos)
    assert not torch.equal(tokenizer.key_mean, torch.zeros(32)) and not torch.equal(tokenizer.key_std, torch.ones(32))
    key = tokenizer(videos).tokens[:, :16].reshape(-1, 32) if tokenization == "vtok" else tokenizer(videos).tokens.reshape(-1, 32)
    torch.testing.assert_close(key.mean(0), torch.zeros(32), atol=1e-4, rtol=0)
    torch.testing.assert_close(key.std(0), torch.ones(32), atol=1e-3, rtol=0)
    # the residual statistics are those of the pooled residuals, the input of g_phi
    if tokenization == "vtok":
        pooled = torch.cat([tokenizer.unnormalized_parts(video)[1] for video in videos])
        torch.testing.assert_close(tokenizer.residual_mean, pooled.mean(0))
        expected = tokenizer.residual_mlp(tokenizer.standardize(pooled, "residual")).view(12, 4, 32)
        torch.testing.assert_close(tokenizer(videos).tokens[:, 16:], expected)
    assert not torch.allclose(raw, tokenizer(videos).tokens)


def test_feature_statistics_check_video_lengths():
    with pytest.raises(ValueError, match="video_lengths"):
        tokenizer_for().fit_feature_statistics(torch.rand(2, 4, 3, 32, 32), torch.tensor([4, 6]))


def test_empty_video_batch_is_rejected_with_its_shape():
    with pytest.raises(ValueError, match=r"shape \(0, 4, 3, 32, 32\) holds no video frames"):
        tokenizer_for()(torch.rand(0, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="holds no video frames"):
        tokenizer_for().fit_feature_statistics(torch.rand(2, 0, 3, 32, 32))


def test_vision_chunk_size_is_validated():
    with pytest.raises(ValueError, match="vision_chunk_size must be None or >= 1, got 0"):
        tiny_vtok_config(vision_chunk_size=0)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"temporal_stride": 3}, {"residual_pooling": "attention", "temporal_stride": 2}, {"key_frame_index": 4},
     {"video_tokenization": "frames"}, {"residual_image_size": 16, "temporal_stride": 2}],
)
def test_chunked_encoding_gives_the_same_tokens(overrides):
    tokenizer = tokenizer_for(**overrides)
    videos = torch.randn(2, 11, 3, 32, 32)
    lengths = torch.tensor([11, 5])  # chunks end inside stride windows, past the key frame, past a short video
    whole = tokenizer(videos, lengths)
    for chunk_size in (1, 3, 8):
        tokenizer.config.vision_chunk_size = chunk_size
        chunked = tokenizer(videos, lengths)
        torch.testing.assert_close(chunked.tokens, whole.tokens, atol=1e-5, rtol=1e-5)
        assert torch.equal(chunked.mask, whole.mask) and torch.equal(chunked.positions, whole.positions)


def test_chunked_encoding_gives_the_same_gradients():
    tokenizer = tokenizer_for(freeze_vision_encoder=False, temporal_stride=2)
    video = torch.randn(1, 7, 3, 32, 32)

    def gradients(chunk_size):
        tokenizer.config.vision_chunk_size = chunk_size
        tokenizer.zero_grad()
        tokenizer(video).tokens.square().sum().backward()
        return {name: parameter.grad.clone() for name, parameter in tokenizer.named_parameters() if parameter.grad is not None}

    whole, chunked = gradients(None), gradients(3)
    assert whole.keys() == chunked.keys()
    assert whole["vision_tower.embeddings.patch_embedding.weight"].abs().sum() > 0
    for name, grad in whole.items():
        torch.testing.assert_close(chunked[name], grad, atol=1e-4, rtol=1e-4, msg=name)


def test_chunks_bound_the_frames_per_encoder_call():
    tokenizer = tokenizer_for(vision_chunk_size=4)
    batch_sizes = []
    tokenizer.vision_tower.register_forward_pre_hook(lambda module, args, kwargs: batch_sizes.append(len(kwargs["pixel_values"])), with_kwargs=True)
    tokenizer(torch.randn(1, 10, 3, 32, 32))
    assert batch_sizes == [4, 4, 2]


def test_residual_resolution_default_keeps_todays_tokens():
    video = torch.randn(1, 5, 3, 32, 32)
    default = tokenizer_for()
    full = tokenizer_for(residual_image_size=32)
    full.load_state_dict(default.state_dict())
    assert default.config.residual_image_size is None
    torch.testing.assert_close(full(video).tokens, default(video).tokens, rtol=0, atol=0)
    # today's definition, written out: key-frame patches, then g(mean(F(x_t) - F(x_0)))
    features = default.encode_frames(video[0])
    expected_residuals = default.residual_mlp((features[1:] - features[0]).flatten(1, 2).mean(dim=1))
    torch.testing.assert_close(default(video).tokens[0], torch.cat([features[0].flatten(0, 1), expected_residuals]))


@pytest.mark.parametrize("vision_model_type", ["siglip_vision_model", "clip_vision_model"])
def test_residual_resolution_encodes_residuals_at_the_lower_size(vision_model_type):
    select = "default" if vision_model_type == "clip_vision_model" else "full"
    vision_config = {**tiny_vision_config(), "model_type": vision_model_type}
    full = tokenizer_for(vision_config=vision_config, vision_feature_select_strategy=select)
    low = tokenizer_for(vision_config=vision_config, vision_feature_select_strategy=select, residual_image_size=16)
    low.load_state_dict(full.state_dict())
    sizes = []
    low.vision_tower.register_forward_pre_hook(lambda module, args, kwargs: sizes.append(tuple(kwargs["pixel_values"].shape)), with_kwargs=True)
    video = torch.randn(1, 5, 3, 32, 32)
    tokens = low(video).tokens
    assert tokens.shape == full(video).tokens.shape == (1, 16 + 4, 32)
    assert sizes == [(5, 3, 16, 16), (1, 3, 32, 32)]  # every frame at 16 px for the residuals, the key frame at 32 px
    # key-frame tokens stay at full resolution; residuals are taken between 16-pixel features
    torch.testing.assert_close(tokens[:, :16], full(video).tokens[:, :16], atol=1e-5, rtol=1e-5)
    small = torch.nn.functional.interpolate(video[0], size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    features = low.encode_frames(small)
    assert features.shape == (5, 2, 2, 32)
    torch.testing.assert_close(tokens[0, 16:], low.residual_mlp((features[1:] - features[0]).flatten(1, 2).mean(dim=1)))
    static = low(video[:, :1].repeat(1, 3, 1, 1, 1)).tokens[0, 16:]
    torch.testing.assert_close(static, low.residual_mlp(torch.zeros(2, 32)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"residual_image_size": 20}, "multiple of the vision encoder's patch_size=8 between 8 and its image_size=32, got 20"),
        ({"residual_image_size": 4}, "got 4"),
        ({"residual_image_size": 64}, "got 64"),
        ({"residual_image_size": 16, "video_tokenization": "frames"}, "video_tokenization='frames' does not have"),
    ],
)
def test_residual_resolution_rejects_sizes_the_encoder_cannot_take(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_vtok_config(**overrides)


def test_residual_resolution_needs_an_encoder_that_interpolates_positions():
    vision_config = {"model_type": "dinov2", "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 4}
    config = tiny_vtok_config(vision_config=vision_config, vision_feature_select_strategy="default", residual_image_size=16)
    with pytest.raises(ValueError, match="residual_image_size=16 needs a vision encoder that can interpolate .* Dinov2Model has none"):
        VTokVideoTokenizer(config)
