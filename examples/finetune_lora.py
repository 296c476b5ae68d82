"""Finetune a trained VTok model with LoRA adapters and `Trainer` (peft).

Two named adapters share one frozen base model: "understanding" learns from question–answer
examples, "generation" from the split's canonical text-to-video clips (`text_to_video_clips`; for
"heldout" the colour–shape pairs the bundled model never trained on); `set_adapter` switches between them.
The vision encoder gets no adapter unless `--include-vision-encoder` is given.

    python examples/finetune_lora.py --model checkpoints/vtok-tiny-shapes/model \
        --processor checkpoints/vtok-tiny-shapes/processor --split heldout --steps 50 --output-dir runs/lora
"""

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, TrainingArguments

import modeling_vtok  # noqa: F401  (registers the "vtok" Auto classes)
from modeling_vtok.peft_vtok import PRESET_MODULES_TO_SAVE, add_vtok_adapters, vtok_lora_config
from modeling_vtok.trainer_vtok import VTokTrainer
from processing_vtok import VTokDataCollator
from vtok_shapes import load_vtok_shapes
from vtok_shapes.dataset import SPLITS, render_videos, text_to_video_clips


def adapter_examples(split: str, num_samples: int, adapter: str):
    """Questions about `num_samples` clips of `split`, or the split's text-to-video clips (for
    "heldout": the 16 prompts of colour–shape pairs the base model never trained on)."""
    if adapter == "generation":
        dataset = text_to_video_clips(split)
    else:
        dataset = load_vtok_shapes(split, num_samples=num_samples)
    task = "generation" if adapter == "generation" else "understanding"
    return dataset.add_column("task", [task] * len(dataset)).with_transform(render_videos)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="folder of a VTokForConditionalGeneration")
    parser.add_argument("--processor", required=True, help="folder of its VTokProcessor")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--split", choices=SPLITS, default="heldout", help="VTok-Shapes split to adapt to")
    parser.add_argument("--num-samples", type=int, default=400, help="question clips for the understanding adapter")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps per adapter")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--preset", choices=sorted(PRESET_MODULES_TO_SAVE), default="llm+tokenizer")
    parser.add_argument("--include-vision-encoder", action="store_true")
    args = parser.parse_args(argv)

    model = AutoModelForImageTextToText.from_pretrained(args.model)
    processor = AutoProcessor.from_pretrained(args.processor)
    lora = dict(r=args.rank, include_vision_encoder=args.include_vision_encoder)
    peft_model = add_vtok_adapters(
        model,
        understanding=vtok_lora_config(args.preset, **lora),
        generation=vtok_lora_config("llm+tokenizer+heads", **lora),
    )
    for adapter in ("understanding", "generation"):
        peft_model.set_adapter(adapter)
        peft_model.print_trainable_parameters()
        trainer = VTokTrainer(
            model=peft_model,
            args=TrainingArguments(
                output_dir=str(Path(args.output_dir) / f"trainer_{adapter}"),
                max_steps=args.steps,
                per_device_train_batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                logging_steps=max(1, args.steps // 10),
                save_strategy="no",
                report_to="none",
                remove_unused_columns=False,
                use_cpu=not torch.cuda.is_available(),
            ),
            train_dataset=adapter_examples(args.split, args.num_samples, adapter),
            data_collator=VTokDataCollator(processor),
        )
        trainer.train()
    peft_model.save_pretrained(args.output_dir)  # adapter_model.safetensors per adapter


if __name__ == "__main__":
    main()
