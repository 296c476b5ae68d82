"""Upgrade a LLaVA-family video LLM to VTok: `python -m modeling_vtok.convert_llava_to_vtok --input_dir IN --output_dir OUT`.

IN is a `LlavaNextVideoForConditionalGeneration` or `LlavaOnevisionForConditionalGeneration` folder with its
processor. OUT is a VTok folder (model + processor) that loads with `AutoModelForImageTextToText` and
`AutoProcessor`. The vision tower, the projector, the LLM with its head and the tokenizer are reused
exactly; only the residual path (g_phi, and the `<vid_start>`/`<vid_end>` embeddings if the vocabulary has
no spare rows) is new, so it is what a short finetune trains.

The key frame is pooled as the source model pools a video frame, so that a one-frame video's input
embeddings equal the original model's:

- LLaVA-NeXT-Video average-pools the patch features by `spatial_pool_stride` *before* its projector, which
  is what VTok does (`key_frame_pooling="average"`).
- LLaVA-OneVision projects first, then halves the grid with bilinear interpolation, and appends an
  `image_newline` embedding after each video: the converted model reads videos in that form
  (`key_frame_pooling="projected_bilinear"`, `video_newline=True`, the newline copied). Such a model
  understands videos but cannot write them (VTokConfig says why). Its "frames" mode
  (`--video_tokenization frames`) embeds a whole video exactly as LLaVA-OneVision does.

Features are taken from the layer the source reads, `hidden_states[vision_feature_layer]`: for the last layer
that is before the tower's post-layernorm, so -1 becomes the layer's positive index (VTok's -1 means the
tower's output, after it).

Residual tokens carry no extra temporal embedding (`temporal_position_embedding="none"`): the sinusoidal
code of position 0 is not zero and would change the key frame's embeddings away from the source model's.
"""

import argparse
import math
import os
import sys
from pathlib import Path

from transformers import AutoConfig, AutoProcessor, LlavaNextVideoForConditionalGeneration, LlavaOnevisionForConditionalGeneration

from processing_vtok import VTokProcessor

from .modeling_vtok import VTokForConditionalGeneration


SOURCE_CLASSES = {
    "llava_next_video": LlavaNextVideoForConditionalGeneration,
    "llava_onevision": LlavaOnevisionForConditionalGeneration,
}


def key_frame_pool_size(config) -> int:
    """Side of the grid the source model pools one video frame to (see the module docstring)."""
    grid = config.vision_config.image_size // config.vision_config.patch_size
    if config.model_type == "llava_onevision":
        return math.ceil(grid / 2)
    if config.spatial_pool_mode != "average":
        raise ValueError(
            f"spatial_pool_mode={config.spatial_pool_mode!r}: VTok pools the key frame by averaging, so only "
            "LLaVA-NeXT-Video checkpoints with spatial_pool_mode='average' keep their video embeddings."
        )
    if grid % config.spatial_pool_stride != 0:
        raise ValueError(
            f"The patch grid side {grid} is not a multiple of spatial_pool_stride={config.spatial_pool_stride}; "
            "the source model's pooling drops the remainder, which VTok's adaptive pooling does not."
        )
    return grid // config.spatial_pool_stride


def source_config(input_dir: str | os.PathLike):
    """The config of a supported LLaVA video checkpoint folder, or a ValueError saying what is wrong."""
    if not (Path(input_dir) / "config.json").is_file():
        raise ValueError(f"{input_dir} is not a checkpoint folder: it has no config.json.")
    config = AutoConfig.from_pretrained(input_dir)
    if config.model_type not in SOURCE_CLASSES:
        raise ValueError(
            f"{input_dir} holds a {config.model_type!r} model; convert_llava_to_vtok converts "
            f"{' or '.join(cls.__name__ for cls in SOURCE_CLASSES.values())} checkpoints."
        )
    if not isinstance(config.vision_feature_layer, int):
        raise ValueError(
            f"vision_feature_layer={config.vision_feature_layer}: features concatenated from several layers are "
            "not supported; VTok takes one layer's features."
        )
    return config


def convert_llava_to_vtok(input_dir: str | os.PathLike, **config_overrides) -> tuple[VTokForConditionalGeneration, VTokProcessor]:
    r"""
    The VTok model and processor of a LLaVA-NeXT-Video or LLaVA-OneVision folder `input_dir` (model and processor).

    config_overrides:
        [`VTokConfig`] fields for the new model (`temporal_stride`, `residual_mlp_hidden_size`, ...). The
        key-frame pooling, feature layer and selection, projector activation and token ids come from the source.
    """
    config = source_config(input_dir)
    source = SOURCE_CLASSES[config.model_type].from_pretrained(input_dir)
    source_processor = AutoProcessor.from_pretrained(input_dir)
    tokenizer = source_processor.tokenizer
    onevision = config.model_type == "llava_onevision"
    settings = {
        "key_frame_pool_size": key_frame_pool_size(config),
        "key_frame_pooling": "projected_bilinear" if onevision else "average",
        "video_newline": onevision,
        # the source reads hidden_states[layer]; VTok's -1 is the tower's output, after its post-layernorm
        "vision_feature_layer": config.vision_config.num_hidden_layers if config.vision_feature_layer == -1 else config.vision_feature_layer,
        "vision_feature_select_strategy": config.vision_feature_select_strategy,
        "projector_hidden_act": config.projector_hidden_act,
        "multimodal_projector_bias": config.multimodal_projector_bias,
        "temporal_position_embedding": "none",
    }
    model = VTokForConditionalGeneration.from_pretrained_modules(
        source.model.vision_tower,
        source.model.language_model,
        source.lm_head,
        tokenizer,
        multi_modal_projector=source.model.multi_modal_projector,
        generation_config=source.generation_config,
        **{**settings, **config_overrides},
    )
    if onevision:
        model.model.video_newline.data.copy_(source.model.image_newline.data)

    # The frames are normalised with the checkpoint's image-processor settings, the tokenizer gets the same tokens.
    processor = VTokProcessor.from_vision_text_pretrained(input_dir, input_dir, model.config, chat_template=source_processor.chat_template)
    return model, processor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modeling_vtok.convert_llava_to_vtok",
        description="Convert a LLaVA-NeXT-Video or LLaVA-OneVision checkpoint folder (model + processor) into a VTok folder.",
    )
    parser.add_argument("--input_dir", required=True, help="the LLaVA video checkpoint folder")
    parser.add_argument("--output_dir", required=True, help="where the VTok model and processor are written")
    parser.add_argument("--temporal_stride", type=int, default=1, help="later frames per residual token (default 1)")
    parser.add_argument(
        "--video_tokenization", choices=["vtok", "frames"], default="vtok",
        help="'vtok' (default), or 'frames': every frame's tokens, the source's own video embeddings",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        model, processor = convert_llava_to_vtok(args.input_dir, temporal_stride=args.temporal_stride, video_tokenization=args.video_tokenization)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    model.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    print(
        f"Wrote a VTok model to {args.output_dir}: {model.config.num_key_frame_tokens} key-frame tokens, "
        f"{model.num_parameters():,} parameters; "
        + ("new and untrained: the residual MLP (g_phi)." if args.video_tokenization == "vtok" else "every frame read as the source reads it."),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
