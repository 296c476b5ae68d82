"""The VTok tokenizer module: token counts, motion dependence, padding, stride windows."""

import math

import pytest
import torch

from conftest import tiny_vtok_config
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
        features = tokenizer.encode_videos(videos, [5] * 12)
        pooled = torch.cat([tokenizer.pooled_residuals(f) for f in features])
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
