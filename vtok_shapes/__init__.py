"""VTok-Shapes: the procedural toy world the bundled model was trained on (coloured shapes moving on
black), its model-free judge of generated clips and its QA metric. Not part of the core install:
`pip install "vtok[train]"` brings `datasets` and `evaluate`. See docs/dataset.md."""

from .dataset import load_vtok_shapes, render_videos, text_to_video_clips
from .judge import detect_colour_motion
from .metrics import load_vtok_accuracy


__all__ = ["load_vtok_shapes", "render_videos", "text_to_video_clips", "detect_colour_motion", "load_vtok_accuracy"]
