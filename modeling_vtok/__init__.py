"""VTok models: configuration, the video tokenizer, the transformers models, the diffusion decoder
and the diffusers pipeline.

Importing this package (or `processing_vtok`: each imports the other) registers `model_type="vtok"`
with every Auto class: `AutoConfig`, `AutoModel`, `AutoModelForImageTextToText`, `AutoVideoProcessor`,
`AutoProcessor`; the pipeline's components then all load.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

from .configuration_vtok import VTokConfig
from .decoder_vtok import VTokVideoDecoder, VTokVideoDecoderOutput
from .modeling_vtok import (
    VTokCausalLMOutputWithPast,
    VTokForConditionalGeneration,
    VTokModel,
    VTokModelOutputWithPast,
    VTokPreTrainedModel,
)
from .pipeline_vtok import VTokPipelineOutput, VTokTextToVideoPipeline, export_video
from .token_layout import VTokTokenLayout, count_video_tokens
from .tokenizer_vtok import VTokTokenizerOutput, VTokVideoTokenizer

AutoConfig.register("vtok", VTokConfig, exist_ok=True)
AutoModel.register(VTokConfig, VTokModel, exist_ok=True)
AutoModelForImageTextToText.register(VTokConfig, VTokForConditionalGeneration, exist_ok=True)

import processing_vtok  # noqa: E402, F401  (registers the video processor and the processor)

__all__ = [
    "VTokConfig",
    "count_video_tokens",
    "VTokTokenLayout",
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
