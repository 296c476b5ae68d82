"""The bundled default model: loads through the Auto classes and the pipeline, answers, generates."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from conftest import load_script
from modeling_vtok import VTokForConditionalGeneration, VTokTextToVideoPipeline
from processing_vtok import VTokDataCollator, VTokProcessor
from vtok_shapes import detect_colour_motion, load_vtok_shapes
from vtok_shapes.dataset import CATEGORIES, text_to_video_clips
from vtok_shapes.pipeline_clips import draw_prompted_clips

CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "vtok-tiny-shapes"


@pytest.fixture(scope="module")
def model_and_processor():
    model = AutoModelForImageTextToText.from_pretrained(CHECKPOINT / "model").eval()
    processor = AutoProcessor.from_pretrained(CHECKPOINT / "processor")
    return model, processor


def test_checkpoint_is_small_and_safetensors_only():
    files = [f for f in CHECKPOINT.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 30 * 2**20
    assert any(f.suffix == ".safetensors" for f in files)
    assert not any(f.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"} for f in files)


def test_loads_through_auto_classes(model_and_processor):
    model, processor = model_and_processor
    assert isinstance(model, VTokForConditionalGeneration) and isinstance(processor, VTokProcessor)
    assert processor.num_video_tokens(8) == model.config.num_video_tokens(8) == 16 + 7


def test_answers_the_direction_question_of_a_fixed_test_clip(model_and_processor):
    model, processor = model_and_processor
    test = load_vtok_shapes("test", num_samples=8)
    clip = next(test[i] for i in range(len(test)) if test[i]["category"] == "direction")
    messages = [{"role": "user", "content": [{"type": "video", "video": clip["video"]}, {"type": "text", "text": clip["question"]}]}]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    answer = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0].strip()
    assert answer == clip["answer"], (clip["question"], answer, clip["answer"])


@pytest.fixture(scope="module")
def pipeline():
    return VTokTextToVideoPipeline.from_pretrained(CHECKPOINT)


def test_pipeline_generates_frames_of_the_documented_shape(pipeline):
    frames = pipeline("a red circle moving right", num_frames=8, num_inference_steps=4,
                      generator=torch.Generator().manual_seed(0), output_type="np").frames
    assert frames.shape == (1, 8, 32, 32, 3)
    assert frames.dtype == np.float32 and 0 <= frames.min() and frames.max() <= 1


def test_direction_answers_beat_chance_on_the_test_split(model_and_processor):
    """Skill, not luck of one clip: 20 direction questions of the test split (chance: 25%)."""
    model, processor = model_and_processor
    test = load_vtok_shapes("test", num_samples=140)
    clips = [test[i] for i in range(len(test)) if test[i]["category"] == "direction"]
    prompts = [VTokDataCollator(processor).prompt({**clip, "task": "understanding"}) for clip in clips]
    inputs = processor(text=prompts, videos=[clip["video"] for clip in clips], padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    answers = [a.strip() for a in processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)]
    correct = sum(answer == clip["answer"] for answer, clip in zip(answers, clips))
    assert len(clips) == 20 and correct >= 12, list(zip(answers, [clip["answer"] for clip in clips]))


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_generated_clip_moves_as_prompted(pipeline, direction):
    frames = pipeline(f"a green circle moving {direction}", num_frames=8, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    assert detect_colour_motion(frames, "green") == direction


def test_quickstart_runs_end_to_end(tmp_path):
    """README's main command: the quickstart answers, generates an MP4 and a GIF, and prints the token costs."""
    script = CHECKPOINT.parent.parent / "examples/quickstart.py"
    result = subprocess.run([sys.executable, str(script), "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [line for line in result.stdout.splitlines() if line.strip().startswith("Q:")]
    assert len(answers) == 3 and all("A: " in line and "(truth: " in line for line in answers)
    for name in ("sample_clip.mp4", "generated.mp4", "generated.gif"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "8 frames: VTok    23 LLM tokens, frame sampling    128 (5.6x)" in result.stdout


def test_evaluate_shapes_judges_generated_and_reconstructed_clips(tmp_path):
    """examples/evaluate_shapes.py on the bundled model at a small size: understanding per category, and every
    check of the judge for the clips generated from the prompts and reconstructed from the true clips' tokens,
    with the overlap per frame agreeing with the judge's own first-frame, last-frame and mean overlaps."""
    script = CHECKPOINT.parent.parent / "examples/evaluate_shapes.py"
    output = tmp_path / "eval.json"
    args = ["--num-samples", "14", "--num-prompts", "3", "--num-inference-steps", "2", "--output", str(output)]
    result = subprocess.run([sys.executable, str(script), str(CHECKPOINT), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    assert set(results["understanding"]["test"]) == {"accuracy", *(f"accuracy/{c}" for c in CATEGORIES)}
    for split in ("train", "heldout"):
        generation = results["generation"][split]
        assert generation["num_prompts"] == 3 and generation["num_inference_steps"] == 2
        for kind in ("generated", "reconstructed"):
            scores = generation[kind]
            assert {"all_right", "shape_right", "track_error", "iou_with_prompted_clip"} <= set(scores["checks"])
            assert len(scores["iou_per_frame"]) == 8
            # (the judge rounds each clip's overlaps, the per-frame curve the means: they agree to the rounding)
            assert scores["iou_per_frame"][0] == pytest.approx(scores["checks"]["iou_first_frame"], abs=1e-3)
            assert scores["iou_per_frame"][-1] == pytest.approx(scores["checks"]["iou_last_frame"], abs=1e-3)
            assert np.mean(scores["iou_per_frame"]) == pytest.approx(scores["checks"]["iou_with_prompted_clip"], abs=1e-3)
    # the true clips' own tokens keep the motion: the decoder draws every reconstructed clip moving as it should
    assert results["generation"]["train"]["reconstructed"]["checks"]["colour_moves_as_prompted"] == 1.0


def test_evaluate_shapes_refuses_no_prompts(capsys):
    evaluate_shapes = load_script("examples/evaluate_shapes.py")
    with pytest.raises(SystemExit):
        evaluate_shapes.main([str(CHECKPOINT), "--num-prompts", "0"])
    assert "--num-prompts must be >= 1" in capsys.readouterr().err


def test_prompted_clips_are_the_pipelines_frames_in_8_bit():
    """`draw_prompted_clips` (what the example and the benchmark judge): per prompt, the pipeline's generated clip
    and the reconstruction of the prompt's true clip, each from its own generator of the seed, as 8-bit frames
    equal to the pipeline's own float frames rounded; the same seed draws the same clips."""
    pipeline = VTokTextToVideoPipeline.from_pretrained(CHECKPOINT)
    pipeline.set_progress_bar_config(disable=True)
    prompts = list(text_to_video_clips("train", num_frames=8))[:2]
    clips = draw_prompted_clips(pipeline, prompts, num_frames=8, num_inference_steps=1, seed=3)
    assert {kind: (c.shape, c.dtype) for kind, c in clips.items()} == {kind: ((2, 8, 32, 32, 3), np.uint8) for kind in ("generated", "reconstructed")}
    generator = torch.Generator().manual_seed(3)
    first = pipeline(prompts[0]["caption"], num_frames=8, num_inference_steps=1, generator=generator, output_type="np").frames[0]
    np.testing.assert_array_equal(clips["generated"][0], np.round(np.clip(first, 0, 1) * 255).astype(np.uint8))
    generator = torch.Generator().manual_seed(3)
    true_first = pipeline.reconstruct(prompts[0]["video"], num_frames=8, num_inference_steps=1, generator=generator, output_type="np").frames[0]
    np.testing.assert_array_equal(clips["reconstructed"][0], np.round(np.clip(true_first, 0, 1) * 255).astype(np.uint8))
    again = draw_prompted_clips(pipeline, prompts, num_frames=8, num_inference_steps=1, seed=3)
    assert all(np.array_equal(again[kind], clips[kind]) for kind in clips)
