"""The token layout is the one home of derived quantities: windows, token counts, positions; every
user (config, tokenizer, processor, decoder, pipeline) reads it and they agree."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from conftest import tiny_stack, tiny_vtok_config
from modeling_vtok import VTokTextToVideoPipeline, VTokTokenLayout, VTokVideoDecoder, VTokVideoTokenizer


@pytest.mark.parametrize(
    "layout, num_frames, windows, token_of_frame",
    [
        (VTokTokenLayout(4), 4, [[1], [2], [3]], [-1, 0, 1, 2]),
        (VTokTokenLayout(4, temporal_stride=2), 6, [[1, 2], [3, 4], [5]], [-1, 0, 0, 1, 1, 2]),
        (VTokTokenLayout(4, temporal_stride=2, key_frame_index=2), 6, [[0, 1], [3, 4], [5]], [0, 0, -1, 1, 1, 2]),
        (VTokTokenLayout(4, temporal_stride=3), 1, [], [-1]),
        (VTokTokenLayout(4, video_tokenization="frames"), 3, [], [-1, -1, -1]),
    ],
)
def test_windows_cover_every_non_key_frame_once(layout, num_frames, windows, token_of_frame):
    assert layout.residual_windows(num_frames) == windows
    assert layout.residual_token_of_frames(num_frames).tolist() == token_of_frame
    assert len(layout.temporal_positions(num_frames)) == layout.num_video_tokens(num_frames)
    if layout.video_tokenization == "vtok":
        assert layout.num_video_tokens(num_frames) == 16 + len(windows)


def test_config_processor_and_decoder_share_the_layout():
    model, processor = tiny_stack(temporal_stride=2, key_frame_index=1, key_frame_pool_size=2)
    layout = model.config.token_layout
    assert layout == VTokTokenLayout(key_grid_size=2, temporal_stride=2, video_tokenization="vtok", key_frame_index=1)
    decoder = VTokVideoDecoder.from_model_config(model.config, num_layers=1, attention_head_dim=8)
    assert decoder.token_layout == layout
    assert decoder.config.token_dim == model.config.vision_config.hidden_size
    for num_frames in (2, 5, 8):
        assert processor.num_video_tokens(num_frames) == layout.num_video_tokens(num_frames) == decoder.num_video_tokens(num_frames)
    frames_config = tiny_vtok_config(video_tokenization="frames")
    assert VTokVideoDecoder.from_model_config(frames_config, num_layers=1, attention_head_dim=8).token_layout == frames_config.token_layout


def test_tokenizer_averages_the_residuals_of_each_window_around_a_middle_key_frame():
    tokenizer = VTokVideoTokenizer(tiny_vtok_config(temporal_stride=2, key_frame_index=2)).eval()
    video = torch.randn(1, 5, 3, 32, 32)
    with torch.no_grad():
        features = tokenizer.encode_frames(video[0]).flatten(1, 2)
        residual = features - features[2]
        tokens = tokenizer(video).tokens[0]
        expected = [tokenizer.residual_mlp(residual[window].mean(dim=0).mean(dim=0)) for window in ([0, 1], [3, 4])]
    torch.testing.assert_close(tokens[16:], torch.stack(expected))


def test_decoder_gives_each_frame_the_token_of_its_window():
    decoder = VTokVideoDecoder(token_dim=8, key_grid_size=2, temporal_stride=2, key_frame_index=2, concat_channels=3, num_layers=1, attention_head_dim=8)
    tokens = torch.randn(1, 4 + 3, 8)  # S = 4, windows [0, 1], [3, 4], [5]
    conditioning = decoder._concat_conditioning(tokens, num_frames=6, latent_shape=(6, 4, 4))
    per_frame = conditioning[0, 3:, :, 0, 0].T  # (T, c): the residual channels of each frame
    residual = decoder.residual_proj(tokens[0, 4:])
    torch.testing.assert_close(per_frame[2], decoder.key_frame_residual)
    torch.testing.assert_close(per_frame[[0, 1, 3, 4, 5]], residual[[0, 0, 1, 1, 2]])


def test_pipeline_rejects_a_decoder_with_another_layout():
    model, processor = tiny_stack(temporal_stride=2)
    decoder = VTokVideoDecoder.from_model_config(tiny_vtok_config(temporal_stride=1), num_layers=1, attention_head_dim=8)
    pipe = VTokTextToVideoPipeline(model=model, processor=processor, decoder=decoder, scheduler=FlowMatchEulerDiscreteScheduler())
    with pytest.raises(ValueError, match="VTokVideoDecoder.from_model_config"):
        pipe("a red circle moves left", num_frames=3, num_inference_steps=1)


def test_onevision_form_splits_the_llm_layout_from_the_tokenizer_layout(tmp_path):
    """In LLaVA-OneVision's form the LLM reads the pooled key frame and a newline; the VTok tokens keep the whole
    grid. The processor (also after save/load) counts the LLM's tokens, the decoder reads the tokenizer's."""
    from transformers import AutoProcessor

    model, processor = tiny_stack(key_frame_pool_size=2, key_frame_pooling="projected_bilinear", video_newline=True)
    config = model.config
    assert config.token_layout == VTokTokenLayout(key_grid_size=2, video_newline=True)
    assert config.tokenizer_layout == VTokTokenLayout(key_grid_size=4)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    decoder = VTokVideoDecoder.from_model_config(config, num_layers=1, attention_head_dim=8)
    for num_frames in (1, 3, 6):
        llm_tokens = 4 + (num_frames - 1) + 1
        assert processor.num_video_tokens(num_frames) == reloaded.num_video_tokens(num_frames) == config.num_video_tokens(num_frames) == llm_tokens
        assert len(config.token_layout.temporal_positions(num_frames)) == llm_tokens
        assert decoder.num_video_tokens(num_frames) == 16 + num_frames - 1
