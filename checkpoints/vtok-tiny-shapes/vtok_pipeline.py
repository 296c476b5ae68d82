"""Written by VTokTextToVideoPipeline.save_pretrained: the file diffusers loads for
`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`. It imports every code file, because
diffusers copies only the files that the module it loads imports directly."""

from .configuration_vtok import *  # noqa: F401,F403
from .decoder_vtok import *  # noqa: F401,F403
from .import_utils import *  # noqa: F401,F403
from .lora_loader_vtok import *  # noqa: F401,F403
from .modeling_vtok import *  # noqa: F401,F403
from .pipeline_vtok import *  # noqa: F401,F403
from .processing_vtok import *  # noqa: F401,F403
from .remote_code import *  # noqa: F401,F403
from .text_tokenizer import *  # noqa: F401,F403
from .token_layout import *  # noqa: F401,F403
from .tokenizer_vtok import *  # noqa: F401,F403
from .video_io import *  # noqa: F401,F403
from .video_processing_vtok import *  # noqa: F401,F403
