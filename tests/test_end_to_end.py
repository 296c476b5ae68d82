"""Processor and model together: chat template -> generate, counts agree, collator labels."""

import numpy as np
import pytest
import torch

from conftest import tiny_stack
from processing_vtok import write_video
from processing_vtok.collator import VTokDataCollator


def moving_square(num_frames: int = 6) -> np.ndarray:
    frames = np.zeros((num_frames, 32, 32, 3), np.uint8)
    for t in range(num_frames):
        frames[t, 10:18, 2 + 3 * t : 10 + 3 * t] = (255, 0, 0)
    return frames


@pytest.mark.parametrize("overrides", [{}, {"temporal_stride": 2}, {"video_tokenization": "frames"}])
def test_generate_from_chat_template_on_a_video_file(tmp_path, overrides):
    model, processor = tiny_stack(**overrides)
    path = write_video(tmp_path / "clip.mp4", moving_square(6), fps=6)
    messages = [{"role": "user", "content": [{"type": "video", "video": str(path)}, {"type": "text", "text": "which way does the circle move ?"}]}]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=5)
    placeholders = int((inputs["input_ids"] == model.config.video_token_id).sum())
    assert inputs["video_lengths"].tolist() == [5]
    assert placeholders == processor.num_video_tokens(5) == model.config.num_video_tokens(5)
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 3)
    assert isinstance(processor.batch_decode(out[:, inputs["input_ids"].shape[1] :])[0], str)


def test_collator_builds_labels_and_generation_targets():
    model, processor = tiny_stack()
    collator = VTokDataCollator(processor)
    examples = [
        {"task": "understanding", "video": moving_square(6), "question": "which way does the circle move ?", "answer": "right"},
        {"task": "generation", "video": moving_square(4), "caption": "a red circle moves left"},
    ]
    batch = collator(examples)
    assert batch["videos_to_generate"].tolist() == [False, True]
    answer_ids = processor.tokenizer("right" + processor.tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert labelled == answer_ids
    start_id = model.config.video_start_token_id
    assert batch["labels"][1][batch["labels"][1] != -100].tolist() == [start_id]
    assert (batch["labels"][batch["input_ids"] == model.config.video_token_id] == -100).all()
    out = model(**batch)
    assert out.text_loss is not None and out.visual_loss is not None
    torch.testing.assert_close(out.loss, out.text_loss + out.visual_loss)
    with pytest.raises(ValueError, match="Unknown task 'caption'"):
        collator([{"task": "caption", "video": moving_square(2)}])
    with pytest.raises(ValueError, match=r"needs `question` and `answer` .* it has \['label', 'video'\]"):
        collator([{"video": moving_square(2), "label": "left"}])


def test_collator_infers_the_task_from_the_columns():
    """Rows without a `task` column (a VTok-Shapes row, a plain QA row, a caption row) need no glue code."""
    _, processor = tiny_stack()
    collator = VTokDataCollator(processor)
    qa = {"video": moving_square(4), "question": "which way does the circle move ?", "answer": "right"}
    caption = {"video": moving_square(4), "caption": "a red circle moves left"}
    inferred = collator([qa, caption])
    explicit = collator([{**qa, "task": "understanding"}, {**caption, "task": "generation"}])
    assert inferred["videos_to_generate"].tolist() == [False, True]
    for key in ("input_ids", "labels", "videos_to_generate"):
        assert torch.equal(inferred[key], explicit[key])
    both = {**qa, "caption": "a red circle moves right"}  # a VTok-Shapes row has all three
    assert collator([both])["videos_to_generate"].tolist() == [False]
