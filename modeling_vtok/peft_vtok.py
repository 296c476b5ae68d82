"""LoRA presets for VTok models (peft).

The paper freezes the vision encoder; finetuning adapts the LLM. The presets therefore put LoRA on
the language model's attention and MLP projections only, never on the vision encoder unless
asked, and can fully train the small VTok-specific modules (g_phi, projector, heads) through
`modules_to_save`. Understanding and generation get separate named adapters so one base model
can switch between them with `set_adapter`.
"""

import os
from pathlib import Path

from .import_utils import require
from .modeling_vtok import VTokForConditionalGeneration

require("peft", "VTok's LoRA presets")
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402

# Projection names shared by Qwen2, Llama, Mistral and most causal LMs in transformers.
LLM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VISION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # SigLIP / CLIP encoder layers

# The named adapters of `add_vtok_adapters`, the first one active.
ADAPTER_NAMES = ("understanding", "generation")

# What each preset trains fully next to the LoRA matrices.
PRESET_MODULES_TO_SAVE = {
    "llm": [],
    "llm+tokenizer": ["residual_mlp", "multi_modal_projector"],
    "llm+tokenizer+heads": ["residual_mlp", "multi_modal_projector", "visual_head"],
}


def vtok_lora_config(
    preset: str = "llm",
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    include_vision_encoder: bool = False,
    **kwargs,
) -> LoraConfig:
    """A `LoraConfig` for a [`VTokForConditionalGeneration`].

    preset (`str`): `"llm"` (LoRA on the LLM only), `"llm+tokenizer"` (also fully trains the
        residual MLP g_phi and the projector), `"llm+tokenizer+heads"` (also the visual head,
        for generation adapters).
    include_vision_encoder (`bool`): also put LoRA on the vision encoder's projections.
    Other keyword arguments go to `LoraConfig`.
    """
    if preset not in PRESET_MODULES_TO_SAVE:
        raise ValueError(f"Unknown LoRA preset {preset!r}. Has to be one of {list(PRESET_MODULES_TO_SAVE)}.")
    targets = [rf"model\.language_model\.layers\.\d+\.\w+\.({'|'.join(LLM_PROJECTIONS)})"]
    if include_vision_encoder:
        # encoder layers only: a pooling head (SigLIP's) is not part of F, its adapters would never train
        targets.append(rf"model\.video_tokenizer\.vision_tower\.(.+\.)?encoder\.layers\.\d+\..+\.({'|'.join(VISION_PROJECTIONS)})")
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules="|".join(f"({t})" for t in targets),
        modules_to_save=PRESET_MODULES_TO_SAVE[preset] or None,
        **kwargs,
    )


def add_vtok_adapters(
    model: VTokForConditionalGeneration,
    understanding: LoraConfig | None = None,
    generation: LoraConfig | None = None,
) -> PeftModel:
    """Wrap `model` with two named adapters, "understanding" and "generation" (active: understanding).

    Switch with `peft_model.set_adapter("generation")`; save both with `save_pretrained` (peft writes
    each named adapter to its own subfolder) and load them back with [`load_vtok_adapters`].
    """
    peft_model = get_peft_model(model, understanding or vtok_lora_config("llm+tokenizer"), adapter_name=ADAPTER_NAMES[0])
    peft_model.add_adapter(ADAPTER_NAMES[1], generation or vtok_lora_config("llm+tokenizer+heads"))
    peft_model.set_adapter(ADAPTER_NAMES[0])
    return peft_model


def load_vtok_adapters(model: VTokForConditionalGeneration, directory: str | os.PathLike) -> PeftModel:
    """Load both adapters that `add_vtok_adapters(...).save_pretrained(directory)` wrote onto `model` (the same
    base weights), active: understanding. `PeftModel.from_pretrained(model, directory)` alone finds neither:
    peft saves named adapters in the subfolders `understanding/` and `generation/`."""
    directory = Path(directory)
    missing = [name for name in ADAPTER_NAMES if not (directory / name / "adapter_config.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{directory} holds no VTok adapter(s) {missing}: expected {directory}/<name>/adapter_config.json "
            "as written by add_vtok_adapters(...).save_pretrained."
        )
    peft_model = PeftModel.from_pretrained(model, directory / ADAPTER_NAMES[0], adapter_name=ADAPTER_NAMES[0])
    peft_model.load_adapter(directory / ADAPTER_NAMES[1], adapter_name=ADAPTER_NAMES[1])
    peft_model.set_adapter(ADAPTER_NAMES[0])
    return peft_model


__all__ = ["vtok_lora_config", "add_vtok_adapters", "load_vtok_adapters", "LLM_PROJECTIONS"]
