"""Training with Trainer (examples/train.py), activation checkpointing, LoRA finetuning, 2 processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import load_script
from test_modeling_vtok import VTokModelTester

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    return load_script(f"examples/{name}.py")


TINY_RUN = ["--size", "tiny", "--num-train-samples", "64", "--batch-size", "8", "--logging-steps", "5", "--num-frames", "4"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 20-step VTok stage (with activation checkpointing) and a 20-step decoder stage on VTok-Shapes."""
    output = tmp_path_factory.mktemp("tiny_run")
    load_example("train").main(TINY_RUN + ["--steps", "20", "--decoder-steps", "20", "--gradient-checkpointing", "--output-dir", str(output)])
    return output


def test_twenty_trainer_steps_lower_both_losses(tiny_run):
    history = [entry for entry in json.loads((tiny_run / "vtok_log_history.json").read_text()) if "text_loss" in entry]
    assert len(history) == 4
    assert history[-1]["text_loss"] < history[0]["text_loss"]
    assert history[-1]["visual_loss"] < history[0]["visual_loss"]
    decoder_history = [e["loss"] for e in json.loads((tiny_run / "decoder_log_history.json").read_text()) if "loss" in e]
    assert decoder_history[-1] < decoder_history[0]


def test_trained_folder_loads_as_pipeline_and_auto_classes(tiny_run):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from modeling_vtok import VTokTextToVideoPipeline

    pipeline = VTokTextToVideoPipeline.from_pretrained(tiny_run)
    model = AutoModelForImageTextToText.from_pretrained(tiny_run / "model")
    processor = AutoProcessor.from_pretrained(tiny_run / "processor")
    assert processor.num_video_tokens(4) == model.config.num_video_tokens(4) == 16 + 3
    frames = pipeline("a red circle moving left", num_frames=4, num_inference_steps=2, output_type="pt").frames
    assert frames.shape == (1, 4, 3, 32, 32)


def test_activation_checkpointing_gives_the_same_gradients():
    tester = VTokModelTester()
    inputs = tester.inputs(frame_counts=(4,))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = tester.model().train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.model.language_model.is_activation_checkpointing
        model(**inputs, labels=inputs["input_ids"], videos_to_generate=torch.tensor([True])).loss.backward()
        grads.append(model.model.language_model.layers[0].mlp.up_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_lora_finetuning_example_trains_two_adapters(tiny_run, tmp_path):
    load_example("finetune_lora").main([
        "--model", str(tiny_run / "model"), "--processor", str(tiny_run / "processor"), "--output-dir", str(tmp_path),
        "--num-samples", "32", "--steps", "3", "--batch-size", "4",
    ])
    for adapter in ("understanding", "generation"):
        weights = load_file(tmp_path / adapter / "adapter_model.safetensors")
        assert any("lora_" in name for name in weights) and not any("vision_tower" in name for name in weights)
    assert any("visual_head" in name for name in load_file(tmp_path / "generation" / "adapter_model.safetensors"))


def test_two_process_training_keeps_ranks_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(EXAMPLES.parent)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(EXAMPLES / "train.py"),
               *TINY_RUN, "--stage", "vtok", "--steps", "2", "--dump-rank-weights", "--output-dir", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = load_file(tmp_path / "rank0_weights.safetensors")
    rank1 = load_file(tmp_path / "rank1_weights.safetensors")
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert rank0.keys() == rank1.keys() and set(saved) <= set(rank0)
    for name, tensor in rank0.items():
        assert torch.equal(tensor, rank1[name]), name
    for name, tensor in saved.items():
        assert torch.equal(tensor, rank0[name]), name
    history = json.loads((tmp_path / "vtok_log_history.json").read_text())
    assert history[-1]["step"] == 2


def test_trainer_evaluate_gives_compute_metrics_the_logits(tmp_path):
    """Trainer.evaluate with compute_metrics and preprocess_logits_for_metrics, as users write them."""
    from transformers import TrainingArguments

    from conftest import tiny_stack
    from modeling_vtok.trainer_vtok import VTokTrainer
    from processing_vtok import VTokDataCollator
    from test_end_to_end import moving_square

    model, processor = tiny_stack()
    examples = [{"task": "understanding", "video": moving_square(4), "question": "which way does the circle move ?", "answer": "right"}] * 4
    seen = {}

    def compute_metrics(prediction):
        seen["shape"] = prediction.predictions.shape
        mask = prediction.label_ids[:, 1:] != -100
        return {"token_accuracy": float((prediction.predictions[:, :-1] == prediction.label_ids[:, 1:])[mask].mean())}

    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, report_to="none", remove_unused_columns=False, use_cpu=True)
    trainer = VTokTrainer(
        model=model, args=args, eval_dataset=examples, data_collator=VTokDataCollator(processor),
        compute_metrics=compute_metrics, preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1),
    )
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_token_accuracy"] <= 1.0 and "eval_loss" in metrics
    assert len(seen["shape"]) == 2 and seen["shape"][0] == 4  # (examples, sequence): token ids, nothing else
