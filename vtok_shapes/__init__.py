"""VTok-Shapes: the procedural toy world the bundled model was trained on (coloured shapes moving on
black), its model-free judge of generated clips and the clips a pipeline draws for its prompts to be judged
(`pipeline_clips`), and the world written as MP4 files plus a LLaVA-Video
JSONL file, the format of your own data (its questions are scored by the library's QA metric,
`modeling_vtok.metrics_vtok`); also the turning-objects world of benchmarks/motion_turning.py (a textured
square that moves one way, then turns). Not part of the core install:
`pip install "vtok[train]"` brings `datasets` and `evaluate`. See docs/dataset.md."""

from .dataset import load_vtok_shapes, render_videos, text_to_video_clips
from .instruction_files import write_instruction_file
from .judge import detect_colour_motion
from .turning import load_turning_objects


__all__ = ["load_vtok_shapes", "render_videos", "text_to_video_clips", "detect_colour_motion", "write_instruction_file", "load_turning_objects"]
