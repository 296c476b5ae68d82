"""Video decoding and frame sampling with PyAV (the input side of VTok, arXiv 2602.04202, Sec. 3).

Only the sampled frames are decoded: the container is seeked to the key frame before each target
and decoded forward to it, so a long video is never held in memory as a whole.
"""

import io
import math
import os
from typing import BinaryIO

import av
import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)

# Frames sampled when neither `num_frames` nor `fps` is given: decoding every frame of a long file
# by default would silently cost minutes and gigabytes.
DEFAULT_NUM_FRAMES = 16

VideoSource = str | os.PathLike | bytes | bytearray | BinaryIO


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return f"<file-like object {getattr(source, 'name', type(source).__name__)}>"


def _open_container(source: VideoSource, name: str):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"Cannot read video {name}: no such file.")
        if os.path.getsize(path) == 0:
            raise ValueError(f"Cannot read video {name}: the file is empty.")
        target = path
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ValueError(f"Cannot read video {name}: the bytes are empty.")
        target = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        target = source
    else:
        raise TypeError(
            f"`source` must be a file path, bytes or a binary file-like object, got {type(source).__name__}."
        )
    try:
        return av.open(target, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Cannot read video {name}: not a decodable video container ({error}).") from error


def _count_frames(container, stream) -> int:
    """Frame count from the header, or by demuxing packets (no decoding) when the header has none."""
    if stream.frames:
        return int(stream.frames)
    count = sum(1 for packet in container.demux(stream) if packet.size > 0)
    container.seek(0, stream=stream)
    return count


def sample_frame_indices(
    total_num_frames: int, video_fps: float, num_frames: int | None = None, fps: float | None = None
) -> np.ndarray:
    """Indices of the frames to keep: `num_frames` evenly spaced from the first to the last frame,
    or one frame every `1 / fps` seconds starting at 0. Never more frames than the video has."""
    if num_frames is not None and fps is not None:
        raise ValueError(
            f"Pass either `num_frames` ({num_frames}) or `fps` ({fps}) to sample a video, not both."
        )
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"`num_frames` must be >= 1, got {num_frames}.")
        return np.unique(np.round(np.linspace(0, total_num_frames - 1, num_frames)).astype(np.int64))
    if fps is None or fps <= 0:
        raise ValueError(f"`fps` must be > 0, got {fps}.")
    duration = total_num_frames / video_fps
    times = np.arange(0.0, duration - 1e-9, 1.0 / fps)
    indices = np.floor(times * video_fps + 1e-6).astype(np.int64)
    return np.unique(np.clip(indices, 0, total_num_frames - 1))


def _frame_index(frame, start_time: float, video_fps: float) -> int:
    """Index of a decoded frame in presentation order, from its timestamp."""
    return int(round((frame.time - start_time) * video_fps))


def _decode_indices(container, stream, indices: np.ndarray, video_fps: float, name: str) -> list[np.ndarray]:
    """Decode only the frames at `indices` (sorted): seek to the key frame before a target when it
    lies more than about a second ahead, otherwise keep decoding forward."""
    time_base = stream.time_base
    start_time = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    seek_gap = max(1, int(round(video_fps)))
    frames: list[np.ndarray] = []
    decoder = None
    position = -1  # index of the last decoded frame
    seeked_for = None  # target of the last seek: seek at most once per target
    just_seeked = False
    targets = iter(int(i) for i in indices)
    target = next(targets, None)
    while target is not None:
        if decoder is None or (target - position > seek_gap and seeked_for != target):
            # `backward=True` lands on the key frame at or before the target timestamp.
            offset = int(math.floor((start_time + target / video_fps) / time_base))
            container.seek(offset, stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
            seeked_for, just_seeked = target, True
        try:
            frame = next(decoder)
        except StopIteration:
            break  # the header promised more frames than the stream holds
        except av.FFmpegError as error:
            raise ValueError(f"Cannot decode video {name}: corrupt stream ({error}).") from error
        position = _frame_index(frame, start_time, video_fps)
        if just_seeked and position > target:
            # The seek overshot (container without a usable index): decode from the start instead.
            container.seek(0, stream=stream)
            decoder = container.decode(stream)
            seek_gap, just_seeked = 1 << 62, False
            continue
        just_seeked = False
        while target is not None and position >= target:
            frames.append(frame.to_ndarray(format="rgb24"))
            target = next(targets, None)
    return frames


def load_video(
    source: VideoSource, num_frames: int | None = None, fps: float | None = None
) -> tuple[np.ndarray, VideoMetadata]:
    """Decode the sampled frames of a video with PyAV.

    Args:
        source (`str`, `os.PathLike`, `bytes` or binary file-like object):
            The video file.
        num_frames (`int`, *optional*):
            Number of frames, evenly spaced from the first to the last frame.
        fps (`float`, *optional*):
            Frames per second to sample, starting at time 0. Exclusive with `num_frames`.
            When neither is given, `DEFAULT_NUM_FRAMES` (16) evenly spaced frames are sampled.

    Returns:
        `tuple[np.ndarray, VideoMetadata]`: uint8 frames of shape `(num_sampled_frames, height, width, 3)`
        and the metadata (`total_num_frames`, `fps`, `duration`, `frames_indices`, ...). When the video
        has fewer frames than requested, every frame is returned and a warning says so.
    """
    if num_frames is not None and fps is not None:
        raise ValueError(
            f"Pass either `num_frames` ({num_frames}) or `fps` ({fps}) to load_video, not both."
        )
    if num_frames is None and fps is None:
        num_frames = DEFAULT_NUM_FRAMES
    name = _describe(source)
    container = _open_container(source, name)
    try:
        if not container.streams.video:
            raise ValueError(f"Cannot read video {name}: the file has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        video_fps = float(rate) if rate else 0.0
        try:
            total = _count_frames(container, stream)
        except av.FFmpegError as error:
            raise ValueError(f"Cannot read video {name}: corrupt stream ({error}).") from error
        if total == 0 or video_fps <= 0:
            raise ValueError(f"Cannot read video {name}: the video stream has no frames.")

        indices = sample_frame_indices(total, video_fps, num_frames=num_frames, fps=fps)
        frames = _decode_indices(container, stream, indices, video_fps, name)
        if not frames:
            raise ValueError(f"Cannot read video {name}: no frame could be decoded.")
        indices = indices[: len(frames)]
        requested = num_frames if num_frames is not None else math.ceil(total / video_fps * fps - 1e-9)
        if len(frames) < requested:
            logger.warning(
                f"Video {name} has {total} frames, fewer than the {requested} requested "
                f"({'num_frames' if num_frames is not None else f'fps={fps}'}); returning {len(frames)} frames."
            )
        height, width = frames[0].shape[:2]
        metadata = VideoMetadata(
            total_num_frames=total,
            fps=video_fps,
            width=width,
            height=height,
            duration=total / video_fps,
            video_backend="pyav",
            frames_indices=indices.tolist(),
        )
        return np.stack(frames), metadata
    finally:
        container.close()


def write_video(path: str | os.PathLike, frames, fps: float = 8, gop_size: int | None = None) -> str:
    """Encode uint8 frames `(num_frames, height, width, 3)` to a video file with PyAV (h264/yuv420p,
    or mpeg4 when libx264 is missing). Height and width must be even. Returns the path."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"`frames` must have shape (num_frames, height, width, 3), got {frames.shape}.")
    if frames.dtype != np.uint8:
        raise ValueError(f"`frames` must be uint8, got {frames.dtype}.")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs an even height and width, got {height}x{width}.")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    path = os.fspath(path)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=int(fps) if float(fps).is_integer() else fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        if codec == "libx264":
            stream.options = {"crf": "12"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


__all__ = ["load_video", "write_video", "sample_frame_indices", "DEFAULT_NUM_FRAMES"]
