"""LoRA adapters on a VTok pipeline, with diffusers' method names: `pipe.load_lora_weights(folder,
adapter_name=...)`, `pipe.set_adapters(...)`, `pipe.unload_lora_weights()`.

A generation adapter adapts the pipeline's transformers `model` (the LLM that writes VTok tokens), as
saved by peft's `save_pretrained` of [`vtok_lora_config`]'s presets. It is loaded into the model in place
with transformers' `PreTrainedModel.load_adapter` and switched with peft's integration functions
(`peft.functional`). diffusers' `LoraBaseMixin` is not used: its helpers for a transformers component
switch and remove LoRA layers only, while our generation preset also trains whole modules
(`modules_to_save`: g_phi, the projector, the visual head), so they would leave those adapted.
transformers' own `set_adapter` / `delete_adapter` would handle them, but 5.24 refuses them below
peft 0.22 (the newest peft available here is 0.21).
"""

import os
from pathlib import Path

from .import_utils import require


class VTokLoraLoaderMixin:
    """Loads, switches and removes LoRA adapters of the pipeline's `model` (diffusers' method names)."""

    _lora_loadable_modules = ["model"]

    def load_lora_weights(self, pretrained_model_name_or_path: str | os.PathLike, adapter_name: str | None = None, **kwargs):
        r"""
        Load a peft adapter folder into `model`, in place, and make it the active adapter.

        pretrained_model_name_or_path (`str` or `os.PathLike`):
            A folder holding `adapter_config.json` and `adapter_model.safetensors`, as written by
            `get_peft_model(model, vtok_lora_config(...)).save_pretrained(folder)`; for
            `add_vtok_adapters(...).save_pretrained(folder)`, the named adapter's subfolder (`folder/generation`).
        adapter_name (`str`, *optional*):
            The name to switch to it by; `default_<n>` (diffusers' naming) when `None`.
        kwargs:
            Go to transformers' `PreTrainedModel.load_adapter`.
        """
        require("peft", "load_lora_weights")
        from diffusers.utils.peft_utils import get_adapter_name

        if self.model is None:
            raise ValueError("This pipeline has no `model` to load a LoRA adapter into.")
        folder = Path(pretrained_model_name_or_path)
        if not (folder / "adapter_config.json").is_file():
            adapters_inside = sorted(p.parent.name for p in folder.glob("*/adapter_config.json"))
            raise ValueError(
                f"{folder} is not a peft adapter folder: it has no adapter_config.json (written by a peft model's "
                "save_pretrained)."
                + (f" It holds the named adapters {adapters_inside}: pass {folder}/<name>." if adapters_inside else "")
            )
        adapter_name = adapter_name or get_adapter_name(self.model)
        if adapter_name in getattr(self.model, "peft_config", {}):
            raise ValueError(
                f"An adapter named {adapter_name!r} is already loaded; pass another `adapter_name` or call "
                "unload_lora_weights() first."
            )
        self.model.load_adapter(str(folder), adapter_name=adapter_name, **kwargs)
        self.set_adapters(adapter_name)

    def get_list_adapters(self) -> dict[str, list[str]]:
        """The loaded adapters per component: `{"model": [names]}`, or `{}` when none is loaded."""
        names = list(getattr(self.model, "peft_config", {}))
        return {"model": names} if names else {}

    def set_adapters(self, adapter_names: str | list[str]) -> None:
        """Make these loaded adapters the active ones. LoRA layers sum several; a module an adapter trains
        whole (`modules_to_save`) can follow only one, so peft refuses two adapters that both train it."""
        require("peft", "set_adapters")
        from peft.functional import set_adapter

        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        loaded = self.get_list_adapters().get("model", [])
        missing = [name for name in names if name not in loaded]
        if missing:
            raise ValueError(f"Adapter(s) {missing} are not loaded; loaded adapters: {loaded}.")
        set_adapter(self.model, names, inference_mode=True)

    def unload_lora_weights(self) -> None:
        """Remove every adapter from `model`: each adapted module goes back to the original module, with its
        original weights (nothing merged), so the pipeline gives the frames it gave before loading."""
        if not self.get_list_adapters():
            return
        from peft.tuners.tuners_utils import BaseTunerLayer
        from peft.utils import AuxiliaryTrainingWrapper

        model = self.model
        for name, module in list(model.named_modules()):
            if isinstance(module, BaseTunerLayer):
                original = module.get_base_layer()
            elif isinstance(module, AuxiliaryTrainingWrapper):  # modules_to_save: the untouched original
                original = module.original_module
            else:
                continue
            parent_name, _, child_name = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child_name, original)
        del model.peft_config
        model._hf_peft_config_loaded = False


__all__ = ["VTokLoraLoaderMixin"]
