"""LLaVA-Video instruction files (processing_vtok/instruction_data.py) and multi-turn examples in the collator."""

import json

import numpy as np
import pytest
import torch

from conftest import tiny_stack
from processing_vtok import write_video
from processing_vtok.collator import VTokDataCollator
from processing_vtok.instruction_data import load_instruction_data

QUESTION = "which way does the patch move ?"
LONG_ANSWER = "a black and white checkerboard patch over grey noise"


def patch_clip(direction: str, seed: int, num_frames: int = 6, size: int = 32) -> np.ndarray:
    """Not VTok-Shapes: uniform noise with an 8x8 checkerboard patch crossing it left or right at a steady pace."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
    patch = (np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((2, 2), np.uint8)) * 255)[..., None]
    xs = np.linspace(2, size - 10, num_frames).round().astype(int)
    y = int(rng.integers(2, size - 10))
    for t, x in enumerate(xs if direction == "right" else xs[::-1]):
        frames[t, y : y + 8, x : x + 8] = patch
    return frames


def record(video: str, direction: str, index: int, multi_turn: bool = False) -> dict:
    conversations = [{"from": "human", "value": f"<video>\n{QUESTION}"}, {"from": "gpt", "value": direction}]
    if multi_turn:
        conversations += [{"from": "human", "value": "what moves ?"}, {"from": "gpt", "value": LONG_ANSWER}]
    return {"id": f"clip-{index}", "video": video, "conversations": conversations, "category": "direction"}


def write_patch_task(folder, num_train: int = 8, num_test: int = 4) -> tuple:
    """MP4 clips under `folder/clips`, `train.jsonl` (one two-turn record) and `test.json` (a JSON list),
    video paths relative to the files. Returns the two paths."""
    (folder / "clips").mkdir(parents=True)
    records = []
    for i in range(num_train + num_test):
        direction = ("left", "right")[i % 2]
        write_video(folder / "clips" / f"{i:02d}.mp4", patch_clip(direction, seed=i), fps=6)
        records.append(record(f"clips/{i:02d}.mp4", direction, i, multi_turn=i in (0, num_train)))
    train, test = folder / "train.jsonl", folder / "test.json"
    train.write_text("".join(json.dumps(r) + "\n" for r in records[:num_train]))
    test.write_text(json.dumps(records[num_train:]))
    return train, test


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture
def empty_videos(tmp_path):
    """Files that exist (the loader checks paths; it never decodes)."""
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "clips" / name).touch()
    return tmp_path


def test_jsonl_and_json_give_one_example_per_turn_pair_with_paths_from_the_file(empty_videos):
    records = [record("clips/a.mp4", "left", 0, multi_turn=True), record("clips/b.mp4", "right", 1)]
    records[1]["conversations"][0]["value"] = f"{QUESTION} <image>"  # LLaVA-Video-178K's tag, at the end
    jsonl = load_instruction_data(write_jsonl(empty_videos / "data.jsonl", records))
    (empty_videos / "data.json").write_text(json.dumps(records))
    assert load_instruction_data(empty_videos / "data.json").to_list() == jsonl.to_list()
    assert jsonl.to_list() == [
        {"video": str(empty_videos / "clips/a.mp4"), "question": QUESTION, "answer": "left", "context": [],
         "id": "clip-0", "category": "direction"},
        {"video": str(empty_videos / "clips/a.mp4"), "question": "what moves ?", "answer": LONG_ANSWER,
         "context": [QUESTION, "left"], "id": "clip-0", "category": "direction"},
        {"video": str(empty_videos / "clips/b.mp4"), "question": QUESTION, "answer": "right", "context": [],
         "id": "clip-1", "category": "direction"},
    ]  # fmt: skip
    elsewhere = empty_videos / "lists"
    elsewhere.mkdir()
    moved = load_instruction_data(write_jsonl(elsewhere / "data.jsonl", records), video_folder=empty_videos)
    assert moved["video"] == jsonl["video"]


def test_a_datasets_folder_is_read_like_a_file_or_taken_as_collator_rows(empty_videos):
    from datasets import Dataset, DatasetDict

    llava = Dataset.from_list([record("clips/a.mp4", "left", 0), {**record("clips/b.mp4", "right", 1), "category": None}])
    llava.save_to_disk(empty_videos / "llava")
    (empty_videos / "llava" / "clips").symlink_to(empty_videos / "clips")  # paths start from the folder
    loaded = load_instruction_data(empty_videos / "llava")
    assert loaded["answer"] == ["left", "right"] and loaded["category"] == ["direction", None]
    assert loaded["video"][0] == str(empty_videos / "llava" / "clips" / "a.mp4")
    rows = Dataset.from_list([{"video": "x.mp4", "question": "q", "answer": "a"}])
    rows.save_to_disk(empty_videos / "rows")
    assert load_instruction_data(empty_videos / "rows").to_list() == rows.to_list()
    DatasetDict({"train": rows, "test": rows}).save_to_disk(empty_videos / "splits")
    with pytest.raises(ValueError, match=r"holds the splits \['train', 'test'\]; pass one split's folder"):
        load_instruction_data(empty_videos / "splits")


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda r: r.update(video="clips/missing.mp4"), FileNotFoundError, r"line 2: video file .*clips/missing.mp4 does not exist"),
        (lambda r: r.update(vid="a.mp4"), ValueError, r"line 2: unknown keys \['vid'\]"),
        (lambda r: r.pop("conversations"), ValueError, r"line 2: missing \['conversations'\]"),
        (lambda r: r["conversations"].reverse(), ValueError, r"line 2: turn 0 is from 'gpt' but must be from 'human'"),
        (lambda r: r["conversations"].pop(), ValueError, r"line 2: `conversations` must be a list of turns, human and gpt alternating"),
        (lambda r: r["conversations"][1].update(role="gpt"), ValueError, r'line 2: turn 1 must be \{"from": "gpt", "value": "<text>"\}'),
        (lambda r: r["conversations"][0].update(value=QUESTION), ValueError,
         r"line 2: the first human turn must hold the video tag \(<video> or <image>\) once.*found 0"),
        (lambda r: r["conversations"][1].update(value="<video> left"), ValueError, r"found 1 in the first human turn and 1 in later turns"),
    ],
)  # fmt: skip
def test_bad_records_raise_naming_the_line_and_the_problem(empty_videos, change, error, message):
    bad = record("clips/b.mp4", "right", 1)
    change(bad)
    path = write_jsonl(empty_videos / "data.jsonl", [record("clips/a.mp4", "left", 0), bad])
    with pytest.raises(error, match=message):
        load_instruction_data(path)


def test_unreadable_files_raise_naming_the_file(empty_videos):
    (empty_videos / "broken.jsonl").write_text('{"video": "clips/a.mp4"}\n{"video": \n')
    with pytest.raises(ValueError, match=r"broken.jsonl, line 2 is not a JSON record"):
        load_instruction_data(empty_videos / "broken.jsonl")
    with pytest.raises(FileNotFoundError, match="No data file or dataset folder at"):
        load_instruction_data(empty_videos / "nothing.jsonl")


def test_collator_labels_only_the_last_answer_of_a_multi_turn_example(tmp_path):
    _, processor = tiny_stack()
    processor.video_processor.num_frames = 4
    video = write_video(tmp_path / "clip.mp4", patch_clip("left", seed=0), fps=6)
    (first, second) = load_instruction_data(write_jsonl(tmp_path / "d.jsonl", [record("clip.mp4", "left", 0, multi_turn=True)]))
    assert first["video"] == second["video"] == video
    batch = VTokDataCollator(processor)([first, second])
    tokenizer = processor.tokenizer
    for row, answer in enumerate(["left", LONG_ANSWER]):
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert labelled == tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    text = tokenizer.decode(batch["input_ids"][1][batch["input_ids"][1] != processor.video_token_id])
    # The video opens the first user turn; the earlier answer is context, then the new question.
    assert text.index("<vid_start>") < text.index(QUESTION) < text.index("left") < text.index("what moves ?")
    assert int((batch["input_ids"] == processor.video_token_id).sum(dim=1)[1]) == processor.num_video_tokens(4)
    with pytest.raises(ValueError, match=r"`context` must hold whole earlier turn pairs, user first .* got 1 turns"):
        VTokDataCollator(processor)([{**first, "context": ["only a question"]}])
    assert torch.equal(batch["videos_to_generate"], torch.tensor([False, False]))
