"""VTok models: configuration, the video tokenizer, the transformers models, the diffusion decoder
and the diffusers pipeline. Importing this package registers `model_type="vtok"` with the Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

from .configuration_vtok import VTokConfig, count_video_tokens
from .decoder_vtok import VTokVideoDecoder, VTokVideoDecoderOutput
from .modeling_vtok import (
    VTokCausalLMOutputWithPast,
    VTokForConditionalGeneration,
    VTokModel,
    VTokModelOutputWithPast,
    VTokPreTrainedModel,
)
from .pipeline_vtok import VTokPipelineOutput, VTokTextToVideoPipeline, export_video
from .tokenizer_vtok import VTokTokenizerOutput, VTokVideoTokenizer

AutoConfig.register("vtok", VTokConfig, exist_ok=True)
AutoModel.register(VTokConfig, VTokModel, exist_ok=True)
AutoModelForImageTextToText.register(VTokConfig, VTokForConditionalGeneration, exist_ok=True)

__all__ = [
    "VTokConfig",
    "count_video_tokens",
    "VTokVideoTokenizer",
    "VTokTokenizerOutput",
    "VTokPreTrainedModel",
    "VTokModel",
    "VTokForConditionalGeneration",
    "VTokModelOutputWithPast",
    "VTokCausalLMOutputWithPast",
    "VTokVideoDecoder",
    "VTokVideoDecoderOutput",
    "VTokTextToVideoPipeline",
    "VTokPipelineOutput",
    "export_video",
]
