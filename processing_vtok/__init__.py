"""VTok input side: PyAV video decoding, the video processor, the processor, the training collator and a
locally trained text tokenizer.

Importing this package (or `modeling_vtok`: each imports the other) registers `model_type="vtok"` with
every Auto class: `AutoConfig`, `AutoModel`, `AutoModelForImageTextToText`, `AutoVideoProcessor`,
`AutoProcessor`.
"""

from .collator import VTokDataCollator
from .processing_vtok import VTokProcessor
from .text_tokenizer import train_text_tokenizer
from .video_io import VTokVideoError, load_video, write_video
from .video_processing_vtok import VTokVideoProcessor


__all__ = [
    "VTokProcessor",
    "VTokVideoProcessor",
    "VTokDataCollator",
    "VTokVideoError",
    "load_video",
    "write_video",
    "train_text_tokenizer",
]
