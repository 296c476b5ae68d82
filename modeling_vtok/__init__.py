"""VTok models: configuration, the video tokenizer, the transformers models, the diffusion decoder
and the diffusers pipeline. Importing this package registers `model_type="vtok"` with the Auto classes."""

from .configuration_vtok import VTokConfig, count_video_tokens

__all__ = ["VTokConfig", "count_video_tokens"]
