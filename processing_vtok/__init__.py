"""VTok input side: PyAV video decoding, the video processor and the processor.

Importing this package registers `VTokVideoProcessor` with `AutoVideoProcessor` and `VTokProcessor`
with `AutoProcessor` for `model_type="vtok"`.
"""

from .processing_vtok import VTokProcessor
from .text_tokenizer import train_text_tokenizer
from .video_io import load_video, write_video
from .video_processing_vtok import VTokVideoProcessor


__all__ = ["VTokProcessor", "VTokVideoProcessor", "load_video", "write_video", "train_text_tokenizer"]
