"""The `vtok` console script on MP4 clips written at test time and the bundled model: each subcommand's
round trip, its `--help`, one-line errors, and a corpus run that skips a corrupt file, resumes after an
interruption without redoing or duplicating, and stores the tokens the model computes from pixels."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import vtok_cli.checkpoint
import vtok_cli.tokenize_corpus
from processing_vtok import load_video, write_video
from vtok_cli import main
from vtok_cli.checkpoint import BUNDLED_MODEL, load_model_and_processor

NUM_FRAMES = 4


@pytest.fixture(scope="module")
def bundled():
    return load_model_and_processor(None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three readable clips (one in a subfolder), a corrupt .mp4 and a text file that is not a video."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "sub").mkdir()
    generator = np.random.default_rng(0)
    clips = [folder / "a.mp4", folder / "b.mp4", folder / "sub" / "c.mp4"]
    for i, path in enumerate(clips):
        write_video(path, generator.integers(0, 256, size=(6 + i, 32, 32, 3), dtype=np.uint8), fps=4)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (folder / "notes.txt").write_text("not a video")
    return folder, [str(path.resolve()) for path in clips]


def tokens_from_pixels(model, processor, path):
    inputs = processor.video_processor([str(path)], num_frames=NUM_FRAMES, return_tensors="pt")
    with torch.no_grad():
        vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"])
    return vtok.tokens[vtok.mask]


def load_corpus(out):
    from datasets import load_dataset

    return load_dataset("arrow", data_files=str(out / "data" / "*.arrow"), split="train").with_format("torch")


@pytest.mark.parametrize("subcommand", [[], ["tokenize"], ["tokenize-corpus"], ["ask"], ["generate"]])
def test_help_of_each_subcommand(subcommand, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*subcommand, "--help"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {' '.join(['vtok', *subcommand])}")


def test_console_script_is_declared_and_python_m_runs():  # imports stay lazy: --help answers at once
    (entry_point,) = importlib.metadata.entry_points(group="console_scripts", name="vtok")
    assert entry_point.value == "vtok_cli.main:main"
    result = subprocess.run([sys.executable, "-m", "vtok_cli", "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "tokenize-corpus" in result.stdout


def test_tokenize_saves_the_tokens_the_model_computes_from_pixels(bundled, corpus, tmp_path, capsys):
    model, processor = bundled
    _, clips = corpus
    out = tmp_path / "tokens.safetensors"
    assert main(["tokenize", *clips[:2], "--num-frames", str(NUM_FRAMES), "--out", str(out)]) == 0  # bundled model by default
    num_tokens, frame_sampling = processor.num_video_tokens(NUM_FRAMES), model.config.num_key_frame_tokens * NUM_FRAMES
    assert f"{clips[0]}: {NUM_FRAMES} frames -> {num_tokens} VTok tokens (frame sampling: {frame_sampling}" in capsys.readouterr().out
    with safe_open(str(out), "pt") as saved:
        assert sorted(saved.keys()) == ["video_0", "video_1"]
        facts = json.loads(saved.metadata()["videos"])
        for i, clip in enumerate(clips[:2]):
            tokens = saved.get_tensor(f"video_{i}")
            assert tokens.shape == (num_tokens, model.config.vision_config.hidden_size)
            torch.testing.assert_close(tokens, tokens_from_pixels(model, processor, clip))
            assert facts[i]["path"] == clip and facts[i]["num_frames"] == NUM_FRAMES
            assert facts[i]["num_video_tokens"] == num_tokens and facts[i]["frame_sampling_tokens"] == frame_sampling
            assert len(facts[i]["frame_timestamps"]) == NUM_FRAMES


@pytest.mark.parametrize(
    "arguments, status, message",
    [
        (["tokenize", "missing.mp4"], 1, "vtok tokenize: error: missing.mp4: no such file."),
        (["tokenize", "{corpus}/broken.mp4"], 1, "vtok tokenize: error: Cannot read video '{corpus}/broken.mp4': not a decodable video container"),
        (["tokenize", "{corpus}/a.mp4", "--num-frames", "2", "--fps", "3"], 2, "vtok tokenize: error: argument --fps: not allowed with argument --num-frames"),
        (["tokenize", "{corpus}/a.mp4", "--num-frames", "0"], 1, "vtok tokenize: error: `num_frames` must be >= 1, got 0."),
        (["tokenize", "{corpus}/a.mp4", "--model", "{corpus}"], 1, "is not a VTok checkpoint"),
        (["tokenize-corpus", "{corpus}/*.mkv", "--out", "{corpus}/out"], 1, "vtok tokenize-corpus: error: {corpus}/*.mkv: no files found."),
        (["tokenize-corpus", "{corpus}/a.mp4", "--out", "{corpus}/out", "--model", "{corpus}"], 1, "is not a VTok checkpoint"),
        (["ask", "{corpus}/a.mp4"], 2, "vtok ask: error: the following arguments are required: question"),
        (["generate", "a red circle"], 2, "vtok generate: error: the following arguments are required: -o/--out"),
        (["frobnicate"], 2, "vtok: error: argument {tokenize,tokenize-corpus,ask,generate}: invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_status(arguments, status, message, corpus, capsys):
    folder, _ = corpus
    arguments = [argument.replace("{corpus}", str(folder)) for argument in arguments]
    try:
        code = main(arguments)
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    assert code == status
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vtok")]  # beside progress bars
    assert len(error_lines) == 1 and message.replace("{corpus}", str(folder)) in error_lines[0]


def test_missing_bundled_model_says_where_it_looked(monkeypatch, corpus, capsys):
    _, clips = corpus
    monkeypatch.setattr(vtok_cli.checkpoint, "BUNDLED_MODEL", Path("/nowhere/vtok-tiny-shapes"))
    assert main(["tokenize", clips[0]]) == 1
    assert "The bundled model was not found at /nowhere/vtok-tiny-shapes" in capsys.readouterr().err


def test_tokenize_corpus_skips_a_corrupt_file_and_stores_the_tokens_of_pixels(bundled, corpus, tmp_path, capsys):
    model, processor = bundled
    folder, clips = corpus
    out = tmp_path / "dataset"
    assert main(["tokenize-corpus", str(folder), "--out", str(out), "--num-frames", str(NUM_FRAMES)]) == 0
    printed = capsys.readouterr().out
    broken = str((folder / "broken.mp4").resolve())
    assert f"3 videos tokenized" in printed and f"skipped {broken}: " in printed
    assert [line.split("\t")[0] for line in (out / "skipped.txt").read_text().splitlines()] == [broken]

    dataset = load_corpus(out)
    assert sorted(dataset["path"]) == clips  # notes.txt is not a video suffix; broken.mp4 is skipped
    for row in dataset:
        assert row["num_frames"] == NUM_FRAMES and row["num_video_tokens"] == processor.num_video_tokens(NUM_FRAMES)
        torch.testing.assert_close(row["video_tokens"], tokens_from_pixels(model, processor, row["path"]))


def test_tokenize_corpus_resumes_after_an_interruption_without_redoing_or_duplicating(corpus, tmp_path, monkeypatch):
    folder, clips = corpus
    out = tmp_path / "dataset"
    arguments = ["tokenize-corpus", str(folder / "**" / "*.mp4"), "--out", str(out), "--num-frames", str(NUM_FRAMES), "--chunk-size", "1"]
    tokenized = []
    original = vtok_cli.tokenize_corpus.tokenize_video

    def interrupt_at_the_third_video(model, processor, path, **sampling):
        if len(tokenized) == 2:
            raise KeyboardInterrupt
        tokenized.append(path)
        return original(model, processor, path, **sampling)

    monkeypatch.setattr(vtok_cli.tokenize_corpus, "tokenize_video", interrupt_at_the_third_video)
    assert main(arguments) == 130
    first_run = list(tokenized)
    assert len(load_corpus(out)) + len(list((out / "skipped").glob("*.jsonl"))) == 2  # two chunks finished

    tokenized.clear()
    monkeypatch.setattr(vtok_cli.tokenize_corpus, "tokenize_video", lambda *args, **kwargs: tokenized.append(args[2]) or original(*args, **kwargs))
    assert main(arguments) == 0
    assert not set(tokenized) & set(first_run)  # nothing redone
    dataset = load_corpus(out)
    assert sorted(dataset["path"]) == clips  # every readable clip once
    assert main(arguments) == 0 and len(load_corpus(out)) == 3  # a third run has nothing left to do
    assert main([*arguments[:-4], "--num-frames", "3"]) == 1  # other settings are refused


def run_in_a_fresh_process(*command, timeout=600):
    """A new interpreter: worker processes forked from pytest's, whose torch thread pools are in use, can hang."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_tokenize_corpus_with_worker_processes_gives_the_rows_of_one_process(corpus, tmp_path):
    folder, _ = corpus
    common = [str(folder), "--num-frames", str(NUM_FRAMES)]
    assert main(["tokenize-corpus", *common, "--out", str(tmp_path / "one")]) == 0
    run_in_a_fresh_process(sys.executable, "-m", "vtok_cli", "tokenize-corpus", *common, "--out", str(tmp_path / "two"), "--num-proc", "2")
    one, two = load_corpus(tmp_path / "one").sort("path"), load_corpus(tmp_path / "two").sort("path")
    assert one["path"] == two["path"] and len(one) == 3
    for a, b in zip(one["video_tokens"], two["video_tokens"]):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_tokenize_corpus_with_two_ranks_writes_a_shard_per_rank(corpus, tmp_path):
    """Two CPU ranks from torchrun, which `accelerate launch` uses for several GPUs (its --cpu runs one process)."""
    folder, clips = corpus
    out = tmp_path / "dataset"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run_in_a_fresh_process(*launch, "-m", "vtok_cli", "tokenize-corpus", str(folder), "--out", str(out), "--num-frames", str(NUM_FRAMES))
    assert sorted(path.name.split("-")[1] for path in (out / "data").glob("*.arrow")) == ["r000", "r001"]
    assert sorted(load_corpus(out)["path"]) == clips


def test_ask_answers_as_the_model_does(bundled, corpus, capsys):
    model, processor = bundled
    _, clips = corpus
    question = "what color is the circle?"
    assert main(["ask", clips[0], question, "--num-frames", str(NUM_FRAMES), "--max-new-tokens", "4"]) == 0
    messages = [{"role": "user", "content": [{"type": "video", "video": clips[0]}, {"type": "text", "text": question}]}]
    inputs = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=NUM_FRAMES
    )
    expected = processor.batch_decode(model.generate(**inputs, max_new_tokens=4, do_sample=False)[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    answer = capsys.readouterr().out.strip()
    assert answer and answer == expected[0].strip()


def test_generate_writes_an_mp4(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(["generate", "a red circle moving right", "-o", str(out), "--num-frames", "4", "--num-inference-steps", "2"]) == 0
    frames, metadata = load_video(out, num_frames=4)
    assert frames.shape[0] == 4 and metadata.total_num_frames == 4
    assert f"Wrote 4 frames of {frames.shape[2]}x{frames.shape[1]} to {out}" in capsys.readouterr().out


def test_generate_needs_a_pipeline_folder(tmp_path, capsys):
    assert main(["generate", "a red circle", "-o", str(tmp_path / "x.mp4"), "--model", str(BUNDLED_MODEL / "model")]) == 1
    assert "is not a pipeline folder (no model_index.json)" in capsys.readouterr().err
