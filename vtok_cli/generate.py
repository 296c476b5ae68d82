"""`vtok generate "prompt" -o out.mp4`: a video from text with the VTok text-to-video pipeline."""

from pathlib import Path

from .checkpoint import add_model_argument, model_folder


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name, help="generate a video from text", description="Generate a video from a text prompt with the VTok pipeline and save it as MP4."
    )
    parser.add_argument("prompt", help="the text prompt, in quotes")
    parser.add_argument("-o", "--out", required=True, metavar="FILE", help="the video file to write (.mp4)")
    add_model_argument(parser)
    parser.add_argument("--num-frames", type=int, default=8, metavar="N", help="frames to generate (default: %(default)s)")
    parser.add_argument("--num-inference-steps", type=int, metavar="N", help="denoising steps (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=4, help="frame rate of the written video (default: %(default)s)")


def run(args) -> None:
    import numpy as np
    import torch

    from modeling_vtok import VTokTextToVideoPipeline
    from processing_vtok import write_video

    if not args.prompt.strip():
        raise ValueError("The prompt is empty.")
    if args.num_frames < 1:
        raise ValueError(f"--num-frames must be >= 1, got {args.num_frames}.")
    folder = model_folder(args.model)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"--model {folder} is not a pipeline folder (no model_index.json); generation needs the decoder too.")
    pipeline = VTokTextToVideoPipeline.from_pretrained(folder)
    steps = {} if args.num_inference_steps is None else {"num_inference_steps": args.num_inference_steps}
    frames = pipeline(
        args.prompt, num_frames=args.num_frames, generator=torch.Generator().manual_seed(args.seed), output_type="np", **steps
    ).frames[0]  # (num_frames, height, width, 3) in [0, 1]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_video(args.out, (np.asarray(frames) * 255).round().astype(np.uint8), fps=args.fps)
    print(f"Wrote {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]} to {args.out}")
