"""`model.generate` from stored VTok tokens (`video_embeds` + `video_lengths`, as `vtok tokenize-corpus` keeps
them) answers exactly as from the pixels, without running the vision encoder."""

import numpy as np
import pytest
import torch
from conftest import tiny_stack


@pytest.fixture(scope="module")
def stack():
    torch.manual_seed(0)
    return tiny_stack(temporal_stride=2, key_frame_pool_size=2)


@pytest.fixture(scope="module")
def inputs(stack):
    """Two chats about videos of 5 and 3 frames (different token counts, left padding), as the processor gives them."""
    _, processor = stack
    generator = np.random.default_rng(0)
    videos = [generator.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8) for n in (5, 3)]
    text = ["<video> which way does the circle move ?", "<video> how many shapes are there ?"]
    return processor(text=text, videos=videos, padding=True, return_tensors="pt")


def stored_tokens(model, inputs):
    """What a user has kept for the videos: their VTok tokens `(num_videos, max_num_tokens, token_dim)`."""
    with torch.no_grad():
        return model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"]).tokens


@pytest.mark.parametrize("search", [{}, {"num_beams": 2, "num_return_sequences": 2}], ids=["greedy", "beams"])
def test_generate_from_stored_tokens_gives_the_tokens_of_pixels(stack, inputs, search):
    model, _ = stack
    text = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    from_pixels = model.generate(**inputs, max_new_tokens=6, do_sample=False, **search)
    video_embeds = stored_tokens(model, inputs)
    vision_calls = []
    handle = model.model.video_tokenizer.vision_tower.register_forward_hook(lambda *args: vision_calls.append(1))
    try:
        from_tokens = model.generate(
            **text, video_embeds=video_embeds, video_lengths=inputs["video_lengths"], max_new_tokens=6, do_sample=False, **search
        )
    finally:
        handle.remove()
    assert vision_calls == []
    assert from_tokens.shape == (2 * search.get("num_return_sequences", 1), inputs["input_ids"].shape[1] + 6)
    assert torch.equal(from_tokens, from_pixels)


def test_generate_rejects_bad_stored_tokens(stack, inputs):
    model, _ = stack
    text = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "max_new_tokens": 2}
    video_embeds, video_lengths = stored_tokens(model, inputs), inputs["video_lengths"]
    with pytest.raises(ValueError, match="at most one of pixel_values_videos or video_embeds"):
        model.generate(**inputs, video_embeds=video_embeds, max_new_tokens=2)
    with pytest.raises(ValueError, match="`video_embeds` needs `video_lengths`"):
        model.generate(**text, video_embeds=video_embeds)
    with pytest.raises(ValueError, match=r"holds 7 tokens per video, but videos of video_lengths=\[5, 3\] frames have \[6, 5\]"):
        model.generate(**text, video_embeds=torch.nn.functional.pad(video_embeds, (0, 0, 0, 1)), video_lengths=video_lengths)
    with pytest.raises(ValueError, match=r"must have shape \(num_videos=2, max_num_tokens, token_dim=32\)"):
        model.generate(**text, video_embeds=video_embeds[:1], video_lengths=video_lengths)
