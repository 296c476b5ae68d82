"""Motion options that keep one token per non-key frame window (issue 13 item 4): the residual against
the key frame, the previous frame or both, and pooling that keeps a coarse spatial map."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageTextToText

from conftest import tiny_vtok_config
from modeling_vtok import VTokConfig, VTokVideoTokenizer
from test_modeling_vtok import VTokModelTester


REFERENCES = ("key_frame", "previous_frame", "both")
POOLINGS = ("mean", "attention", "spatial_map")
OPTIONS = list(itertools.product(REFERENCES, POOLINGS))


def tokenizer_for(**overrides) -> VTokVideoTokenizer:
    return VTokVideoTokenizer(tiny_vtok_config(**overrides)).eval()


def reference_frames(num_frames: int, key_index: int, reference: str) -> dict[int, int]:
    """Frame -> the frame its residual is taken against, written out from the config's docstring."""
    if reference == "key_frame":
        return {t: key_index for t in range(num_frames) if t != key_index}
    return {t: (t - 1 if t > 0 else key_index) for t in range(num_frames) if t != key_index}


def expected_pooled(tokenizer, features, windows, key_index):
    """The pooled residuals `(windows, width)` computed by hand from the features `(T, grid, grid, dim)` of
    every frame, encoded in one call."""
    config = tokenizer.config
    num_frames = len(features)
    rows = []
    for window in windows:
        parts = []
        for reference in config.residual_references:
            against = reference_frames(num_frames, key_index, reference)
            window_map = torch.stack([features[t] - features[against[t]] for t in window]).mean(dim=0)  # (grid, grid, dim)
            if config.residual_pooling == "mean":
                parts.append(window_map.mean(dim=(0, 1)))
            elif config.residual_pooling == "attention":
                patches = window_map.flatten(0, 1)
                weights = (tokenizer.residual_pool.key(patches) @ tokenizer.residual_pool.query / patches.shape[-1] ** 0.5).softmax(0)
                parts.append((weights[:, None] * patches).sum(dim=0))
            else:
                g = config.residual_pool_grid_size
                parts.append(F.adaptive_avg_pool2d(window_map.permute(2, 0, 1), g).permute(1, 2, 0).flatten())
        rows.append(torch.cat(parts))
    return torch.stack(rows)


@pytest.mark.parametrize("reference, pooling", OPTIONS)
def test_each_option_gives_one_token_per_window_with_the_hand_computed_residual(reference, pooling):
    """Stride 2 around key frame 1: windows [0, 2], [3, 4], [5]; frame 0 has no frame before it and is
    compared with the key frame, frame 2 with the key frame under both references. The tokens are the same
    whatever the chunk size."""
    tokenizer = tokenizer_for(residual_reference=reference, residual_pooling=pooling, temporal_stride=2, key_frame_index=1)
    config = tokenizer.config
    if tokenizer.residual_pool is not None:
        torch.nn.init.normal_(tokenizer.residual_pool.query)  # zeros would make it the mean
    cells = 4 if pooling == "spatial_map" else 1  # residual_pool_grid_size 2
    assert config.pooled_residual_size == 32 * cells * (2 if reference == "both" else 1)
    assert tokenizer.residual_mlp.linear_1.in_features == config.pooled_residual_size
    assert tokenizer.residual_mean.shape == tokenizer.residual_std.shape == (config.pooled_residual_size,)

    video = torch.randn(6, 3, 32, 32)
    windows = config.token_layout.residual_windows(6)
    assert windows == [[0, 2], [3, 4], [5]]
    with torch.no_grad():
        pooled = tokenizer.unnormalized_parts(video).pooled
        expected = expected_pooled(tokenizer, tokenizer.encode_frames(video), windows, key_index=1)
        out = tokenizer(torch.stack([video, video.flip(0)]))
        for chunk_size in (1, 4):
            config.vision_chunk_size = chunk_size
            torch.testing.assert_close(tokenizer(torch.stack([video, video.flip(0)])).tokens, out.tokens, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)
    assert out.tokens.shape == (2, 16 + 3, 32) and config.num_video_tokens(6) == 16 + math.ceil(5 / 2)
    assert out.positions[0].tolist() == [0] * 16 + [1, 2, 3]
    torch.testing.assert_close(out.tokens[0, 16:], tokenizer.residual_mlp(expected), rtol=1e-5, atol=1e-5)
    assert tokenizer(video[None, :2]).tokens.shape == (1, 16 + 1, 32)  # the key frame and frame 0


@pytest.mark.parametrize("reference", REFERENCES)
def test_residual_image_size_with_a_spatial_map_and_chunks(reference):
    """Residuals at 16 px (a 2x2 patch grid), key-frame tokens at 32 px; chunked equals unchunked."""
    tokenizer = tokenizer_for(residual_reference=reference, residual_pooling="spatial_map", residual_image_size=16)
    video = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        pooled = tokenizer.unnormalized_parts(video).pooled
        features = tokenizer.encode_frames(tokenizer.residual_resolution(video))
        assert features.shape == (5, 2, 2, 32)
        expected = expected_pooled(tokenizer, features, [[1], [2], [3], [4]], key_index=0)
        whole = tokenizer(video[None]).tokens
        tokenizer.config.vision_chunk_size = 2
        chunked = tokenizer(video[None]).tokens
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    assert whole.shape == (1, 16 + 4, 32)


def test_previous_frame_window_is_the_motion_across_the_window():
    """With stride k the mean of per-frame differences telescopes: (F(x_last) - F(x_first-1)) / k."""
    tokenizer = tokenizer_for(residual_reference="previous_frame", residual_pooling="spatial_map", temporal_stride=3)
    video = torch.randn(7, 3, 32, 32)  # windows [1, 2, 3], [4, 5, 6]
    with torch.no_grad():
        features = tokenizer.encode_frames(video)
        pooled = tokenizer.unnormalized_parts(video).pooled
    for row, (first, last) in enumerate([(1, 3), (4, 6)]):
        window_map = (features[last] - features[first - 1]) / 3
        expected = F.adaptive_avg_pool2d(window_map.permute(2, 0, 1), 2).permute(1, 2, 0).flatten()
        torch.testing.assert_close(pooled[row], expected, rtol=1e-4, atol=1e-5)


def test_references_differ_after_the_first_residual_and_both_holds_each():
    video = torch.randn(4, 3, 32, 32)
    pooled = {}
    for reference in REFERENCES:
        torch.manual_seed(0)  # the same encoder for each
        with torch.no_grad():
            pooled[reference] = tokenizer_for(residual_reference=reference).unnormalized_parts(video).pooled
    # frame 1's reference is the key frame for every option; later frames differ
    torch.testing.assert_close(pooled["previous_frame"][0], pooled["key_frame"][0], rtol=0, atol=0)
    assert not torch.allclose(pooled["previous_frame"][1:], pooled["key_frame"][1:])
    torch.testing.assert_close(pooled["both"], torch.cat([pooled["key_frame"], pooled["previous_frame"]], dim=1), rtol=0, atol=0)


def test_spatial_map_keeps_where_the_change_happened():
    tokenizer = tokenizer_for(residual_pooling="spatial_map")
    top_left, bottom_right = torch.zeros(2, 1, 4, 4, 32), torch.zeros(2, 1, 4, 4, 32)
    top_left[:, :, :2, :2] = 1.0
    bottom_right[:, :, 2:, 2:] = 1.0
    torch.testing.assert_close(top_left.flatten(2, 3).mean(2), bottom_right.flatten(2, 3).mean(2))  # the mean cannot tell
    cells = tokenizer.pool(top_left).view(2, 2, 2, 32)
    assert tokenizer.pool(top_left).shape == (2, 4 * 32)
    assert cells[:, 0, 0].eq(1).all() and cells[:, 1, 1].eq(0).all()
    assert tokenizer.pool(bottom_right).view(2, 2, 2, 32)[:, 1, 1].eq(1).all()


def test_feature_statistics_have_the_pooled_width():
    tokenizer = tokenizer_for(residual_reference="both", residual_pooling="spatial_map")
    videos = torch.rand(6, 5, 3, 32, 32)
    tokenizer.fit_feature_statistics(videos)
    assert tokenizer.residual_mean.shape == (2 * 4 * 32,)
    with torch.no_grad():
        pooled = torch.cat([tokenizer.unnormalized_parts(video).pooled for video in videos])
        standardized = tokenizer.standardize(pooled, "residual")
    torch.testing.assert_close(standardized.mean(dim=0), torch.zeros(2 * 4 * 32), rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"residual_reference": "next_frame"}, r"Unknown residual_reference='next_frame'. Has to be one of \['key_frame', 'previous_frame', 'both'\]"),
        ({"residual_pooling": "max"}, r"Unknown residual_pooling='max'"),
        ({"residual_pooling": "spatial_map", "residual_pool_grid_size": 5}, r"residual_pool_grid_size=5 is larger than the patch grid .*\(4x4"),
        ({"residual_pooling": "spatial_map", "residual_pool_grid_size": 3, "residual_image_size": 16}, r"larger than the patch grid .*\(2x2"),
        ({"residual_pool_grid_size": 0}, "residual_pool_grid_size must be >= 1"),
        ({"video_tokenization": "frames", "residual_reference": "both"}, "video_tokenization='frames' does not have"),
        ({"video_tokenization": "frames", "residual_pooling": "spatial_map"}, "video_tokenization='frames' does not have"),
    ],
)
def test_bad_combinations_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_vtok_config(**overrides)


def test_save_load_keeps_the_options_and_the_logits(tmp_path):
    tester = VTokModelTester(residual_reference="both", residual_pooling="spatial_map", temporal_stride=2)
    model = tester.model()
    inputs = tester.inputs(frame_counts=(5, 3))
    model.model.video_tokenizer.fit_feature_statistics(torch.rand(3, 5, 3, 32, 32))
    expected = model(**inputs).logits
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    saved = reloaded.config
    assert (saved.residual_reference, saved.residual_pooling, saved.residual_pool_grid_size) == ("both", "spatial_map", 2)
    assert torch.equal(reloaded(**inputs).logits, expected)
    assert VTokConfig.from_pretrained(tmp_path).pooled_residual_size == 2 * 4 * 32


def test_loss_goes_down_on_the_tiny_model():
    tester = VTokModelTester(residual_reference="both", residual_pooling="spatial_map")
    model = tester.model().train()
    inputs = tester.inputs(frame_counts=(4, 3))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(20):
        out = model(**inputs, labels=inputs["input_ids"], videos_to_generate=torch.tensor([True, False]))
        out.loss.backward()
        assert model.model.video_tokenizer.residual_mlp.linear_1.weight.grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0]
