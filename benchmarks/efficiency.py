"""Cost of VTok against frame sampling as the video grows, with realistic shapes (issue 13 item 2).

Shapes: a SigLIP-base-like vision encoder (768 wide, 12 layers, 224 px, patch 16: S = 196 tokens a
frame) and a Qwen2-0.5B-like LLM (896 wide, 24 layers, 14 heads, 2 KV heads), random weights, fp32,
batch 1, one video plus a 16-token question. For each frame count T every arm is measured:

- LLM tokens of the video, vision time (the VTok tokenizer: encoder, residuals, pooling, g_phi),
  LLM prefill time, end-to-end forward (`use_cache=True`, logits of the last position only, as
  `generate`'s prefill), peak memory of one forward above the resident model, KV-cache bytes;
- arms: "frames" (S x T tokens), "vtok" (S + T - 1), VTok with `vision_chunk_size`, and VTok with
  `residual_image_size` at lower resolutions (the key frame's tokens stay at 224 px).

Method. Each arm lives in its own worker process (so one arm's memory never counts in another's),
forked from one server process that imported the library once; the main process asks the workers
in turn, T by T (arms interleaved, so a load change on the machine hits all arms alike); every
ratio compares numbers from the same run. Peak memory is the process's peak resident set (VmHWM,
reset before the forward) minus its resident set just before (model and input frames already
resident). With `--repeats` each T is measured that many times per arm, arms alternating, and the
fastest forward is kept.
Where the machine's time does not allow all layers, the encoder and the LLM are built with fewer
layers (`--vision-layers`, `--text-layers`): per-layer times are measured with hooks on every
layer and scaled to the full depth (12 and 24), the KV cache is scaled per layer, and the JSON
says so. With all layers built each arm holds a model of about 2 GB: `--arms` runs fewer of them (vtok and
frames always, for the ratios). Each worker counts its arm's weights on a full-size model built on the meta device. The
token counts that LLaVA-NeXT-Video's and Qwen2.5-VL's own transformers processors give for the same
video are added (processors built offline from their default configs and a local tokenizer).

    python benchmarks/efficiency.py              # full size, results/efficiency.json and .png
    python benchmarks/efficiency.py --quick      # tiny shapes in seconds (the test runs this)
    python benchmarks/efficiency.py --arms vtok_res16 --output-dir runs/full_depth   # all layers, three arms
"""

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402

RESULTS = Path(__file__).parent / "results"
QUESTION_TOKENS = 16


@dataclass
class Shapes:
    """Model sizes; `*_layers` are the depths actually built, `full_*_layers` those reported."""

    image_size: int = 224
    patch_size: int = 16
    vision_hidden_size: int = 768
    vision_intermediate_size: int = 3072
    vision_heads: int = 12
    full_vision_layers: int = 12
    vision_layers: int = 12
    text_hidden_size: int = 896
    text_intermediate_size: int = 4864
    text_heads: int = 14
    text_kv_heads: int = 2
    full_text_layers: int = 24
    text_layers: int = 24
    full_vocab_size: int = 151936
    # The vocabulary only sizes the embedding table and a one-position head: a smaller one is built
    # to save memory (the weights' size below is counted at full size).
    vocab_size: int = 8192
    frames: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    max_frames_for_frames_arm: int = 64
    residual_image_sizes: list[int] = field(default_factory=lambda: [112, 64, 32, 16])  # 16: one patch per later frame
    vision_chunk_size: int = 8

    @property
    def tokens_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2


QUICK = Shapes(image_size=32, patch_size=8, vision_hidden_size=32, vision_intermediate_size=64, vision_heads=4,
               full_vision_layers=2, vision_layers=1, text_hidden_size=32, text_intermediate_size=64, text_heads=4,
               text_kv_heads=2, full_text_layers=2, text_layers=1, full_vocab_size=1000, vocab_size=1000,
               frames=[2, 5], max_frames_for_frames_arm=5, residual_image_sizes=[16], vision_chunk_size=2)


def arm_overrides(shapes: Shapes) -> dict[str, dict]:
    """The arms: VTokConfig overrides for each."""
    arms = {"vtok": {}, "frames": {"video_tokenization": "frames"}, f"vtok_chunk{shapes.vision_chunk_size}": {"vision_chunk_size": shapes.vision_chunk_size}}
    arms.update({f"vtok_res{size}": {"residual_image_size": size} for size in shapes.residual_image_sizes})
    return arms


def build_config(shapes: Shapes, overrides: dict, vision_layers: int, text_layers: int, vocab_size: int):
    from modeling_vtok import VTokConfig

    return VTokConfig(
        vision_config={"model_type": "siglip_vision_model", "image_size": shapes.image_size, "patch_size": shapes.patch_size,
                       "hidden_size": shapes.vision_hidden_size, "intermediate_size": shapes.vision_intermediate_size,
                       "num_hidden_layers": vision_layers, "num_attention_heads": shapes.vision_heads},
        text_config={"model_type": "qwen2", "vocab_size": vocab_size, "hidden_size": shapes.text_hidden_size,
                     "intermediate_size": shapes.text_intermediate_size, "num_hidden_layers": text_layers,
                     "num_attention_heads": shapes.text_heads, "num_key_value_heads": shapes.text_kv_heads,
                     "max_position_embeddings": 32768},
        video_token_id=vocab_size - 3, video_start_token_id=vocab_size - 2, video_end_token_id=vocab_size - 1,
        **overrides,
    )


def kv_cache_bytes(shapes: Shapes, sequence_length: int, layers: int) -> int:
    """Keys and values of every layer for the whole prompt, fp32."""
    head_dim = shapes.text_hidden_size // shapes.text_heads
    return 2 * layers * shapes.text_kv_heads * head_dim * sequence_length * 4


def full_weight_bytes(shapes: Shapes, overrides: dict) -> int:
    """fp32 bytes of the full-depth model with the full vocabulary, counted without allocating it."""
    from modeling_vtok import VTokForConditionalGeneration

    config = build_config(shapes, overrides, shapes.full_vision_layers, shapes.full_text_layers, shapes.full_vocab_size)
    with torch.device("meta"):
        model = VTokForConditionalGeneration(config)
    return 4 * sum(parameter.numel() for parameter in model.parameters())


def memory_kib(field_name: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


class ModuleTimer:
    """Wall time spent inside modules, summed per label, from forward pre/post hooks."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._started: dict[int, float] = {}

    def watch(self, module: torch.nn.Module, label: str) -> None:
        def start(*_):
            self._started[id(module)] = time.perf_counter()

        def stop(*_):
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - self._started.pop(id(module))

        module.register_forward_pre_hook(start)
        module.register_forward_hook(stop)


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer blocks of an encoder or decoder (the `ModuleList` named `layers`)."""
    return next(module for name, module in model.named_modules() if name.endswith("layers") and isinstance(module, torch.nn.ModuleList))


def serve(shapes: Shapes, overrides: dict, connection) -> None:
    """Worker process: sends the full-size weights' bytes, builds one arm's model, then measures one
    forward per frame count it is sent."""
    torch.manual_seed(0)  # same weights in every arm: only the tokenization differs
    from modeling_vtok import VTokForConditionalGeneration

    connection.send(full_weight_bytes(shapes, overrides))
    config = build_config(shapes, overrides, shapes.vision_layers, shapes.text_layers, shapes.vocab_size)
    model = VTokForConditionalGeneration(config).eval()
    timer = ModuleTimer()
    tokenizer = model.model.video_tokenizer
    timer.watch(tokenizer, "video_tokenizer")
    timer.watch(tokenizer.vision_tower, "vision_encoder")
    for layer in transformer_layers(tokenizer.vision_tower):
        timer.watch(layer, "vision_layers")
    timer.watch(model.model.multi_modal_projector, "projector")
    timer.watch(model.model.language_model, "llm")
    for layer in transformer_layers(model.model.language_model):
        timer.watch(layer, "llm_layers")

    def inputs(num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        num_video_tokens = config.num_video_tokens(num_frames)
        input_ids = torch.tensor([[1, config.video_start_token_id] + [config.video_token_id] * num_video_tokens
                                  + [config.video_end_token_id] + list(range(2, 2 + QUESTION_TOKENS))])
        video = torch.randn(1, num_frames, 3, shapes.image_size, shapes.image_size, generator=torch.Generator().manual_seed(num_frames))
        return input_ids, video

    @torch.no_grad()
    def forward(input_ids, video):
        return model(input_ids=input_ids, pixel_values_videos=video, use_cache=True, logits_to_keep=1)

    forward(*inputs(2))  # warm-up: first-call allocations and kernels
    while (num_frames := connection.recv()) is not None:
        input_ids, video = inputs(num_frames)  # the input frames are not counted in the forward's memory
        timer.seconds.clear()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        resident = memory_kib("VmRSS")
        start = time.perf_counter()
        output = forward(input_ids, video)
        seconds = time.perf_counter() - start
        peak = memory_kib("VmHWM") - resident
        cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
        measured_kv = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
        connection.send({"num_frames": num_frames, "video_tokens": config.num_video_tokens(num_frames),
                         "sequence_length": input_ids.shape[1], "end_to_end_s_measured": seconds,
                         "module_s_measured": dict(timer.seconds), "peak_memory_bytes_measured": peak * 1024,
                         "kv_cache_bytes_measured": measured_kv})
        del output, video


def scale_to_full_depth(shapes: Shapes, row: dict) -> dict:
    """Per-layer scaling of the measured times and KV cache to the full depth; adds the profile."""
    module = row["module_s_measured"]
    extra_vision = module["vision_layers"] * (shapes.full_vision_layers / shapes.vision_layers - 1)
    extra_text = module["llm_layers"] * (shapes.full_text_layers / shapes.text_layers - 1)
    vision, prefill = module["video_tokenizer"] + extra_vision, module["llm"] + extra_text
    end_to_end = row["end_to_end_s_measured"] + extra_vision + extra_text
    kv = kv_cache_bytes(shapes, row["sequence_length"], shapes.full_text_layers)
    extra_kv = kv - row["kv_cache_bytes_measured"]  # the cache of the layers not built, held at the peak too
    profile = {
        "vision encoder layers": module["vision_layers"] + extra_vision,
        "vision embeddings and head": module["vision_encoder"] - module["vision_layers"],
        "VTok residuals, pooling, g_phi, resizing": module["video_tokenizer"] - module["vision_encoder"],
        "projector": module["projector"],
        "LLM layers": module["llm_layers"] + extra_text,
        "LLM embeddings and norm": module["llm"] - module["llm_layers"],
    }
    profile["rest (placeholders, head)"] = end_to_end - sum(profile.values())
    return {**row, "vision_s": vision, "prefill_s": prefill, "end_to_end_s": end_to_end, "kv_cache_bytes": kv,
            "peak_memory_bytes": row["peak_memory_bytes_measured"] + extra_kv,
            "profile_share": {name: seconds / end_to_end for name, seconds in profile.items()}}


def upstream_processor_token_counts(frames: list[int], image_size: int) -> dict[str, dict[int, int]]:
    """Video tokens LLaVA-NeXT-Video's and Qwen2.5-VL's own processors give for a T-frame
    `image_size`-pixel video, built offline from their default configs and a word-level tokenizer."""
    import numpy as np
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (LlavaNextImageProcessor, LlavaNextVideoProcessor, LlavaNextVideoVideoProcessor,
                              PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "question": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<video>", "<image>", "<|video_pad|>", "<|image_pad|>", "<|vision_start|>", "<|vision_end|>"]
    text_tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="[UNK]", additional_special_tokens=specials)
    processors = {
        # LLaVA-NeXT-Video-7B's processor settings: CLIP patch 14 with a CLS token, "default" features
        "llava_next_video": (LlavaNextVideoProcessor(video_processor=LlavaNextVideoVideoProcessor(), image_processor=LlavaNextImageProcessor(),
                                                     tokenizer=text_tokenizer, patch_size=14, vision_feature_select_strategy="default",
                                                     num_additional_image_tokens=1), "<video> question", "<video>"),
        "qwen2_5_vl": (Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(cap_pixels_per_frame=True),
                                           tokenizer=text_tokenizer), "<|vision_start|><|video_pad|><|vision_end|> question", "<|video_pad|>"),
    }
    counts = {}
    for name, (processor, prompt, video_token) in processors.items():
        counts[name] = {}
        for num_frames in frames:
            video = np.random.default_rng(num_frames).integers(0, 256, (num_frames, image_size, image_size, 3), dtype=np.uint8)
            input_ids = processor(text=prompt, videos=[video], return_tensors="np")["input_ids"]
            counts[name][num_frames] = int((input_ids == text_tokenizer.convert_tokens_to_ids(video_token)).sum())
    return counts


def start_workers(shapes: Shapes, arms: dict[str, dict]) -> dict:
    """One process per arm (`arms`: name -> config overrides), each building its model while the main
    process works. They fork from a server process that imports the library once (not each anew, as
    "spawn" would) and hold nothing of the main process (as "fork" would)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["modeling_vtok"])
    workers = {}
    for name, overrides in arms.items():
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(shapes, overrides, child), daemon=True)
        process.start()
        workers[name] = (process, parent)
    return workers


def measure(shapes: Shapes, workers: dict, repeats: int):
    """Asks the workers in turn, T by T; yields the results so far (arm -> rows) after each T."""
    # T by T, all repeats of a T together, arms alternating: a cut run keeps whole Ts
    requests = [(t, name) for t in shapes.frames for _ in range(repeats) for name in workers
                if name != "frames" or t <= shapes.max_frames_for_frames_arm]
    rows: dict[tuple[str, int], dict] = {}
    for index, (num_frames, name) in enumerate(tqdm(requests, desc="forwards (arm x frames, interleaved)")):
        process, connection = workers[name]
        connection.send(num_frames)
        row = scale_to_full_depth(shapes, connection.recv())
        best = rows.get((name, num_frames))
        row["repeats"] = 1 + (best["repeats"] if best else 0)
        if best is None or row["end_to_end_s"] < best["end_to_end_s"]:  # fastest repeat: least disturbed by the load
            rows[(name, num_frames)] = row
        else:
            best["repeats"] = row["repeats"]
        if index + 1 == len(requests) or requests[index + 1][0] != num_frames:
            yield {arm: [rows[(arm, t)] for t in shapes.frames if (arm, t) in rows] for arm in workers}
    for process, connection in workers.values():
        connection.send(None)
        process.join()


def ratios(results: dict) -> list[dict]:
    """frames / vtok for each T both arms measured, from the same run."""
    vtok = {row["num_frames"]: row for row in results["vtok"]}
    out = []
    for frames_row in results["frames"]:
        if frames_row["num_frames"] not in vtok:
            continue
        vtok_row = vtok[frames_row["num_frames"]]
        out.append({"num_frames": frames_row["num_frames"], **{
            key: frames_row[key] / vtok_row[key]
            for key in ("video_tokens", "vision_s", "prefill_s", "end_to_end_s", "peak_memory_bytes", "kv_cache_bytes")}})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, seconds: what the test runs")
    parser.add_argument("--vision-layers", type=int, help="encoder layers actually built (scaled to 12)")
    parser.add_argument("--text-layers", type=int, help="LLM layers actually built (scaled to 24)")
    parser.add_argument("--frames", type=int, nargs="+", help="frame counts T")
    parser.add_argument("--max-frames-for-frames-arm", type=int, help="largest T the frames arm is run at")
    parser.add_argument("--residual-image-sizes", type=int, nargs="+", help="residual resolutions (px), one VTok arm each")
    parser.add_argument("--arms", nargs="+", help="arms to run (default: all); vtok and frames always, for the ratios. "
                        "Fewer arms hold fewer full-size models at once: all layers built, each arm's model is about 2 GB")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved sweeps; the fastest forward of each is kept")
    parser.add_argument("--note", default="", help="what else ran on the machine, for the JSON")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    shapes = QUICK if args.quick else Shapes()
    for name in ("vision_layers", "text_layers", "frames", "max_frames_for_frames_arm", "residual_image_sizes"):
        if getattr(args, name) is not None:
            setattr(shapes, name, getattr(args, name))

    arms = arm_overrides(shapes)
    if args.arms is not None:
        if unknown := set(args.arms) - set(arms):
            parser.error(f"unknown arms {sorted(unknown)}; with these shapes the arms are {list(arms)}")
        arms = {name: overrides for name, overrides in arms.items() if name in {"vtok", "frames", *args.arms}}
    for overrides in arms.values():  # a bad value fails here with the config's message, not in a worker
        try:
            build_config(shapes, overrides, shapes.vision_layers, shapes.text_layers, shapes.vocab_size)
        except ValueError as error:
            parser.error(str(error))

    start = time.perf_counter()
    workers = start_workers(shapes, arms)
    report = {
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "note": args.note},
        "shapes": asdict(shapes),
        "scaled_to_full_depth": shapes.vision_layers != shapes.full_vision_layers or shapes.text_layers != shapes.full_text_layers,
        "upstream_processor_video_tokens": upstream_processor_token_counts(shapes.frames, shapes.image_size),
        "weights_bytes_full_size": {name: connection.recv() for name, (_, connection) in workers.items()},
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for results in measure(shapes, workers, args.repeats):  # the report is rewritten after each T: a cut run keeps what it measured
        complete = all(len(rows) == len(shapes.frames) for name, rows in results.items() if name != "frames")
        report.update(complete=complete, arms=results, frames_over_vtok=ratios(results), benchmark_wall_s=time.perf_counter() - start)
        (args.output_dir / "efficiency.json").write_text(json.dumps(report, indent=1))
        plot(report, args.output_dir / "efficiency.png")
    return report


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = report["arms"]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for name, rows in arms.items():
        frames = [row["num_frames"] for row in rows]
        axes[0].plot(frames, [row["video_tokens"] for row in rows], marker="o", label=name)
        axes[1].plot(frames, [row["end_to_end_s"] for row in rows], marker="o", label=name)
        axes[2].plot(frames, [row["peak_memory_bytes"] / 2**20 for row in rows], marker="o", label=name)
    for name, counts in report["upstream_processor_video_tokens"].items():
        axes[0].plot([int(t) for t in counts], list(counts.values()), linestyle="--", marker="x", label=f"{name} processor")
    # the resolution trade-off at the largest T the frames arm reached, to compare with its encoder alone
    largest = max(row["num_frames"] for row in arms["frames"] or arms["vtok"])
    image_size = report["shapes"]["image_size"]
    resolutions = [(image_size, "vtok")] + [(size, f"vtok_res{size}") for size in report["shapes"]["residual_image_sizes"] if f"vtok_res{size}" in arms]
    for key, label in (("vision_s", "vision"), ("end_to_end_s", "end to end")):
        axes[3].plot([size for size, _ in resolutions], [next(r[key] for r in arms[name] if r["num_frames"] == largest) for _, name in resolutions],
                     marker="o", label=f"VTok {label}")
    frames_rows = [row for row in arms["frames"] if row["num_frames"] == largest]
    if frames_rows:
        axes[3].axhline(frames_rows[0]["vision_s"], color="gray", linestyle="--", label="frames: vision alone")
    axes[0].set(xlabel="frames T", ylabel="LLM video tokens", title="Sequence cost", xscale="log", yscale="log")
    depth = "scaled to full depth" if report["scaled_to_full_depth"] else "all layers built"
    axes[1].set(xlabel="frames T", ylabel=f"seconds (CPU, {depth})", title="End-to-end forward", xscale="log", yscale="log")
    axes[2].set(xlabel="frames T", ylabel="MiB above the resident model", title="Peak memory of one forward", xscale="log", yscale="log")
    axes[3].set(xlabel="residual_image_size (px)", ylabel="seconds", title=f"Residual resolution, T = {largest}")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(report["command"].split(" --note")[0], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
