"""VTokVideoDecoder on a pretrained Wan (issue 10 item 3) and the decoder's diffusers conventions (issue 12
item 9): tiny WanTransformer3DModel and AutoencoderKLWan folders written with save_pretrained at test time."""

import numpy as np
import pytest
import torch
from accelerate import cpu_offload
from conftest import tiny_stack
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from modeling_vtok import VTokTextToVideoPipeline, VTokVideoDecoder

Z_DIM = 4  # latent channels of the tiny VAE, and so the Wan transformer's in_channels


def tiny_wan(**overrides) -> WanTransformer3DModel:
    """A text-to-video Wan transformer whose context (text_dim=24) is wider than VTok's tokens (32 -> 24 differs)."""
    kwargs = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=Z_DIM, out_channels=Z_DIM,
                  text_dim=24, freq_dim=32, ffn_dim=48, num_layers=2, rope_max_seq_len=64)
    kwargs.update(overrides)
    torch.manual_seed(0)
    return WanTransformer3DModel(**kwargs).eval()


def tiny_vae() -> AutoencoderKLWan:
    """8x spatial, 4x temporal compression: 5 frames of 32x32 -> 2 latent frames of 4x4."""
    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=3, z_dim=Z_DIM, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
                            latents_mean=[0.0] * Z_DIM, latents_std=[1.0] * Z_DIM).eval()


@pytest.fixture(scope="module")
def wan_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    tiny_wan().save_pretrained(root / "transformer")
    tiny_vae().save_pretrained(root / "vae")
    return root


@pytest.fixture(scope="module")
def stack():
    return tiny_stack()


def test_from_wan_pretrained_keeps_the_weights_and_starts_as_wan(wan_folders, stack):
    model, _ = stack
    wan = WanTransformer3DModel.from_pretrained(wan_folders / "transformer").eval()
    decoder = VTokVideoDecoder.from_wan_pretrained(wan_folders / "transformer", model.config, concat_channels=2).eval()
    assert decoder.config.in_channels == Z_DIM and decoder.config.text_dim == 24 and decoder.config.prediction_type == "velocity"
    assert decoder.transformer.config.in_channels == Z_DIM + 2 * 2 and decoder.transformer.config.out_channels == Z_DIM

    wan_state, decoder_state = wan.state_dict(), decoder.transformer.state_dict()
    assert wan_state.keys() == decoder_state.keys()
    for name, weight in wan_state.items():
        if name == "patch_embedding.weight":  # widened: the pretrained input channels, then zeros for the tokens
            assert torch.equal(decoder_state[name][:, :Z_DIM], weight), name
            assert not decoder_state[name][:, Z_DIM:].any()
        else:
            assert torch.equal(decoder_state[name], weight), name
    assert not any(p.any() for p in decoder.context_proj.parameters())

    # Step 0 is the pretrained Wan with an all-zero text context, whatever the tokens say.
    latents = torch.randn(2, Z_DIM, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    tokens = torch.randn(2, decoder.num_video_tokens(5), 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = wan(latents, torch.tensor([100.0, 700.0]), torch.zeros(2, 7, 24), return_dict=False)[0]
        got = decoder(latents, torch.tensor([100.0, 700.0]), tokens, num_frames=5).sample
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_from_wan_pretrained_errors(tmp_path, stack):
    model, _ = stack
    tiny_wan(in_channels=Z_DIM + 4, out_channels=Z_DIM, image_dim=8, added_kv_proj_dim=24).save_pretrained(tmp_path / "i2v")
    with pytest.raises(ValueError, match="image-conditioned Wan"):
        VTokVideoDecoder.from_wan_pretrained(tmp_path / "i2v", model.config)
    tiny_wan().save_pretrained(tmp_path / "t2v")
    with pytest.raises(ValueError, match="`num_layers` comes from the Wan transformer's config"):
        VTokVideoDecoder.from_wan_pretrained(tmp_path / "t2v", model.config, num_layers=1)


def test_save_and_reload_keeps_the_wan_decoder(wan_folders, stack, tmp_path):
    model, _ = stack
    decoder = VTokVideoDecoder.from_wan_pretrained(wan_folders / "transformer", model.config).eval()
    with torch.no_grad():
        decoder.context_proj.weight.normal_()  # as after some training
    decoder.save_pretrained(tmp_path)
    loaded = VTokVideoDecoder.from_pretrained(tmp_path).eval()
    for name, weight in decoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], weight), name


def test_attention_processors_and_casting_follow_wan(wan_folders, stack):
    model, _ = stack
    decoder = VTokVideoDecoder.from_wan_pretrained(wan_folders / "transformer", model.config).eval()
    processors = decoder.attn_processors
    assert sorted(processors) == sorted(f"transformer.{name}" for name in decoder.transformer.attn_processors)
    assert len(processors) == 2 * 2  # self- and cross-attention in each of the 2 blocks
    replacement = WanAttnProcessor()
    decoder.set_attn_processor(replacement)
    assert all(processor is replacement for processor in decoder.attn_processors.values())

    latents = torch.randn(1, Z_DIM, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    tokens = torch.randn(1, decoder.num_video_tokens(5), 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        decoder.context_proj.weight.normal_()
        before = decoder(latents, 300, tokens, num_frames=5).sample
        decoder.fuse_qkv_projections()
        assert decoder.transformer.blocks[0].attn1.fused_projections
        torch.testing.assert_close(decoder(latents, 300, tokens, num_frames=5).sample, before, atol=1e-5, rtol=1e-5)

    for name in ("_no_split_modules", "_skip_layerwise_casting_patterns", "_repeated_blocks"):
        assert getattr(VTokVideoDecoder, name) == getattr(WanTransformer3DModel, name) != [], name


def test_guidance_under_sequential_cpu_offload(wan_folders, stack):
    """accelerate keeps offloaded parameters on "meta" outside `forward`; `null_tokens`, which the default guidance
    path calls between forwards, still reads them, and the rendered frames are the same as without offloading.
    (The decoder is offloaded with accelerate's `cpu_offload`, as `enable_sequential_cpu_offload` does; that method
    itself asks for "cpu:0", on which accelerate 1.15 fails for any module, a plain `nn.Linear` included.)"""
    model, _ = stack
    decoder = VTokVideoDecoder.from_wan_pretrained(wan_folders / "transformer", model.config, sample_size=32).eval()
    with torch.no_grad():
        decoder.null_token.normal_()
        decoder.context_proj.weight.normal_()
    pipe = VTokTextToVideoPipeline(None, None, decoder, FlowMatchEulerDiscreteScheduler(), vae=tiny_vae())
    pipe.set_progress_bar_config(disable=True)
    tokens = torch.randn(1, decoder.num_video_tokens(5), 32, generator=torch.Generator().manual_seed(1))
    inputs = dict(video_tokens=tokens, num_frames=5, num_inference_steps=2, guidance_scale=3.0, output_type="pt")
    expected_null = decoder.null_tokens(1, tokens.shape[1])
    expected = pipe(**inputs, generator=torch.Generator().manual_seed(0)).frames

    cpu_offload(decoder, execution_device=torch.device("cpu"), offload_buffers=True)
    assert decoder.null_token.device.type == "meta"
    assert torch.equal(decoder.null_tokens(1, tokens.shape[1]), expected_null)
    assert decoder.null_token.device.type == "meta"  # and back where the hook keeps it
    torch.testing.assert_close(pipe(**inputs, generator=torch.Generator().manual_seed(0)).frames, expected)


def latents_of(vae: AutoencoderKLWan, clips: torch.Tensor) -> torch.Tensor:
    """Clips `(B, 3, T, H, W)` in [-1, 1] -> normalised latents, the inverse of the pipeline's `decode_latents`."""
    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1)
    with torch.no_grad():
        return (vae.encode(clips).latent_dist.mode() - mean) / std


def moving_bars(num_frames=5, size=32) -> np.ndarray:
    """Two uint8 clips `(2, T, H, W, 3)`: a bar sliding right and one sliding down."""
    clips = np.zeros((2, num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        clips[0, t, 4 + 3 * t : 12 + 3 * t, : size // 2] = 255
        clips[1, t, size // 2 :, 4 + 3 * t : 12 + 3 * t] = 255
    return clips


def test_latent_path_trains_and_generates_through_the_vae(wan_folders, stack):
    """A few dozen steps on the VAE latents of two tiny clips lower the flow-matching loss (measured on fixed
    noise); then the pipeline renders a prompt through the trained decoder and the VAE."""
    model, processor = stack
    vae = AutoencoderKLWan.from_pretrained(wan_folders / "vae").eval()
    decoder = VTokVideoDecoder.from_wan_pretrained(wan_folders / "transformer", model.config, sample_size=32, conditioning_dropout=0.0)
    pipe = VTokTextToVideoPipeline(model, processor, decoder, FlowMatchEulerDiscreteScheduler(), vae=vae)
    pipe.set_progress_bar_config(disable=True)

    clips = moving_bars()
    tokens, num_frames = pipe.encode_video(list(clips))
    pixels = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    latents = latents_of(vae, pixels)
    assert latents.shape == (2, Z_DIM, 2, 4, 4) and num_frames == 5

    def held_out_loss():
        decoder.eval()
        with torch.no_grad():
            return sum(decoder.training_loss(latents, tokens, num_frames, generator=torch.Generator().manual_seed(seed)).item()
                       for seed in range(8)) / 8

    before = held_out_loss()
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        decoder.train()
        loss = decoder.training_loss(latents, tokens, num_frames, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    assert after < 0.7 * before, (before, after)
    assert decoder.transformer.patch_embedding.weight[:, Z_DIM:].abs().sum() > 0  # the token channels learned

    decoder.eval()
    frames = pipe("a red circle moves left", num_frames=5, num_inference_steps=2, guidance_scale=2.0,
                  generator=torch.Generator().manual_seed(0), output_type="pt").frames
    assert frames.shape == (1, 5, 3, 32, 32) and frames.min() >= 0 and frames.max() <= 1
