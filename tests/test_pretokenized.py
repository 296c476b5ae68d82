"""Training from stored VTok tokens (`video_embeds`): same loss as from pixels, no vision encoder pass."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_script, tiny_stack
from processing_vtok import VTokDataCollator
from vtok_cli.checkpoint import BUNDLED_MODEL


def clips(num_frames_per_clip):
    generator = np.random.default_rng(0)
    return [generator.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8) for n in num_frames_per_clip]


def stored_tokens(model, processor, video):
    """What `vtok tokenize-corpus` stores for one video: its VTok tokens `(num_video_tokens, token_dim)`."""
    inputs = processor.video_processor([video], return_tensors="pt")
    with torch.no_grad():
        vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"])
    return vtok.tokens[vtok.mask].numpy().tolist(), int(inputs["video_lengths"][0])


@pytest.fixture(scope="module")
def stack():
    torch.manual_seed(0)
    model, processor = tiny_stack(temporal_stride=2, key_frame_pool_size=2)
    return model, processor


@pytest.fixture(scope="module")
def examples(stack):
    """Understanding and generation examples of different lengths, as pixels and as stored tokens."""
    model, processor = stack
    videos = clips([5, 3, 4])
    rows = [
        {"question": "which way does the circle move ?", "answer": "left"},
        {"caption": "a red circle moves left"},
        {"question": "how many shapes are there ?", "answer": "two", "context": ["describe the video", "a blue square moves right"]},
    ]
    from_pixels = [{**row, "video": video} for row, video in zip(rows, videos)]
    from_tokens = []
    for row, video in zip(rows, videos):
        tokens, num_frames = stored_tokens(model, processor, video)
        from_tokens.append({**row, "video_tokens": tokens, "num_frames": num_frames})
    return from_pixels, from_tokens


def count_vision_calls(model):
    calls = []
    handle = model.model.video_tokenizer.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


def test_stored_tokens_give_the_loss_of_pixels_without_running_the_vision_encoder(stack, examples):
    model, processor = stack
    from_pixels, from_tokens = examples
    collator = VTokDataCollator(processor)
    pixel_batch, token_batch = collator(from_pixels), collator(from_tokens)
    assert "pixel_values_videos" not in token_batch and token_batch["video_embeds"].shape == (3, 4 + 2, 32)
    assert torch.equal(pixel_batch["input_ids"], token_batch["input_ids"])
    assert torch.equal(pixel_batch["labels"], token_batch["labels"])
    assert torch.equal(pixel_batch["video_lengths"], token_batch["video_lengths"])

    calls, handle = count_vision_calls(model)
    try:
        with torch.no_grad():
            from_pixels_out = model(**pixel_batch)
            pixel_calls = len(calls)
            from_tokens_out = model(**token_batch)
    finally:
        handle.remove()
    assert pixel_calls > 0 and len(calls) == pixel_calls  # the token batch did not run the vision tower
    assert from_tokens_out.visual_loss is not None and from_tokens_out.text_loss is not None
    torch.testing.assert_close(from_tokens_out.text_loss, from_pixels_out.text_loss)
    torch.testing.assert_close(from_tokens_out.visual_loss, from_pixels_out.visual_loss)
    torch.testing.assert_close(from_tokens_out.loss, from_pixels_out.loss)


def test_stored_tokens_give_the_gradients_of_pixels_on_the_llm(stack, examples):
    model, processor = stack
    collator = VTokDataCollator(processor)
    gradients = []
    for batch in (collator(examples[0]), collator(examples[1])):
        model.zero_grad()
        model(**batch).loss.backward()
        gradients.append(model.model.multi_modal_projector.linear_1.weight.grad.clone())
    model.zero_grad()
    torch.testing.assert_close(gradients[1], gradients[0])


def test_training_from_tokens_warns_that_the_video_tokenizer_gets_no_gradient(stack, examples, caplog):
    model, processor = stack
    batch = VTokDataCollator(processor)(examples[1])
    model.train()
    try:
        from transformers.utils import logging

        logging.enable_propagation()
        with caplog.at_level("WARNING"):
            model(**batch)
    finally:
        model.eval()
    assert "its trainable parameters get no gradient" in caplog.text


def test_video_embeds_errors(stack, examples):
    model, processor = stack
    collator = VTokDataCollator(processor)
    pixels, tokens = collator(examples[0][:1]), collator(examples[1][:1])
    with pytest.raises(ValueError, match="at most one of pixel_values_videos or video_embeds"):
        model(input_ids=pixels["input_ids"], pixel_values_videos=pixels["pixel_values_videos"], video_lengths=pixels["video_lengths"], video_embeds=tokens["video_embeds"])
    with pytest.raises(ValueError, match="`video_embeds` needs `video_lengths`"):
        model(input_ids=tokens["input_ids"], video_embeds=tokens["video_embeds"])
    with pytest.raises(ValueError, match=r"token_dim=32"):
        model(input_ids=tokens["input_ids"], video_embeds=tokens["video_embeds"][..., :16], video_lengths=tokens["video_lengths"])
    with pytest.raises(ValueError, match=r"holds 7 tokens per video, but videos of video_lengths=\[5\] frames have \[6\]"):
        padded = torch.nn.functional.pad(tokens["video_embeds"], (0, 0, 0, 1))
        model(input_ids=tokens["input_ids"], video_embeds=padded, video_lengths=tokens["video_lengths"])


def test_collator_rejects_bad_pretokenized_examples(stack, examples):
    _, processor = stack
    collator = VTokDataCollator(processor)
    from_pixels, from_tokens = examples
    with pytest.raises(ValueError, match="mixes examples with `video`"):
        collator([from_pixels[0], from_tokens[1]])
    with pytest.raises(ValueError, match=r"do not fit num_frames=3: the processor expects \(5, token_dim\)"):
        collator([{**from_tokens[0], "num_frames": 3}])
    without_frames = {key: value for key, value in from_tokens[0].items() if key != "num_frames"}
    with pytest.raises(ValueError, match="needs `num_frames`"):
        collator([without_frames])


def test_benchmark_quick_run_writes_its_json(tmp_path):
    benchmark = load_script("benchmarks/pretokenized_training.py")
    output = tmp_path / "result.json"
    report = benchmark.main(["--quick", "--output", str(output)])
    assert json.loads(output.read_text()) == report
    assert not Path(report["model"]).is_absolute() and Path(report["model"]).resolve() == BUNDLED_MODEL
    assert report["num_video_tokens"] == 16 + 3 and report["batch_size"] == 2
    for name in ("pixels", "stored_tokens"):
        assert set(report["results"][name]) == {"collate_seconds", "model_step_seconds", "total_seconds"}
        assert all(seconds > 0 for seconds in report["results"][name].values())
