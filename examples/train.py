"""Train a VTok model (or the frame-sampling baseline) with `transformers.Trainer` on your videos or on
VTok-Shapes, then (VTok-Shapes) its diffusion decoder.

Stage "vtok": the LLM, the residual MLP g_phi and the projector learn understanding and
generation together, `L = L_under + lambda_visLM * L_visLM` (both terms are logged).
Stage "decoder": the diffusion decoder learns to render the (now frozen) VTok tokens.
The result is a folder with `model/` and `processor/` (loadable by `AutoModelForImageTextToText` /
`AutoProcessor`); after the decoder stage also a diffusers-style pipeline folder that
`VTokTextToVideoPipeline.from_pretrained` loads.

Data: `--train-file` / `--eval-file` take a JSON or JSONL file in the LLaVA-Video instruction format, or
a `datasets` folder (`processing_vtok.instruction_data`, docs/your_own_data.md); without them the model
trains on VTok-Shapes. The reusable parts are library calls (`modeling_vtok.training_vtok`, and
`vtok_shapes.dataset.training_examples` for the VTok-Shapes mix).

    python examples/train.py --size tiny --steps 20 --decoder-steps 20 --output-dir runs/tiny
    python examples/train.py --train-file data/train.jsonl --eval-file data/test.jsonl \
        --video-tokenization frames --num-frames 8 --steps 500 --output-dir runs/frames
    torchrun --nproc_per_node 2 examples/train.py --size tiny --steps 2 --stage vtok --output-dir runs/ddp
    accelerate launch --config_file examples/accelerate/fsdp.yaml examples/train.py --model DIR --stage vtok ...
"""

import argparse
import json
import os
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file
from torch import nn
from transformers import Trainer
from transformers.utils import logging

from modeling_vtok import VTokTextToVideoPipeline, VTokVideoDecoder
from modeling_vtok.trainer_vtok import VTokTrainer
from modeling_vtok.training_vtok import (
    MODEL_SIZES,
    VTokDecoderTrainingModule,
    build_vtok_model,
    example_texts,
    load_vtok_model,
    predicted_token_ids,
    qa_compute_metrics,
    video_only_collator,
    vtok_training_arguments,
)
from processing_vtok.collator import VTokDataCollator
from processing_vtok.instruction_data import load_instruction_data
from vtok_shapes.dataset import load_vtok_shapes, training_examples

logger = logging.get_logger("vtok.train")

DEFAULT_NUM_FRAMES = 8
# The token layout of a new model; a --model checkpoint brings its own.
LAYOUT_OPTIONS = ("video_tokenization", "key_frame_pool_size", "temporal_stride")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-file", default=None, help="LLaVA-Video JSON/JSONL file or datasets folder (default: VTok-Shapes)")
    parser.add_argument("--eval-file", default=None, help="same format; scored after training (exact match, per category)")
    parser.add_argument("--video-folder", default=None, help="folder the files' video paths start from (default: each file's folder)")
    parser.add_argument("--model", default=None, help="start from this checkpoint (pipeline folder or model+processor folder) instead of a new model")
    parser.add_argument("--size", choices=sorted(MODEL_SIZES), default="tiny", help="preset of a new model")
    parser.add_argument("--video-tokenization", choices=["vtok", "frames"], default=None, help="new model: VTok tokens (default) or the frame-sampling baseline")
    parser.add_argument("--key-frame-pool-size", type=int, default=None, help="new model: side of the pooled key-frame grid (default: the size preset's)")
    parser.add_argument("--temporal-stride", type=int, default=None, help="new model: later frames per residual token (default 1)")
    parser.add_argument("--stage", choices=["vtok", "decoder", "all"], default=None,
                        help="default: all on VTok-Shapes with VTok tokens, vtok otherwise (a decoder renders VTok tokens from text-to-video data)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps of the VTok (LLM) stage")
    parser.add_argument("--decoder-steps", type=int, default=200, help="optimizer steps of the decoder stage")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--num-train-samples", type=int, default=2000, help="VTok-Shapes training clips")
    parser.add_argument("--generation-repeats", type=int, default=2, help="how often each canonical text-to-video clip is seen per epoch (0: understanding only)")
    parser.add_argument("--max-shapes", type=int, default=None, help="train only on clips with at most this many shapes (a curriculum step)")
    parser.add_argument("--num-frames", type=int, default=None,
                        help=f"frames sampled per video, saved in the processor (default: the --model's, else {DEFAULT_NUM_FRAMES})")
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
        parser.error("--generation-repeats must be >= 0 and --max-shapes >= 1")
    for name in ("steps", "decoder_steps", "num_train_samples", "batch_size", "num_frames"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.model and args.resume:
        parser.error("--resume continues OUTPUT_DIR/model; pass either --model or --resume")
    if args.stage is None:
        on_shapes = args.train_file is None and args.video_tokenization in (None, "vtok")
        args.stage = "all" if on_shapes else "vtok"
    if args.stage != "vtok" and args.video_tokenization == "frames":
        parser.error(f"--stage {args.stage} trains a decoder of VTok tokens; the frames baseline has none: use --stage vtok")
    return args


def load_checkpoint(args):
    """The checkpoint to continue (--model, --resume, the decoder stage) and its processor, checked
    against the layout options, its processor sampling --num-frames (default: its own, else 8);
    `(None, None)` when a new model is trained."""
    checkpoint = args.model or (args.output_dir if args.resume or args.stage == "decoder" else None)
    if checkpoint is None:
        return None, None
    model, processor = load_vtok_model(checkpoint)
    for name in LAYOUT_OPTIONS:
        wanted, saved = getattr(args, name), getattr(model.config, name)
        if wanted is not None and wanted != saved:
            raise SystemExit(
                f"--{name.replace('_', '-')} {wanted} disagrees with the checkpoint {checkpoint}, which has {name}={saved}: "
                "the token layout is part of a trained model. Leave the option out, or train a new model."
            )
    saved_frames = processor.video_processor.num_frames
    if args.num_frames is not None and saved_frames is not None and args.num_frames != saved_frames:
        logger.warning(
            f"Training {checkpoint} on {args.num_frames} frames per video where its processor says {saved_frames}; "
            f"the processor saved with the result will say {args.num_frames}."
        )
    processor.video_processor.num_frames = args.num_frames or saved_frames or DEFAULT_NUM_FRAMES
    return model, processor


def check_engine(trainer: Trainer, stage: str) -> None:
    """Says when the `accelerate launch` config asked for an engine this run does not use, and stops a sharded
    run (FSDP, DeepSpeed) that would train the decoder: only the VTok stage is written for sharded weights."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not trainer.is_fsdp_enabled:
        logger.warning(
            "The accelerate config asks for FSDP, but accelerate enables FSDP on GPUs (and other accelerators) only: "
            "this CPU run trains with plain data parallelism (DDP)."
        )
    if (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled) and stage != "vtok":
        raise SystemExit(
            f"--stage {stage} under FSDP or DeepSpeed: the decoder stage is not written for sharded weights. Run "
            "--stage vtok with the sharded engine, then --stage decoder under DDP (examples/accelerate/ddp.yaml) or one process."
        )


def save_model(trainer: Trainer, model: nn.Module, output_dir: Path) -> None:
    """`model.save_pretrained` with the full weights: every process joins the gather of sharded weights
    (FSDP, DeepSpeed ZeRO-3; `Accelerator.get_state_dict`), rank 0 writes them."""
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if trainer.is_world_process_zero():
        model.save_pretrained(output_dir, state_dict=state_dict)


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

    model, processor = load_checkpoint(args)
    num_frames = processor.video_processor.num_frames if processor is not None else args.num_frames or DEFAULT_NUM_FRAMES
    if args.train_file:
        train = load_instruction_data(args.train_file, args.video_folder)
        examples = train
    else:
        train = load_vtok_shapes("train", num_samples=args.num_train_samples, num_frames=num_frames, image_size=args.image_size)
        if args.max_shapes is not None:
            train = train.filter(lambda n: n <= args.max_shapes, input_columns="num_shapes")
        examples = training_examples(train, num_frames, image_size=args.image_size, generation_repeats=args.generation_repeats)
    if model is None:
        layout = {name: getattr(args, name) for name in LAYOUT_OPTIONS if getattr(args, name) is not None}
        model, processor = build_vtok_model(
            example_texts(train), size=args.size, image_size=args.image_size, num_frames=num_frames,
            train_vision_encoder=args.train_vision_encoder, **layout,
        )  # fmt: skip
    if args.freeze_video_tokenizer:
        model.model.video_tokenizer.requires_grad_(False)
    schedule = dict(per_device_train_batch_size=args.batch_size, logging_steps=args.logging_steps, seed=args.seed)

    if args.stage in ("vtok", "all"):
        evaluation = {}
        if args.eval_file:
            eval_dataset = load_instruction_data(args.eval_file, args.video_folder)
            categories = eval_dataset["category"] if "category" in eval_dataset.column_names else None
            evaluation = dict(eval_dataset=eval_dataset, compute_metrics=qa_compute_metrics(processor.tokenizer, categories),
                              preprocess_logits_for_metrics=predicted_token_ids)  # fmt: skip
        trainer = VTokTrainer(
            model=model,
            args=vtok_training_arguments(output_dir / "trainer_vtok", args.steps, learning_rate=args.learning_rate,
                                         activation_checkpointing=args.gradient_checkpointing, **schedule),  # fmt: skip
            train_dataset=examples,
            data_collator=VTokDataCollator(processor),
            **evaluation,
        )
        check_engine(trainer, args.stage)
        trainer.train()  # VTokTrainer fits a new model's feature statistics first
        if args.eval_file:
            trainer.evaluate()  # logged, and kept in the log history
        if args.dump_rank_weights:
            dump_rank_weights(trainer.model, output_dir)
        save_model(trainer, model, output_dir / "model")
        if trainer.is_world_process_zero():
            processor.save_pretrained(output_dir / "processor")
            history_name = "vtok_resumed_log_history.json" if args.resume else "vtok_log_history.json"
            (output_dir / history_name).write_text(json.dumps(trainer.state.log_history, indent=1))

    if args.stage in ("decoder", "all"):
        decoder = VTokVideoDecoder.from_model_config(model.config, sample_size=args.image_size, **MODEL_SIZES[args.size]["decoder"])
        trainer = Trainer(
            model=VTokDecoderTrainingModule(decoder, model),
            args=vtok_training_arguments(output_dir / "trainer_decoder", args.decoder_steps, learning_rate=args.decoder_learning_rate,
                                         **schedule),  # fmt: skip
            train_dataset=examples,
            data_collator=video_only_collator(processor),
        )
        check_engine(trainer, args.stage)
        trainer.train()
        if trainer.is_world_process_zero():
            pipeline = VTokTextToVideoPipeline(
                model=model.eval(), processor=processor, decoder=decoder.eval(), scheduler=FlowMatchEulerDiscreteScheduler()
            )
            pipeline.save_pretrained(output_dir)
            (output_dir / "decoder_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    # Every process waits for rank 0's writes, then leaves the process group: a process that exits with its
    # gloo/NCCL group alive can abort in the group's threads ("terminate called without an active exception").
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    logger.info(f"Saved to {output_dir}")


if __name__ == "__main__":
    main()
