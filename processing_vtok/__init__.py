"""VTok input side: PyAV video decoding, the video processor and the processor.

Importing this package registers `VTokVideoProcessor` with `AutoVideoProcessor` and `VTokProcessor`
with `AutoProcessor` for `model_type="vtok"`.
"""

from .collator import VTokDataCollator
from .metrics import load_vtok_accuracy
from .motion_detector import detect_colour_motion
from .processing_vtok import VTokProcessor
from .shapes_dataset import load_vtok_shapes
from .text_tokenizer import train_text_tokenizer
from .video_io import load_video, write_video
from .video_processing_vtok import VTokVideoProcessor


__all__ = [
    "VTokProcessor",
    "VTokVideoProcessor",
    "VTokDataCollator",
    "load_video",
    "write_video",
    "train_text_tokenizer",
    "load_vtok_shapes",
    "load_vtok_accuracy",
    "detect_colour_motion",
]
