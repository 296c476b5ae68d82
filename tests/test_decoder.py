"""VTokVideoDecoder: shapes, config round trip, errors, and that a short training run makes it use its tokens."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from modeling_vtok.decoder_vtok import VTokVideoDecoder


def tiny_decoder(**overrides) -> VTokVideoDecoder:
    kwargs = dict(token_dim=32, key_grid_size=4, sample_size=16, num_layers=1, num_attention_heads=2,
                  attention_head_dim=12, freq_dim=32)
    kwargs.update(overrides)
    torch.manual_seed(0)
    return VTokVideoDecoder(**kwargs)


def two_clips(num_frames=4, size=16):
    """Two clips in [-1, 1], `(2, 3, T, H, W)`: a white bar sliding right on the left half, and one sliding
    down on the bottom half; each with its own random tokens `(2, 16 + T - 1, 32)`."""
    clips = -torch.ones(2, 3, num_frames, size, size)
    for t in range(num_frames):
        clips[0, :, t, 2 + t : 6 + t, 0 : size // 2] = 1.0
        clips[1, :, t, size // 2 :, 2 + t : 6 + t] = 1.0
    tokens = torch.randn(2, 16 + num_frames - 1, 32, generator=torch.Generator().manual_seed(1))
    return clips, tokens


@torch.no_grad()
def sample(decoder, tokens, shape, steps=4):
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(steps)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    for i, t in enumerate(scheduler.timesteps):
        out = decoder(x, t.expand(shape[0]), tokens).sample
        x = scheduler.step(decoder.velocity(out, x, scheduler.sigmas[i]), t, x).prev_sample
    return x


@pytest.mark.parametrize("conditioning", ["concat", "cross_attention", "both"])
@pytest.mark.parametrize("prediction_type", ["sample", "velocity"])
def test_forward_shape_and_loss_backward(conditioning, prediction_type):
    decoder = tiny_decoder(conditioning=conditioning, prediction_type=prediction_type)
    clips, tokens = two_clips()
    out = decoder(clips, torch.tensor([10.0, 900.0]), tokens)
    assert out.sample.shape == clips.shape
    assert torch.equal(decoder(clips, torch.tensor([10.0, 900.0]), tokens, return_dict=False)[0], out.sample)
    loss = decoder.training_loss(clips, tokens, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    named = dict(decoder.named_modules())
    if conditioning != "cross_attention":  # peft can target the projections by name
        assert isinstance(named["key_frame_proj"], torch.nn.Linear) and isinstance(named["residual_proj"], torch.nn.Linear)
        assert decoder.key_frame_proj.weight.grad is not None


def test_temporal_stride_and_latent_frames():
    decoder = tiny_decoder(temporal_stride=3)
    assert decoder.num_video_tokens(8) == 16 + 3
    tokens = torch.randn(1, 19, 32)
    assert decoder(torch.randn(1, 3, 8, 16, 16), 500, tokens).sample.shape == (1, 3, 8, 16, 16)
    # VAE-compressed time: 8 frames in 3 latent frames.
    assert decoder(torch.randn(1, 3, 3, 16, 16), 500, tokens, num_frames=8).sample.shape == (1, 3, 3, 16, 16)


def test_errors():
    with pytest.raises(ValueError, match="conditioning"):
        VTokVideoDecoder(conditioning="film")
    with pytest.raises(ValueError, match="prediction_type"):
        VTokVideoDecoder(prediction_type="epsilon")
    decoder = tiny_decoder()
    with pytest.raises(ValueError, match="video_tokens"):
        decoder(torch.randn(1, 3, 4, 16, 16), 500, torch.randn(1, 10, 32))


def test_save_load_round_trip(tmp_path):
    decoder = tiny_decoder(conditioning="both", concat_channels=2).eval()
    decoder.save_pretrained(tmp_path)
    loaded = VTokVideoDecoder.from_pretrained(tmp_path).eval()
    assert loaded.config.conditioning == "both" and loaded.config.concat_channels == 2
    clips, tokens = two_clips()
    torch.testing.assert_close(loaded(clips, 300, tokens).sample, decoder(clips, 300, tokens).sample, atol=1e-5, rtol=1e-5)


def test_conditioning_dropout_uses_null_token():
    decoder = tiny_decoder(conditioning_dropout=0.99)
    clips, tokens = two_clips()
    decoder.training_loss(clips, tokens, generator=torch.Generator().manual_seed(0)).backward()
    assert decoder.null_token.grad is not None and decoder.null_token.grad.abs().sum() > 0


@pytest.mark.parametrize("video_tokenization", ["vtok", "frames"])
def test_training_makes_decoder_follow_its_tokens(video_tokenization):
    """A few dozen steps on two clips: sampling a clip from its own tokens gets closer to it than at step 0,
    and closer than sampling from the other clip's tokens (the conditioning path is wired); the same for the
    frame-sampling baseline's decoder, which reads S tokens per frame."""
    decoder = tiny_decoder(conditioning_dropout=0.0, video_tokenization=video_tokenization)
    clips, tokens = two_clips()
    if video_tokenization == "frames":
        tokens = torch.randn(2, 4 * 16, 32, generator=torch.Generator().manual_seed(1))
    before = torch.mean((sample(decoder.eval(), tokens, clips.shape) - clips) ** 2).item()
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    decoder.train()
    for _ in range(60):
        loss = decoder.training_loss(clips, tokens, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    own = torch.mean((sample(decoder, tokens, clips.shape) - clips) ** 2).item()
    swapped = torch.mean((sample(decoder, tokens.flip(0), clips.shape) - clips) ** 2).item()
    assert own < 0.5 * before, (own, before)
    assert own < swapped, (own, swapped)


def test_frames_decoder_lays_each_frame_on_its_own_grid():
    """video_tokenization="frames": S tokens per frame; frame t's "concat" channels come from its own grid only, every
    frame gets the key frame's embedding, and a VAE's compressed time averages the grids each latent frame holds."""
    decoder = tiny_decoder(video_tokenization="frames", conditioning="concat", concat_channels=2)
    assert decoder.num_video_tokens(3) == 3 * 16 and decoder.token_layout.video_tokenization == "frames"
    tokens = torch.randn(1, 3 * 16, 32, generator=torch.Generator().manual_seed(0))
    cond = decoder._concat_conditioning(tokens, 3, (3, 8, 8))  # (1, 4, 3, 8, 8)
    for frame in range(3):
        grid = decoder.key_frame_proj(tokens[:, frame * 16 : (frame + 1) * 16]).transpose(1, 2).reshape(1, 2, 4, 4)
        torch.testing.assert_close(cond[:, :2, frame], torch.nn.functional.interpolate(grid, size=(8, 8), mode="nearest"))
        torch.testing.assert_close(cond[0, 2:, frame, 0, 0], decoder.key_frame_residual)
    five = torch.randn(1, 5 * 16, 32)
    compressed = decoder._concat_conditioning(five, 5, (2, 8, 8))  # frame 0 alone, frames 1-4 in one latent frame
    per_frame = decoder._concat_conditioning(five, 5, (5, 8, 8))
    torch.testing.assert_close(compressed[:, :, 1], per_frame[:, :, 1:].mean(2))
    assert decoder(torch.randn(1, 3, 2, 16, 16), 500, five, num_frames=5).sample.shape == (1, 3, 2, 16, 16)
    with pytest.raises(ValueError, match=r"\(batch_size, 48, 32\) for num_frames=3 \(S=16 tokens per frame\)"):
        decoder(torch.randn(1, 3, 3, 16, 16), 500, torch.randn(1, 18, 32))
    with pytest.raises(ValueError, match="Unknown video_tokenization='pixels'"):
        tiny_decoder(video_tokenization="pixels")



@pytest.mark.parametrize("key_frame_index", [0, 2])
def test_key_grid_on_the_key_frame_only(key_frame_index):
    """key_grid_frames="key_frame": the key frame's "concat" grid channels are those of the default decoder, every
    other frame's are zero (the residual channels unchanged); a VAE's latent frame holding the key frame among
    others gets its share; the option survives save/load and is refused where there is no key grid to place."""
    every = tiny_decoder(conditioning="concat", concat_channels=2, key_frame_index=key_frame_index)
    only_key = tiny_decoder(conditioning="concat", concat_channels=2, key_frame_index=key_frame_index, key_grid_frames="key_frame")
    only_key.load_state_dict(every.state_dict())
    tokens = torch.randn(1, 16 + 4, 32, generator=torch.Generator().manual_seed(0))
    reference, cond = every._concat_conditioning(tokens, 5, (5, 8, 8)), only_key._concat_conditioning(tokens, 5, (5, 8, 8))
    torch.testing.assert_close(cond[:, :2, key_frame_index], reference[:, :2, key_frame_index])
    assert reference[:, :2, key_frame_index].abs().sum() > 0
    others = [t for t in range(5) if t != key_frame_index]
    assert torch.count_nonzero(cond[:, :2, others]) == 0
    torch.testing.assert_close(cond[:, 2:], reference[:, 2:])
    compressed = only_key._concat_conditioning(tokens, 5, (2, 8, 8))  # frame 0 alone, frames 1-4 in one latent frame
    torch.testing.assert_close(compressed[:, :2, 1], reference[:, :2, 1] * (0.25 if key_frame_index else 0.0))
    assert only_key(torch.randn(1, 3, 5, 16, 16), 500, tokens).sample.shape == (1, 3, 5, 16, 16)


def test_key_grid_frames_round_trip_and_errors(tmp_path):
    decoder = tiny_decoder(key_grid_frames="key_frame").eval()
    decoder.save_pretrained(tmp_path)
    loaded = VTokVideoDecoder.from_pretrained(tmp_path).eval()
    assert loaded.config.key_grid_frames == "key_frame"
    clips, tokens = two_clips()
    torch.testing.assert_close(loaded(clips, 300, tokens).sample, decoder(clips, 300, tokens).sample, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown key_grid_frames='first'"):
        tiny_decoder(key_grid_frames="first")
    with pytest.raises(ValueError, match="video_tokenization='frames'"):
        tiny_decoder(key_grid_frames="key_frame", video_tokenization="frames")
    with pytest.raises(ValueError, match="conditioning='cross_attention'"):
        tiny_decoder(key_grid_frames="key_frame", conditioning="cross_attention")
