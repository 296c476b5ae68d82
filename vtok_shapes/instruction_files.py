"""VTok-Shapes written as your own data would be: MP4 clips plus a LLaVA-Video JSONL file of their questions
(docs/your_own_data.md), so `examples/train.py --train-file`, `examples/evaluate_qa.py` and the docs' code
can be tried before you have a folder of your own."""

import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from processing_vtok import write_video

from .dataset import load_vtok_shapes


def write_instruction_file(
    folder: str | os.PathLike,
    split: str = "train",
    num_samples: int | None = None,
    num_frames: int = 8,
    image_size: int = 32,
    seed: int | None = None,
    fps: float = 8,
) -> Path:
    r"""Writes the clips of a VTok-Shapes split as MP4 files, `folder/clips/<split>-<i>.mp4`, and their
    questions as `folder/<split>.jsonl` in the LLaVA-Video instruction format, one record per clip with its
    `category`. Returns the JSONL file's path.

    Args:
        folder (`str` or `os.PathLike`): Where to write (created if missing).
        split, num_samples, num_frames, image_size, seed: As [`load_vtok_shapes`].
        fps (`float`, defaults to 8): Frame rate written into the MP4 files.
    """
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = load_vtok_shapes(split, num_samples=num_samples, num_frames=num_frames, image_size=image_size, seed=seed)
    records = []
    for i, row in enumerate(tqdm(rows, desc=f"writing {split} clips")):
        video = f"clips/{split}-{i:05d}.mp4"
        write_video(folder / video, row["video"], fps=fps)
        conversations = [{"from": "human", "value": f"<video>\n{row['question']}"}, {"from": "gpt", "value": row["answer"]}]
        records.append({"id": f"{split}-{i:05d}", "video": video, "category": row["category"], "conversations": conversations})
    path = folder / f"{split}.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


__all__ = ["write_instruction_file"]
