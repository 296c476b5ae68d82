"""The clips a text-to-video pipeline draws for VTok-Shapes' prompts, as what is judged: the example
(`examples/evaluate_shapes.py`) and the benchmark (`benchmarks/tv_align_shapes.py`) score the same clips."""

import numpy as np
import torch
from tqdm.auto import tqdm


def draw_prompted_clips(pipeline, prompts, num_frames: int, num_inference_steps: int, seed: int = 0,
                        desc: str = "generating and reconstructing") -> dict[str, np.ndarray]:  # fmt: skip
    """Two clips per prompt (`text_to_video_clips` items), each of `num_frames` frames, as 8-bit frames
    `(prompts, T, H, W, 3)`: what a video file holds, so that clips kept on disk are judged exactly as
    they were when drawn.

    - `"generated"`: from the prompt's caption through `pipeline` (the LLM writes the tokens), noise from `seed`;
    - `"reconstructed"`: the prompt's true clip through `pipeline.reconstruct` (its own tokens, no LLM), noise
      from a second generator of `seed`. This is the decoder's ceiling: what generation reaches if the LLM
      wrote the true tokens, so a low generation score can be told to be the LLM's or the decoder's."""
    generators = {kind: torch.Generator().manual_seed(seed) for kind in ("generated", "reconstructed")}
    clips = {kind: [] for kind in generators}
    for prompt in tqdm(prompts, desc=desc):
        clips["generated"].append(pipeline(prompt["caption"], num_frames=num_frames, num_inference_steps=num_inference_steps,
                                           generator=generators["generated"], output_type="np").frames[0])  # fmt: skip
        clips["reconstructed"].append(pipeline.reconstruct(prompt["video"], num_frames=num_frames, num_inference_steps=num_inference_steps,
                                                           generator=generators["reconstructed"], output_type="np").frames[0])  # fmt: skip
    return {kind: np.round(np.clip(np.stack(frames), 0.0, 1.0) * 255).astype(np.uint8) for kind, frames in clips.items()}
