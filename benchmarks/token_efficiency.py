"""Cost of VTok against naive frame sampling as the video grows, measured side by side in one run.

For each frame count T, the same model (same weights, same code path) is run with
`video_tokenization="vtok"` and `"frames"`; we record the LLM sequence length, the wall time of
a full forward pass (vision encoder + LLM prefill), and the KV-cache size the sequence needs.
Writes benchmarks/results/token_efficiency.json and .png.

    python benchmarks/token_efficiency.py [--frames 4 8 16 32 64] [--repeats 3]
"""

import argparse
import json
import time
from pathlib import Path

import torch

from modeling_vtok import VTokConfig, VTokForConditionalGeneration

RESULTS = Path(__file__).parent / "results"


def small_config(video_tokenization: str) -> VTokConfig:
    """A small but not toy setting: 64x64 frames, 8x8 patch grid (S = 64), a 4-layer 256-wide LLM."""
    return VTokConfig(
        vision_config={"model_type": "siglip_vision_model", "image_size": 64, "patch_size": 8, "hidden_size": 128,
                       "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4},
        text_config={"model_type": "qwen2", "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 512,
                     "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2},
        video_tokenization=video_tokenization,
        video_token_id=997, video_start_token_id=998, video_end_token_id=999,
    )


def kv_cache_bytes(config: VTokConfig, sequence_length: int) -> int:
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    return 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * sequence_length * 4  # keys + values, fp32


@torch.no_grad()
def time_forward(model, num_frames: int, repeats: int) -> tuple[int, float]:
    config = model.config
    n = config.num_video_tokens(num_frames)
    input_ids = torch.tensor([[1, config.video_start_token_id] + [config.video_token_id] * n + [config.video_end_token_id, 2]])
    video = torch.randn(1, num_frames, 3, 64, 64)
    model(input_ids=input_ids, pixel_values_videos=video)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(input_ids=input_ids, pixel_values_videos=video)
        times.append(time.perf_counter() - start)
    return input_ids.shape[1], min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    vtok = VTokForConditionalGeneration(small_config("vtok")).eval()
    frames = VTokForConditionalGeneration(small_config("frames")).eval()
    frames.load_state_dict(vtok.state_dict())  # identical weights: only the tokenization differs

    rows = []
    for num_frames in args.frames:
        row = {"num_frames": num_frames}
        for name, model in (("vtok", vtok), ("frames", frames)):
            length, seconds = time_forward(model, num_frames, args.repeats)
            row[name] = {"video_tokens": model.config.num_video_tokens(num_frames), "sequence_length": length,
                         "forward_seconds": round(seconds, 4), "kv_cache_mib": round(kv_cache_bytes(model.config, length) / 2**20, 3)}
        row["token_ratio"] = round(row["frames"]["video_tokens"] / row["vtok"]["video_tokens"], 2)
        row["speedup"] = round(row["frames"]["forward_seconds"] / row["vtok"]["forward_seconds"], 2)
        rows.append(row)
        print(json.dumps(row))

    RESULTS.mkdir(exist_ok=True)
    setting = "64x64 frames, S=64 key-frame tokens, 2-layer SigLIP-style encoder, 4-layer Qwen2-style LLM (256 wide), CPU fp32"
    (RESULTS / "token_efficiency.json").write_text(json.dumps({"setting": setting, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    plot(rows)


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["num_frames"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("vtok", "frames"):
        axes[0].plot(t, [r[name]["video_tokens"] for r in rows], marker="o", label=name)
        axes[1].plot(t, [r[name]["forward_seconds"] for r in rows], marker="o", label=name)
    axes[0].set(xlabel="frames", ylabel="LLM video tokens", title="Sequence cost", yscale="log")
    axes[1].set(xlabel="frames", ylabel="seconds per forward (CPU)", title="Forward time", yscale="log")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "token_efficiency.png", dpi=100)


if __name__ == "__main__":
    main()
