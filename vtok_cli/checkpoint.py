"""What every subcommand shares: the model folder (`--model`, default the bundled
`checkpoints/vtok-tiny-shapes`), frame sampling (`--num-frames` or `--fps`) and turning one video file
into the VTok tokens the model computes from its pixels."""

from __future__ import annotations  # torch is imported when a command runs, so that `vtok --help` is instant

from dataclasses import dataclass
from pathlib import Path

# The bundled default model sits in the source checkout, next to the packages (an editable install
# imports them from there). A wheel install does not ship it.
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "checkpoints" / "vtok-tiny-shapes"


def add_model_argument(parser) -> None:
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="a VTok checkpoint: a pipeline folder (model/, processor/, ...) or one folder with the model and "
        f"its processor (default: the bundled {BUNDLED_MODEL.parent.name}/{BUNDLED_MODEL.name})",
    )


def add_sampling_arguments(parser) -> None:
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--num-frames", type=int, metavar="N", help="frames per video, evenly spaced in time")
    sampling.add_argument("--fps", type=float, metavar="F", help="frames per second to sample")


def model_folder(model: str | None) -> Path:
    """`--model`, or the bundled model; a clear error when it is not there."""
    if model is not None:
        path = Path(model)
        if not path.is_dir():
            raise FileNotFoundError(f"--model {model}: no such folder.")
        return path
    if not BUNDLED_MODEL.is_dir():
        raise FileNotFoundError(
            f"The bundled model was not found at {BUNDLED_MODEL}: it ships with the source checkout (install it "
            "editable: pip install -e .), not with a wheel. Pass --model DIR."
        )
    return BUNDLED_MODEL


def load_model_and_processor(model: str | None, device: str = "cpu"):
    """The understanding model (eval mode, on `device`) and its processor from `--model`."""
    from modeling_vtok.training_vtok import load_vtok_model

    vtok_model, processor = load_vtok_model(model_folder(model))
    return vtok_model.to(device).eval(), processor


@dataclass
class VideoTokens:
    """One video's VTok tokens `(num_video_tokens, token_dim)` and where they come from."""

    tokens: torch.Tensor
    num_frames: int
    frame_indices: list[int]
    frame_timestamps: list[float]
    frame_sampling_tokens: int  # what naive frame sampling (S tokens per frame) spends on the same frames


def tokenize_video(model, processor, path: str, num_frames: int | None = None, fps: float | None = None) -> VideoTokens:
    """Decode and sample `path` with the processor and return exactly the tokens the model's video tokenizer
    computes from those pixels (what the LLM reads, before the projector). Raises `VTokVideoError` for a
    file that cannot be read."""
    import torch

    from modeling_vtok.token_layout import count_video_tokens
    from processing_vtok import VTokVideoError

    try:
        inputs = processor.video_processor([path], num_frames=num_frames, fps=fps, return_metadata=True, return_tensors="pt")
    except VTokVideoError as error:  # the processor's "Video 0 of 1 in the batch: " says nothing about one file
        raise (error.__cause__ if isinstance(error.__cause__, VTokVideoError) else error) from None
    with torch.no_grad():
        vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"].to(model.device), inputs["video_lengths"])
    metadata = inputs["video_metadata"][0]
    length = int(inputs["video_lengths"][0])
    return VideoTokens(
        tokens=vtok.tokens[vtok.mask].float().cpu(),
        num_frames=length,
        frame_indices=[int(i) for i in metadata.frames_indices],
        frame_timestamps=[float(t) for t in metadata.timestamps],
        frame_sampling_tokens=count_video_tokens(length, model.config.num_key_frame_tokens, video_tokenization="frames"),
    )


__all__ = ["BUNDLED_MODEL", "VideoTokens", "add_model_argument", "add_sampling_arguments", "load_model_and_processor", "model_folder", "tokenize_video"]
