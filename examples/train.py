"""Train a VTok model on VTok-Shapes with `transformers.Trainer`, then its diffusion decoder.

Stage "vtok": the LLM, the residual MLP g_phi and the projector learn understanding and
generation together, `L = L_under + lambda_visLM * L_visLM` (both terms are logged).
Stage "decoder": the diffusion decoder learns to render the (now frozen) VTok tokens.
The result is a diffusers-style folder that `VTokTextToVideoPipeline.from_pretrained` loads,
with `model/` and `processor/` also loadable by `AutoModelForImageTextToText` / `AutoProcessor`.

    python examples/train.py --size tiny --steps 20 --decoder-steps 20 --output-dir runs/tiny
    torchrun --nproc_per_node 2 examples/train.py --size tiny --steps 2 --stage vtok --output-dir runs/ddp
"""

import argparse
import json
import os
from pathlib import Path

import torch
from datasets import concatenate_datasets
from diffusers import FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from modeling_vtok import VTokConfig, VTokForConditionalGeneration, VTokTextToVideoPipeline, VTokVideoDecoder
from modeling_vtok.trainer_vtok import VTokTrainer
from processing_vtok import VTokProcessor, VTokVideoProcessor, train_text_tokenizer
from processing_vtok.collator import VTokDataCollator
from vtok_shapes.dataset import load_vtok_shapes, render_videos, text_to_video_clips

logger = logging.get_logger("vtok.train")

# Model sizes: "tiny" for tests and CI, "small" for the bundled default (about 25 MB in fp32).
SIZES = {
    "tiny": {
        "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 8},
        "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
        "decoder": {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 8},
        "key_frame_pool_size": None,
    },
    "small": {
        "vision": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "patch_size": 4},
        "text": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2},
        # 4x4-pixel patches: 10x faster on CPU than 2x2 at this size (0.9 s vs 7 s per batch of 16)
        "decoder": {"patch_size": (1, 4, 4), "num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32, "concat_channels": 8},
        "key_frame_pool_size": 4,
    },
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--stage", choices=["vtok", "decoder", "all"], default="all")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps of the VTok (LLM) stage")
    parser.add_argument("--decoder-steps", type=int, default=200, help="optimizer steps of the decoder stage")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--num-train-samples", type=int, default=2000)
    parser.add_argument("--generation-repeats", type=int, default=2, help="how often each canonical text-to-video clip is seen per epoch (0: understanding only)")
    parser.add_argument("--max-shapes", type=int, default=None, help="train only on clips with at most this many shapes (a curriculum step)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decoder-learning-rate", type=float, default=1e-3)
    parser.add_argument("--resume", action="store_true", help="continue the VTok stage from OUTPUT_DIR/model instead of a new model")
    parser.add_argument("--freeze-video-tokenizer", action="store_true", help="keep F and g_phi fixed, so a trained decoder stays valid")
    parser.add_argument("--train-vision-encoder", action="store_true", help="unfreeze F (no pretrained encoder is available offline)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="activation checkpointing in the LLM")
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump-rank-weights", action="store_true", help="each process saves its final weights (multi-process check)")
    args = parser.parse_args(argv)
    if args.generation_repeats < 0 or (args.max_shapes is not None and args.max_shapes < 1):
        raise SystemExit("--generation-repeats must be >= 0 and --max-shapes >= 1")
    for name in ("steps", "decoder_steps", "num_train_samples", "batch_size", "num_frames"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def build_model_and_processor(args, texts: list[str]) -> tuple[VTokForConditionalGeneration, VTokProcessor]:
    """A text tokenizer trained on the dataset's own words, and a model of the chosen size around it."""
    size = SIZES[args.size]
    tokenizer = train_text_tokenizer(texts, vocab_size=512)
    config = VTokConfig(
        vision_config={"model_type": "siglip_vision_model", "image_size": args.image_size, **size["vision"]},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "max_position_embeddings": 1024, **size["text"]},
        key_frame_pool_size=size["key_frame_pool_size"],
        freeze_vision_encoder=not args.train_vision_encoder,
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        video_start_token_id=tokenizer.convert_tokens_to_ids("<vid_start>"),
        video_end_token_id=tokenizer.convert_tokens_to_ids("<vid_end>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    video_processor = VTokVideoProcessor(size={"height": args.image_size, "width": args.image_size})
    processor = VTokProcessor.from_model_config(config, video_processor, tokenizer)
    model = VTokForConditionalGeneration(config)
    # No pretrained encoder offline: the random SigLIP gets fixed 2D sine-cosine position
    # embeddings, so its features say where a shape is and residuals say where it went.
    position_embedding = model.model.video_tokenizer.vision_tower.embeddings.position_embedding
    with torch.no_grad():
        position_embedding.weight.copy_(sincos_position_embeddings(config.patch_grid_size, config.vision_config.hidden_size))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, processor


def sincos_position_embeddings(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine code of a `grid` x `grid` patch grid, `(grid * grid, dim)` (as in MAE)."""
    quarter = dim // 4
    freqs = 1.0 / 100 ** (torch.arange(quarter) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    x, y = xs.reshape(-1, 1) * freqs, ys.reshape(-1, 1) * freqs
    code = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)
    return torch.nn.functional.pad(code, (0, dim - code.shape[1]))


def fit_feature_statistics(model: VTokForConditionalGeneration, processor: VTokProcessor, dataset, num_videos: int = 512) -> None:
    """Standardise the new model's VTok tokens with statistics of the first training clips (docs/model.md)."""
    videos = dataset.select(range(min(num_videos, len(dataset))))[:]["video"]
    inputs = processor.video_processor(videos=videos, return_tensors="pt")
    model.model.video_tokenizer.fit_feature_statistics(inputs["pixel_values_videos"], inputs["video_lengths"])


def training_examples(dataset, args):
    """Every clip's question (understanding) and the canonical text-to-video clips
    (generation, `text_to_video_clips`), each repeated `args.generation_repeats` times."""
    understanding = dataset.add_column("task", ["understanding"] * len(dataset))
    generation = text_to_video_clips("train", num_frames=args.num_frames, image_size=args.image_size)
    generation = generation.add_column("task", ["generation"] * len(generation))
    examples = concatenate_datasets([understanding] + [generation] * args.generation_repeats).shuffle(seed=0)
    return examples.with_transform(render_videos)


def training_arguments(args, output_dir: Path, steps: int, learning_rate: float, activation_checkpointing: bool = False) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=min(50, steps // 10),
        weight_decay=0.0,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        activation_checkpointing=activation_checkpointing,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        dataloader_num_workers=0,
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
    )


class DecoderTrainingModule(nn.Module):
    """Trainer-facing wrapper: frozen VTok tokens in, the decoder's flow-matching loss out."""

    def __init__(self, decoder: VTokVideoDecoder, vtok_model: VTokForConditionalGeneration):
        super().__init__()
        self.decoder = decoder
        self.vtok_model = vtok_model.requires_grad_(False).eval()

    def forward(self, pixel_values_videos, video_lengths=None, **unused):
        if video_lengths is not None and not (video_lengths == pixel_values_videos.shape[1]).all():
            raise ValueError(f"The decoder trains on clips of one length; got video_lengths={video_lengths.tolist()}.")
        with torch.no_grad():
            vtok = self.vtok_model.model.get_vtok_tokens(pixel_values_videos, video_lengths)
        return {"loss": self.decoder.training_loss(pixel_values_videos.transpose(1, 2), vtok.tokens)}


def video_only_collator(processor):
    def collate(examples):
        return processor.video_processor(videos=[example["video"] for example in examples], return_tensors="pt")

    return collate


def dump_rank_weights(model: nn.Module, output_dir: Path) -> None:
    rank = int(os.environ.get("RANK", "0"))
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    save_file(state, str(output_dir / f"rank{rank}_weights.safetensors"))


def main(argv=None):
    args = parse_args(argv)
    logging.set_verbosity_info()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    train = load_vtok_shapes("train", num_samples=args.num_train_samples, num_frames=args.num_frames, image_size=args.image_size)
    if args.max_shapes is not None:
        train = train.filter(lambda n: n <= args.max_shapes, input_columns="num_shapes")
    if args.stage == "decoder" or args.resume:
        model = VTokForConditionalGeneration.from_pretrained(output_dir / "model")
        processor = VTokProcessor.from_pretrained(output_dir / "processor")
    else:
        texts = list(train["caption"]) + list(train["question"]) + list(train["answer"])
        model, processor = build_model_and_processor(args, texts)
        fit_feature_statistics(model, processor, train)
    if args.freeze_video_tokenizer:
        model.model.video_tokenizer.requires_grad_(False)

    if args.stage in ("vtok", "all"):
        trainer = VTokTrainer(
            model=model,
            args=training_arguments(args, output_dir / "trainer_vtok", args.steps, args.learning_rate, args.gradient_checkpointing),
            train_dataset=training_examples(train, args),
            data_collator=VTokDataCollator(processor),
        )
        trainer.train()
        if args.dump_rank_weights:
            dump_rank_weights(trainer.model, output_dir)
        if trainer.is_world_process_zero():
            model.save_pretrained(output_dir / "model")
            processor.save_pretrained(output_dir / "processor")
            history_name = "vtok_resumed_log_history.json" if args.resume else "vtok_log_history.json"
            (output_dir / history_name).write_text(json.dumps(trainer.state.log_history, indent=1))

    if args.stage in ("decoder", "all"):
        decoder = VTokVideoDecoder.from_model_config(model.config, sample_size=args.image_size, **SIZES[args.size]["decoder"])
        trainer = Trainer(
            model=DecoderTrainingModule(decoder, model),
            args=training_arguments(args, output_dir / "trainer_decoder", args.decoder_steps, args.decoder_learning_rate),
            train_dataset=training_examples(train, args),
            data_collator=video_only_collator(processor),
        )
        trainer.train()
        if trainer.is_world_process_zero():
            pipeline = VTokTextToVideoPipeline(
                model=model.eval(), processor=processor, decoder=decoder.eval(), scheduler=FlowMatchEulerDiscreteScheduler()
            )
            pipeline.save_pretrained(output_dir)
            (output_dir / "decoder_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    logger.info(f"Saved to {output_dir}")


if __name__ == "__main__":
    main()
