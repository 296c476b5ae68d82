"""Reads video instruction data in the LLaVA-Video format (LLaVA-Video-178K, LLaVA-NeXT) into
understanding examples for [`VTokDataCollator`]: the format video-LLM teams already have.

A JSON list or a JSONL file (one record per line) of records such as

    {"id": "clip-7", "video": "clips/a.mp4", "category": "direction",
     "conversations": [{"from": "human", "value": "<video>\\nWhich way does the patch move?"},
                       {"from": "gpt", "value": "left"},
                       {"from": "human", "value": "Is the background noisy?"},
                       {"from": "gpt", "value": "yes"}]}

- `video`: a path relative to the file's folder (or to `video_folder`), or absolute.
- `conversations`: human and gpt turns alternating, human first, gpt last. The first human turn holds
  the one video tag, `<video>` or LLaVA's `<image>` (LLaVA-Video-178K writes it for videos too). As in
  LLaVA's preprocessing, the tag is taken out and the video goes first in that turn.
- `id`, `category` (per-category accuracy) and `data_source` are optional and kept.

Multi-turn: each (question, answer) turn pair becomes one example, with the earlier turns as its
`context`. Why not one example labelling every answer: each answer is then learned and scored with
exactly the chat it is asked in, which is also how evaluation asks it, one question at a time; the
price is that a video of k turn pairs is encoded k times, small for the 1-3 pairs of QA data.
"""

import json
import os
import re
from pathlib import Path

from modeling_vtok.import_utils import require

VIDEO_TAGS = ("<video>", "<image>")
RECORD_KEYS = ("id", "video", "conversations", "category", "data_source")
ROLES = ("human", "gpt")

_TAG = re.compile(r"\s*(?:" + "|".join(re.escape(tag) for tag in VIDEO_TAGS) + r")\s*")


def _read_records(path: Path) -> list[tuple[str, object]]:
    """`(where, record)` pairs of a JSON list or a JSONL file; `where` names the file and the line or entry."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}.") from None
        return [(f"{path}, entry {i}", record) for i, record in enumerate(records)]
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                pairs.append((f"{path}, line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number} is not a JSON record: {error}. A JSONL file holds one record per line.") from None
    return pairs


def _turn_pairs(where: str, conversations) -> list[tuple[str, str]]:
    """The (question, answer) pairs of a conversation, the video tag taken out of the first question."""
    if not isinstance(conversations, list) or len(conversations) < 2 or len(conversations) % 2:
        raise ValueError(
            f"{where}: `conversations` must be a list of turns, human and gpt alternating, human first and gpt "
            f"last; got {conversations!r:.200}."
        )
    for i, turn in enumerate(conversations):
        expected = ROLES[i % 2]
        if not isinstance(turn, dict) or set(turn) != {"from", "value"} or not isinstance(turn["value"], str):
            raise ValueError(f'{where}: turn {i} must be {{"from": "{expected}", "value": "<text>"}}, got {turn!r:.200}.')
        if turn["from"] != expected:
            raise ValueError(
                f"{where}: turn {i} is from {turn['from']!r} but must be from {expected!r} (human and gpt alternate, human first)."
            )
    texts = [turn["value"] for turn in conversations]
    num_tags = [len(_TAG.findall(text)) for text in texts]
    if num_tags[0] != 1 or sum(num_tags) != 1:
        raise ValueError(
            f"{where}: the first human turn must hold the video tag ({' or '.join(VIDEO_TAGS)}) once, and no other "
            f"turn any; found {num_tags[0]} in the first human turn and {sum(num_tags) - num_tags[0]} in later turns."
        )
    texts[0] = _TAG.sub(" ", texts[0]).strip()
    return list(zip(texts[0::2], texts[1::2]))


def instruction_examples(records, video_folder: str | os.PathLike) -> list[dict]:
    """Understanding examples (`video`, `question`, `answer`, `context`, `id`, `category`) of LLaVA-Video
    `(where, record)` pairs, one per (question, answer) turn pair; relative video paths are joined to
    `video_folder`. Raises on the first malformed record, naming it."""
    examples = []
    for where, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: a record must be a JSON object, got {type(record).__name__}.")
        unknown = sorted(set(record) - set(RECORD_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}. A record has {list(RECORD_KEYS)}; rename or remove the others.")
        missing = [key for key in ("video", "conversations") if key not in record]
        if missing:
            raise ValueError(f"{where}: missing {missing}; every record needs `video` and `conversations`.")
        video = Path(video_folder, record["video"])
        if not video.is_file():
            raise FileNotFoundError(
                f"{where}: video file {video} does not exist. Relative paths are read from {video_folder}; "
                "pass `video_folder` (train.py / evaluate_qa.py: --video-folder) if yours start elsewhere."
            )
        shared = {"video": str(video), "id": None if record.get("id") is None else str(record["id"]), "category": record.get("category")}
        context = []
        for question, answer in _turn_pairs(where, record["conversations"]):
            examples.append({**shared, "question": question, "answer": answer, "context": list(context)})
            context += [question, answer]
    return examples


def load_instruction_data(path: str | os.PathLike, video_folder: str | os.PathLike | None = None):
    """Loads a LLaVA-Video JSON / JSONL file, or a `datasets` folder (`Dataset.save_to_disk`), as a
    `datasets.Dataset` for [`VTokDataCollator`].

    A folder whose rows have `conversations` is read as the files are (relative video paths from the
    folder); any other folder is returned as it is, its rows taken to be collator examples already
    (`video` with `question` and `answer`, or `caption`). `video_folder` defaults to the file's folder.
    """
    require("datasets", "load_instruction_data")
    from datasets import Dataset, DatasetDict, load_from_disk

    path = Path(path)
    if path.is_dir():
        dataset = load_from_disk(str(path))
        if isinstance(dataset, DatasetDict):
            raise ValueError(f"{path} holds the splits {list(dataset)}; pass one split's folder, e.g. {path / next(iter(dataset))}.")
        if "conversations" not in dataset.column_names:
            return dataset
        # Arrow gives every row every column: a key missing from a record reads as None.
        records = [(f"{path}, row {i}", {k: v for k, v in row.items() if v is not None}) for i, row in enumerate(dataset)]
        folder = path
    elif path.is_file():
        records, folder = _read_records(path), path.parent
    else:
        raise FileNotFoundError(f"No data file or dataset folder at {path}.")
    examples = instruction_examples(records, video_folder or folder)
    if not examples:
        raise ValueError(f"{path} holds no records.")
    return Dataset.from_list(examples)


__all__ = ["load_instruction_data", "instruction_examples"]
