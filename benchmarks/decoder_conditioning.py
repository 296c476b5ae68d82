"""Which conditioning and prediction target lets the VTok decoder use its tokens? (docs/generation.md)

Trains each `VTokVideoDecoder` variant for the same number of steps on the same VTok-Shapes clips, in
one process, from the same seed, with tokens from one fixed (randomly initialised, frozen) tiny VTok
tokenizer. Then samples every training clip from the same noise twice: with its own tokens
(reconstruction MSE) and with another clip's tokens (swapped MSE). A decoder that ignores its tokens
has swapped / reconstruction close to 1.

    python benchmarks/decoder_conditioning.py --steps 300 --clips 6 --batch_size 2   # the published run
    python benchmarks/decoder_conditioning.py --quick --output /tmp/d.json   # every variant a few steps: what the test runs
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from modeling_vtok import VTokConfig, VTokModel
from modeling_vtok.decoder_vtok import VTokVideoDecoder
from vtok_shapes.dataset import COLORS, DIRECTIONS, SHAPES, render_clip


VARIANTS = [
    ("concat", "sample"),
    ("concat", "velocity"),
    ("cross_attention", "sample"),
    ("cross_attention", "velocity"),
    ("both", "sample"),
]


def make_clips(num_clips: int, num_frames: int, image_size: int, seed: int) -> torch.Tensor:
    """`(num_clips, 3, T, H, W)` in [-1, 1]: one coloured shape moving in a random direction."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(num_clips):
        shape = {
            "color": rng.choice(list(COLORS)), "shape": rng.choice(SHAPES), "size": "big",
            "direction": rng.choice(DIRECTIONS), "motion": "constant",
            "x": float(rng.uniform(0.35, 0.65) * image_size), "y": float(rng.uniform(0.35, 0.65) * image_size),
        }
        clips.append(render_clip([shape], num_frames=num_frames, image_size=image_size))
    video = torch.from_numpy(np.stack(clips)).float() / 127.5 - 1  # (N, T, H, W, 3)
    return video.permute(0, 4, 1, 2, 3).contiguous()


@torch.no_grad()
def vtok_tokens(clips: torch.Tensor) -> torch.Tensor:
    tiny_vision = {"model_type": "siglip_vision_model", "image_size": 32, "patch_size": 8, "hidden_size": 32,
                   "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    tiny_text = {"model_type": "qwen2", "vocab_size": 99, "hidden_size": 32, "intermediate_size": 64,
                 "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}
    torch.manual_seed(0)
    model = VTokModel(VTokConfig(vision_config=tiny_vision, text_config=tiny_text, video_token_id=96,
                                 video_start_token_id=97, video_end_token_id=98)).eval()
    pixel_values = clips.permute(0, 2, 1, 3, 4)  # (N, T, 3, H, W), already in the processor's [-1, 1]
    out = model.get_vtok_tokens(pixel_values, torch.full((len(clips),), clips.shape[2]))
    return out.tokens


@torch.no_grad()
def sample(decoder, tokens, shape, num_steps, seed):
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(num_steps)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    for i, t in enumerate(scheduler.timesteps):
        output = decoder(latents, t.expand(shape[0]), tokens).sample
        latents = scheduler.step(decoder.velocity(output, latents, scheduler.sigmas[i]), t, latents).prev_sample
    return latents.clamp(-1, 1)


# Every variant trained and sampled at the smallest sizes that still run it (what the test runs).
QUICK = dict(steps=2, clips=2, batch_size=2, sampling_steps=1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every variant 2 steps on 2 clips (the test's size)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--num_frames", type=int, default=8)
    parser.add_argument("--sampling_steps", type=int, default=10)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "decoder_conditioning.json"))
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("steps", "batch_size", "num_frames", "sampling_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.clips < 2:  # the swapped tokens are another clip's
        parser.error(f"--clips must be >= 2 (each clip is also sampled with another clip's tokens), got {args.clips}")
    if args.batch_size > args.clips:
        parser.error(f"--batch_size ({args.batch_size}) cannot exceed --clips ({args.clips}): a batch draws clips without replacement")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    clips = make_clips(args.clips, args.num_frames, 32, seed=0)
    tokens = vtok_tokens(clips)
    swapped = tokens.roll(1, dims=0)
    # the output as a relative path, so the JSON names no folder of this machine
    results = {"setup": vars(args) | {"output": os.path.relpath(args.output), "image_size": 32, "token_shape": list(tokens.shape)}, "variants": []}
    for conditioning, prediction_type in VARIANTS:
        torch.manual_seed(0)
        decoder = VTokVideoDecoder(token_dim=32, key_grid_size=4, conditioning=conditioning,
                                   prediction_type=prediction_type, num_layers=2, num_attention_heads=4,
                                   attention_head_dim=16, conditioning_dropout=0.1)
        optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        start, losses = time.time(), []
        decoder.train()
        for step in range(args.steps):
            index = torch.randperm(args.clips, generator=generator)[: args.batch_size]
            loss = decoder.training_loss(clips[index], tokens[index], generator=generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_s = time.time() - start
        decoder.eval()
        recon = sample(decoder, tokens, clips.shape, args.sampling_steps, seed=1)
        other = sample(decoder, swapped, clips.shape, args.sampling_steps, seed=1)
        recon_mse = torch.mean((recon - clips) ** 2).item()
        swapped_mse = torch.mean((other - clips) ** 2).item()
        row = {
            "conditioning": conditioning, "prediction_type": prediction_type,
            "parameters": sum(p.numel() for p in decoder.parameters()),
            "final_train_loss": float(np.mean(losses[-20:])), "train_seconds": round(train_s, 1),
            "reconstruction_mse": recon_mse, "swapped_tokens_mse": swapped_mse,
            "swapped_over_reconstruction": swapped_mse / recon_mse,
        }
        results["variants"].append(row)
        print(json.dumps(row), flush=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
