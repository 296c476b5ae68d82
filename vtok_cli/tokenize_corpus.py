"""`vtok tokenize-corpus DIR_OR_GLOB --out DATASET_DIR`: the VTok tokens of every video of a corpus, stored
once as a `datasets` dataset, so training reads tokens instead of running the vision encoder.

DATASET_DIR holds
- `data/train-r<rank>-<chunk>.arrow`: Arrow shards, one per finished chunk of files (written under a temporary
  name, then renamed: a shard is there whole or not at all). Columns: `path`, `video_tokens`
  `(num_video_tokens, token_dim)` float32, `num_frames`, `frame_indices`, `frame_timestamps` (seconds),
  `num_video_tokens`, `frame_sampling_tokens`. Load them all with
  `datasets.load_dataset("arrow", data_files="DATASET_DIR/data/*.arrow", split="train")`.
- `skipped/r<rank>-<chunk>.jsonl` and `skipped.txt`: the files that could not be read, with the reason.
- `vtok_corpus.json`: the model and sampling the tokens were made with; a rerun with other settings is refused.

Resuming: a rerun skips every file already in a shard or in the skipped lists, so an interrupted run
continues without redoing finished files or duplicating rows. Within a chunk, `--num-proc` worker
processes share the files (`Dataset.map(num_proc=...)`). Under `accelerate launch`, rank r of n takes
every n-th file and writes its own shards; shards of several machines merge by copying their `data/`
and `skipped/` folders into one DATASET_DIR (names never collide) and rerunning the command there.
"""

import glob
import importlib.util
import json
import os
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from .checkpoint import VideoTokens, add_model_argument, add_sampling_arguments, load_model_and_processor, model_folder, tokenize_video

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".gif"}
SETTINGS_FILE = "vtok_corpus.json"
SKIPPED_FILE = "skipped.txt"


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="tokenize a video corpus into a datasets dataset (resumable)",
        description="Tokenize every video of a folder (recursively, by video file suffix) or a glob pattern into a "
        "datasets dataset of VTok tokens plus metadata. Resumable; unreadable files are skipped and listed; "
        "--num-proc worker processes, and one shard per rank under `accelerate launch`.",
    )
    parser.add_argument("source", metavar="DIR_OR_GLOB", help="a folder of videos, or a quoted glob pattern such as 'clips/**/*.mp4'")
    parser.add_argument("--out", required=True, metavar="DATASET_DIR", help="the dataset folder (created, or resumed)")
    add_model_argument(parser)
    add_sampling_arguments(parser)
    parser.add_argument("--num-proc", type=int, default=1, metavar="N", help="worker processes per rank (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=64, metavar="N", help="files per shard, the unit of resumption (default: %(default)s)")


def find_videos(source: str) -> list[str]:
    """The corpus' files, sorted, as absolute paths: video suffixes under a folder, or every file a glob matches."""
    if os.path.isdir(source):
        files = [path for path in Path(source).rglob("*") if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES]
    else:
        files = [Path(path) for path in glob.glob(source, recursive=True) if os.path.isfile(path)]
    if not files:
        kind = "video files (" + ", ".join(sorted(VIDEO_SUFFIXES)) + ")" if os.path.isdir(source) else "files"
        raise FileNotFoundError(f"{source}: no {kind} found.")
    return sorted(str(path.resolve()) for path in files)


# One model per worker process, loaded on first use (`Dataset.map` workers start without one).
_LOADED = {}


def _tokenize_batch(batch: dict, model_dir: str, device: str, num_frames, fps) -> dict:
    """`Dataset.map` function: a batch of paths -> their rows; an unreadable file gets an `error` instead."""
    import numpy as np
    import torch

    from processing_vtok import VTokVideoError

    if (model_dir, device) not in _LOADED:
        _LOADED[(model_dir, device)] = load_model_and_processor(model_dir, device)
    model, processor = _LOADED[(model_dir, device)]
    rows = defaultdict(list)
    for path in batch["path"]:
        try:
            result, error = tokenize_video(model, processor, path, num_frames=num_frames, fps=fps), None
        except VTokVideoError as exception:  # listed as skipped; the row is dropped before writing
            empty = np.zeros((0, model.config.vision_config.hidden_size), dtype=np.float32)
            result, error = VideoTokens(tokens=torch.from_numpy(empty), num_frames=0, frame_indices=[], frame_timestamps=[], frame_sampling_tokens=0), str(exception)
        row = {"path": path, "video_tokens": result.tokens.numpy(), "num_video_tokens": len(result.tokens), "error": error}
        row.update({column: getattr(result, column) for column in ("num_frames", "frame_indices", "frame_timestamps", "frame_sampling_tokens")})
        for column, value in row.items():
            rows[column].append(value)
    return dict(rows)


def corpus_features(token_dim: int, with_error: bool = False):
    """The dataset's columns (`with_error`: plus the `error` of a skipped file, during tokenization)."""
    from datasets import Array2D, Features, List, Value

    features = {
        "path": Value("string"),
        "video_tokens": Array2D(shape=(None, token_dim), dtype="float32"),
        "num_frames": Value("int32"),
        "frame_indices": List(Value("int64")),
        "frame_timestamps": List(Value("float64")),
        "num_video_tokens": Value("int32"),
        "frame_sampling_tokens": Value("int32"),
    }
    return Features({**features, "error": Value("string")} if with_error else features)


def check_settings(out: Path, settings: dict) -> None:
    """Write the run's settings, or refuse to mix tokens of other settings into an existing dataset."""
    path = out / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != settings:
            raise ValueError(
                f"{out} holds tokens made with {saved}, not {settings}. Resume with the same --model, --num-frames "
                "and --fps, or write to another --out."
            )
    else:
        path.write_text(json.dumps(settings, indent=2))


def finished_files(out: Path) -> set[str]:
    """Paths already in a shard or listed as skipped, by any rank."""
    from datasets import Dataset

    done = set()
    for shard in sorted((out / "data").glob("*.arrow")):
        done.update(Dataset.from_file(str(shard))["path"])
    for listing in sorted((out / "skipped").glob("*.jsonl")):
        done.update(json.loads(line)["path"] for line in listing.read_text().splitlines() if line)
    return done


def unused_chunk_name(out: Path, rank: int) -> str:
    """`r<rank>-<n>` for the first n that no shard or skipped list of this rank uses yet (earlier runs included)."""
    n = 0
    while (out / "data" / f"train-r{rank:03d}-{n:05d}.arrow").exists() or (out / "skipped" / f"r{rank:03d}-{n:05d}.jsonl").exists():
        n += 1
    return f"r{rank:03d}-{n:05d}"


def write_atomically(path: Path, write) -> None:
    """`write(temporary_path)`, then rename: an interruption never leaves a partial file under `path`."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def write_chunk(out: Path, name: str, table, features) -> int:
    """The chunk's skipped files to `skipped/<name>.jsonl`, then its tokens to `data/train-<name>.arrow`.
    Skipped files are recorded first, so an interruption in between redoes only readable files. Returns
    the number of rows written."""
    from datasets.arrow_writer import ArrowWriter

    failed = table.filter(lambda row: row["error"] is not None)
    good = table.filter(lambda row: row["error"] is None).remove_columns("error")
    if len(failed):
        lines = "".join(json.dumps({"path": row["path"], "error": row["error"]}) + "\n" for row in failed)
        write_atomically(out / "skipped" / f"{name}.jsonl", lambda path: path.write_text(lines))
    if len(good):
        good = good.flatten_indices()  # the filtered rows themselves, not an index into the chunk

        def write_arrow(path):
            with ArrowWriter(path=str(path), features=features) as writer:
                writer.write_table(good.data.table)
                writer.finalize()

        write_atomically(out / "data" / f"train-{name}.arrow", write_arrow)
    return len(good)


def run(args) -> None:
    import torch

    from modeling_vtok.import_utils import require

    require("datasets", "vtok tokenize-corpus")
    import datasets
    from datasets import Dataset

    if args.num_proc < 1 or args.chunk_size < 1:
        raise ValueError(f"--num-proc and --chunk-size must be >= 1, got {args.num_proc} and {args.chunk_size}.")
    rank, world_size, device, barrier = distributed_state()
    if args.num_proc > 1 and torch.device(device).type != "cpu":
        raise ValueError(f"--num-proc {args.num_proc} forks CPU workers; on {device} run one process per GPU with `accelerate launch` instead.")
    files = find_videos(args.source)
    model_dir = str(model_folder(args.model).resolve())
    from transformers import AutoConfig

    from modeling_vtok.training_vtok import vtok_checkpoint_folders

    config = AutoConfig.from_pretrained(vtok_checkpoint_folders(model_dir)[0])  # the token width, before any worker loads the model
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "skipped").mkdir(exist_ok=True)
    settings = {"model": model_dir, "num_frames": args.num_frames, "fps": args.fps}
    if rank == 0:
        check_settings(out, settings)
    barrier()
    if rank != 0:
        check_settings(out, settings)

    done = finished_files(out)
    mine = [path for path in files[rank::world_size] if path not in done]
    features = corpus_features(config.vision_config.hidden_size)
    datasets.disable_progress_bars()  # one bar per rank, over files
    progress = tqdm(total=len(mine), desc=f"Tokenizing (rank {rank})" if world_size > 1 else "Tokenizing", unit="video")
    written = 0
    for start in range(0, len(mine), args.chunk_size):
        chunk = mine[start : start + args.chunk_size]
        table = Dataset.from_dict({"path": chunk}).map(
            _tokenize_batch,
            batched=True,
            batch_size=1,
            num_proc=min(args.num_proc, len(chunk)) if args.num_proc > 1 else None,
            features=corpus_features(config.vision_config.hidden_size, with_error=True),
            fn_kwargs={"model_dir": model_dir, "device": str(device), "num_frames": args.num_frames, "fps": args.fps},
        )
        written += write_chunk(out, unused_chunk_name(out, rank), table, features)
        progress.update(len(chunk))
    progress.close()
    barrier()
    if rank == 0:
        report(out, files, written)


def report(out: Path, files: list[str], written: int) -> None:
    """Print what the dataset holds and rewrite `skipped.txt` from every rank's skipped lists."""
    skipped = [json.loads(line) for listing in sorted((out / "skipped").glob("*.jsonl")) for line in listing.read_text().splitlines() if line]
    (out / SKIPPED_FILE).write_text("".join(f"{entry['path']}\t{entry['error']}\n" for entry in skipped))
    num_rows = len(finished_files(out)) - len({entry["path"] for entry in skipped})
    print(f"{num_rows} videos tokenized in {out / 'data'} ({written} in this process's run), {len(skipped)} skipped.")
    for entry in skipped:
        print(f"skipped {entry['path']}: {entry['error']}")
    if skipped:
        print(f"The skipped files are listed in {out / SKIPPED_FILE}.")
    missing = set(files) - finished_files(out)
    if missing:
        print(f"{len(missing)} files of the corpus are not tokenized yet (another rank or machine still working); rerun to finish.")


def distributed_state():
    """`(rank, world_size, device, barrier)` from accelerate: the launched processes under `accelerate launch`,
    else one process on the GPU if there is one."""
    if importlib.util.find_spec("accelerate") is None:  # accelerate is the train extra, as datasets
        return 0, 1, "cpu", lambda: None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # without cpu=True, CPU ranks each think they are alone
    return state.process_index, state.num_processes, state.device, state.wait_for_everyone
