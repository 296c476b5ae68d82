"""`vtok tokenize VIDEO... [--out FILE]`: each video's VTok tokens, what they cost against frame sampling,
saved to one safetensors file (tensor `video_<i>` for the i-th video; the per-video facts as JSON in the
file's metadata under "videos")."""

import json
from pathlib import Path

from tqdm.auto import tqdm

from .checkpoint import add_model_argument, add_sampling_arguments, load_model_and_processor, model_folder, tokenize_video


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="tokenize videos and save their VTok tokens (safetensors)",
        description="Tokenize videos with VTok: per video, the frames used, the VTok tokens and the frame-sampling "
        "token count they replace; the tokens are saved as safetensors (tensor video_<i> per video, facts in the metadata).",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    add_model_argument(parser)
    add_sampling_arguments(parser)
    parser.add_argument("--out", default="vtok_tokens.safetensors", metavar="FILE", help="where to save the tokens (default: %(default)s)")


def run(args) -> None:
    from safetensors.torch import save_file

    for video in args.videos:
        if not Path(video).is_file():
            raise FileNotFoundError(f"{video}: no such file.")
    model_dir = model_folder(args.model)
    model, processor = load_model_and_processor(model_dir)
    tensors, facts = {}, []
    for i, video in enumerate(tqdm(args.videos, desc="Tokenizing", unit="video", disable=len(args.videos) < 2)):
        result = tokenize_video(model, processor, video, num_frames=args.num_frames, fps=args.fps)
        tensors[f"video_{i}"] = result.tokens.contiguous()
        facts.append(
            {
                "path": video,
                "num_frames": result.num_frames,
                "frame_indices": result.frame_indices,
                "frame_timestamps": result.frame_timestamps,
                "num_video_tokens": len(result.tokens),
                "frame_sampling_tokens": result.frame_sampling_tokens,
            }
        )
        tqdm.write(
            f"{video}: {result.num_frames} frames -> {len(result.tokens)} VTok tokens "
            f"(frame sampling: {result.frame_sampling_tokens}, {result.frame_sampling_tokens / len(result.tokens):.1f}x more)"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, args.out, metadata={"videos": json.dumps(facts), "model": str(model_dir)})
    print(f"Saved the tokens of {len(tensors)} video(s) to {args.out}")
