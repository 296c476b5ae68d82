"""Video decoding and frame sampling with PyAV (the input side of VTok, arXiv 2602.04202, Sec. 3).

A file is read in three steps:

1. Demux it (read its packets without decoding them) to learn the presentation timestamp (pts) of
   every frame, which frames are key frames, and whether the data reaches the end its header
   promises. Timestamps, not the average frame rate, say when a frame is shown: phone video often
   has a variable frame rate.
2. Choose the frames from those timestamps (`sample_frame_indices`): evenly spaced in time, so a
   clip is sampled the way it plays.
3. Decode only the chosen frames: seek to the key frame before a target when one lies ahead of the
   decoder, then decode forward to the frame whose pts is the target's. A long video is never held
   in memory as a whole.

Everything that goes wrong with the file raises `VTokVideoError`; no PyAV exception reaches the caller.
"""

import io
import itertools
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata


logger = logging.get_logger(__name__)

# Frames sampled when neither `num_frames` nor `fps` is given: decoding every frame of a long file
# by default would silently cost minutes and gigabytes.
DEFAULT_NUM_FRAMES = 16

# Seconds within which two instants count as equal when sampling: timestamps are integer pts times a
# time base, and their float values are not exact.
_TIME_TOLERANCE = 1e-6

# Seconds by which readable data may fall short of the end a header promises: some containers round
# timestamps and durations to milliseconds. A real frame lasts longer.
_END_TOLERANCE = 1e-3

VideoSource = str | os.PathLike | bytes | bytearray | BinaryIO


class VTokVideoError(ValueError):
    """A video that cannot be read (missing, empty, corrupt or truncated file) or is not valid input
    (no frames, pixel values that are NaN, infinite or out of range).

    One class for all of them, so that a data pipeline can catch exactly these and skip the video,
    while mistakes in the code (wrong arguments: `TypeError`, plain `ValueError`) still surface. It is
    a `ValueError`, so existing `except ValueError` handlers keep working.

    Args:
        message (`str`): What is wrong, naming the video.
        batch_index (`int`, *optional*): Position of the failing video in the batch given to a
            processor; `None` when raised by `load_video` directly.
    """

    def __init__(self, message: str, batch_index: int | None = None):
        super().__init__(message)
        self.batch_index = batch_index


@dataclass
class VTokVideoMetadata(VideoMetadata):
    """`VideoMetadata` that knows when each returned frame is shown.

    transformers derives `timestamps` as `frames_indices / fps`, which is wrong for variable frame rate.
    `load_video` fills `frames_pts` with the presentation timestamp (pts) of every returned frame as the file
    gives it, `start_pts` with the first frame's, and `time_base` with the seconds per pts unit; then
    `timestamps` are exact.
    """

    frames_pts: list[int] | None = None
    start_pts: int | None = None
    time_base: Fraction | None = None

    @property
    def timestamps(self) -> list[float]:
        """Seconds from the video's first frame to each sampled frame (from the pts when the video was decoded)."""
        if self.frames_pts is None:
            return super().timestamps
        return [float((pts - self.start_pts) * self.time_base) for pts in self.frames_pts]


def check_sampling_arguments(num_frames: int | None, fps: float | None) -> None:
    """Raise a `ValueError` for `num_frames` together with `fps`, `num_frames < 1` or `fps <= 0`."""
    if num_frames is not None and fps is not None:
        raise ValueError(f"Pass either `num_frames` ({num_frames}) or `fps` ({fps}) to sample a video, not both.")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"`num_frames` must be >= 1, got {num_frames}.")
    if fps is not None and fps <= 0:
        raise ValueError(f"`fps` must be > 0, got {fps}.")


def sample_frame_indices(
    timestamps, num_frames: int | None = None, fps: float | None = None, name: str = "The video"
) -> np.ndarray:
    """Indices of the frames to keep, chosen by time from each frame's presentation time (ascending).

    - `num_frames=N`: N instants evenly spaced from the first frame's time to the last frame's, each
      taking the nearest frame (the earlier one on a tie). At a constant frame rate this is
      `round(linspace(0, T - 1, N))`; at a variable one it is what the clip shows at those instants.
      When two instants are nearest to the same frame, the later one takes the next frame, so exactly
      N distinct frames come back; a video of at most N frames gives all of them.
    - `fps=f`: the frame on display every `1 / f` seconds from the first frame, each frame taken once.

    Getting fewer frames than asked logs a warning that starts with `name`.
    """
    check_sampling_arguments(num_frames, fps)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    total = len(timestamps)
    if num_frames is not None:
        requested, asked = num_frames, f"num_frames={num_frames}"
        if num_frames >= total:
            indices = np.arange(total)
        else:
            instants = np.linspace(timestamps[0], timestamps[-1], num_frames)
            after = np.clip(np.searchsorted(timestamps, instants), 1, total - 1)
            take_before = instants - timestamps[after - 1] <= timestamps[after] - instants + _TIME_TOLERANCE
            nearest = np.where(take_before, after - 1, after)
            indices, previous = [], -1
            for k, index in enumerate(nearest.tolist()):
                # distinct and ascending, leaving one frame for each instant still to come
                previous = min(max(index, previous + 1), total - num_frames + k)
                indices.append(previous)
            indices = np.array(indices)
    else:
        if fps is None:
            raise ValueError("Pass `num_frames` or `fps` to sample a video.")
        # In units of the sampling period: instant k is k / fps seconds after the first frame. A frame is
        # on display at the instants from its start up to the next frame's start (the last frame: at its
        # start only). Counting per frame, not per instant, keeps this O(frames) however long the video.
        starts, tolerance = (timestamps - timestamps[0]) * fps, _TIME_TOLERANCE * fps
        next_starts = np.append(starts[1:], starts[-1] + 2 * tolerance)
        indices = np.flatnonzero(np.ceil(starts - tolerance) < next_starts - tolerance)
        requested, asked = math.floor(starts[-1] + tolerance) + 1, f"fps={fps}"
    if len(indices) < requested:
        logger.warning(
            f"{name} has {total} frames, fewer than the {requested} requested ({asked}); "
            f"returning {len(indices)} frames."
        )
    return indices


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return f"<file-like object {getattr(source, 'name', type(source).__name__)}>"


def _container_input(source: VideoSource, name: str):
    """What `av.open` reads: a path, a `BytesIO` over bytes, or the file-like object rewound to its start
    (a caller may have read it already, or passed the same object twice)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise VTokVideoError(f"Cannot read video {name}: no such file.")
        if os.path.getsize(path) == 0:
            raise VTokVideoError(f"Cannot read video {name}: the file is empty.")
        return path
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise VTokVideoError(f"Cannot read video {name}: the bytes are empty.")
        return io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        if source.seekable():
            source.seek(0)
        return source
    raise TypeError(f"`source` must be a file path, bytes or a binary file-like object, got {type(source).__name__}.")


@dataclass
class _PacketIndex:
    """What demuxing tells about a video stream, before any decoding."""

    pts: np.ndarray  # every frame's presentation timestamp, ascending, in the stream's time base
    key_frames: np.ndarray  # pts of the key frames, ascending
    first_dts: int  # decode timestamp of the first packet: a seek there lands on the first frame
    readable_start: float  # seconds: where the earliest packet (any stream) starts
    readable_end: float  # seconds: where the readable packets (any stream) end, or where the first damaged one starts
    video_start: float  # seconds: where the earliest video packet starts, discarded ones included
    video_end: float  # seconds: where the readable video packets end
    reordered: bool  # a packet's pts is below an earlier packet's: B-frames whose real pts the file stores

    def seek_point(self, target: int) -> int:
        """Where to seek to decode the frame at pts `target`: the last key frame at or before it, or the start."""
        position = np.searchsorted(self.key_frames, target, side="right") - 1
        return int(self.key_frames[position]) if position >= 0 else self.first_dts


def _index_packets(container, stream) -> _PacketIndex:
    """Demux every packet of every stream (no decoding).

    The video stream's packets give its frames' timestamps (packets an edit list discards are shown by
    no frame). All streams' packets give the span the readable data covers, which `_check_complete`
    compares with what the header promises. Reading stops at the first corrupt packet (a cut last packet
    is flagged so): what follows it is not trusted.
    """
    pts, key_frames, first_dts, reordered = [], [], None, False
    readable_start, readable_end, video_start, video_end = math.inf, -math.inf, math.inf, -math.inf
    steps = {}  # stream index -> (dts of its last packet, longest step between two of its packets)
    for packet in container.demux():
        timestamp = packet.pts if packet.pts is not None else packet.dts
        if timestamp is None or not packet.time_base:  # the flush packets at the end of the file
            continue
        start = float(timestamp * packet.time_base)
        if packet.is_corrupt:
            readable_end = min(readable_end, start)
            break
        dts = packet.dts if packet.dts is not None else timestamp
        last_dts, longest_step = steps.get(packet.stream_index, (dts, 0.0))
        longest_step = max(longest_step, float((dts - last_dts) * packet.time_base))
        steps[packet.stream_index] = (dts, longest_step)
        lasts = float((packet.duration or 0) * packet.time_base)
        if packet.stream.type in ("video", "audio"):
            # A frame is shown, a sound plays, until the next one starts. Taking at least the longest step
            # between two packets of the stream also covers formats that store no duration, or a wrong one
            # (AVI: one tick of its time base).
            lasts = max(lasts, longest_step)
        readable_start, readable_end = min(readable_start, start), max(readable_end, start + lasts)
        if packet.stream_index != stream.index:
            continue
        video_start, video_end = min(video_start, start), max(video_end, start + lasts)
        first_dts = dts if first_dts is None else min(first_dts, dts)
        reordered = reordered or (bool(pts) and timestamp < pts[-1])
        if not packet.is_discard:
            pts.append(timestamp)
        if packet.is_keyframe:
            key_frames.append(timestamp)
    return _PacketIndex(
        pts=np.sort(np.array(pts, dtype=np.int64)),
        key_frames=np.sort(np.array(key_frames, dtype=np.int64)),
        first_dts=first_dts or 0,
        readable_start=readable_start,
        readable_end=readable_end,
        video_start=video_start,
        video_end=video_end,
        reordered=reordered,
    )


def _check_complete(container, stream, index: _PacketIndex, name: str, allow_partial: bool) -> None:
    """Raise (or, with `allow_partial`, warn) when the readable data covers less time than the header promises.

    A truncated download or copy still opens, and its header still promises the whole video: a duration
    and, in AVI, a frame count. Reading on would silently give a shorter video.
    Spans are measured from the earlier of the header's start and the first packet: the header's start
    may ignore an audio track's priming samples (MKV), and packets may start after it (AVI with B-frames).
    """
    spans = []  # (promised, readable) in seconds
    if container.duration:
        start = min(index.readable_start, (container.start_time or 0) / av.time_base)
        spans.append((container.duration / av.time_base, index.readable_end - start))
    if container.format.name == "avi" and stream.frames and stream.average_rate:
        # AVI keeps its frame count in the header, while FFmpeg recomputes the duration from the packets it
        # finds once a cut has taken the index at the end of the file. (MP4 counts frames an edit list
        # hides, so its frame count promises nothing.)
        start = min(index.video_start, float((stream.start_time or 0) * stream.time_base))
        spans.append((stream.frames / float(stream.average_rate), index.video_end - start))
    promised, readable = max(spans, key=lambda span: span[0] - span[1], default=(0.0, 0.0))
    if readable >= promised - _END_TOLERANCE:
        return
    problem = (
        f"the file is truncated or damaged: its data covers {readable:.2f} s of the {promised:.2f} s it "
        f"promises ({len(index.pts)} frames)"
    )
    if not allow_partial:
        raise VTokVideoError(
            f"Cannot read video {name}: {problem}. Pass `allow_partial=True` to read the frames that are there."
        )
    logger.warning(f"Video {name}: {problem}; reading those frames (allow_partial=True).")


def _frames_from(container, stream, pts: int, wanted: set[int] | None = None):
    """Frames decoded from the key frame at or before `pts` on. Corrupt packets are skipped: with
    `allow_partial`, a cut last packet would otherwise stop the decoder.

    With `wanted` (the pts of the frames to return), the decoder skips the non-reference frames (FFmpeg's
    `skip_frame="NONREF"`) that are not wanted: no other frame is predicted from them, so skipping them
    changes no frame that is returned, and decoding toward a sample costs only its GOP's reference frames
    (H.264 and HEVC with B-frames: about half the frames; decoders without the option decode all).
    """
    codec_context = stream.codec_context
    container.seek(pts, stream=stream, backward=True)
    for packet in container.demux(stream):
        if packet.is_corrupt:
            continue
        timestamp = packet.pts if packet.pts is not None else packet.dts
        codec_context.skip_frame = "DEFAULT" if wanted is None or timestamp in wanted else "NONREF"
        yield from packet.decode()


def _advance(frames, target: int):
    """The first frame at or after pts `target`, or None when the stream ends first."""
    return next((frame for frame in frames if frame.pts is not None and frame.pts >= target), None)


def _decode(container, stream, index: _PacketIndex, positions: np.ndarray, name: str, size) -> list[np.ndarray]:
    """Decode the frames at `positions` (ascending indices into `index.pts`) to upright RGB arrays of
    `size` (width, height; None: the first frame's).

    Seeks only when the key frame before a target lies ahead of the last decoded frame: otherwise
    decoding forward gets there at no more cost, and a frame is recognised by its pts. If a frame is not
    where the packets said (a container whose seek index disagrees with its packets, or whose timestamps
    are guesses: AVI stores none, so H.264 with B-frames comes out of it with pts out of order), decoding
    restarts from the first frame, without seeking, and recognises frames by their order instead: the
    decoder gives them in presentation order. A frame missing even then means the file is damaged.
    """
    arrays, frames, last, rotation = [], None, None, None
    # Skipping unwanted frames needs packets that name their frames: where pts only count packets in decode
    # order (AVI), a skipped B-frame would leave its pts to a wrong frame.
    wanted = set(index.pts[positions].tolist()) if index.reordered else None
    decoded = None  # frames taken from the start so far, once decoding goes by order
    for position in positions.tolist():
        target = int(index.pts[position])
        if decoded is None:
            seek_point = index.seek_point(target)
            if frames is None or seek_point > last:
                frames = _frames_from(container, stream, seek_point, wanted)
            frame = _advance(frames, target)
            if frame is None or frame.pts != target:
                frames, decoded = _frames_from(container, stream, index.first_dts), 0
        if decoded is not None:
            frame = next(itertools.islice(frames, position - decoded, None), None)
            decoded = position + 1
        if frame is None:
            raise VTokVideoError(
                f"Cannot read video {name}: the decoder gave fewer frames than the {len(index.pts)} in the "
                f"file's packets (frame {position} is missing); the file is damaged."
            )
        last = target
        if rotation is None:
            # Phones record the camera's orientation as a display rotation (counter-clockwise degrees)
            # instead of rotating the pixels; turning the frames makes them upright, as players show them.
            size, rotation = size or (frame.width, frame.height), round(frame.rotation / 90)
        arrays.append(np.rot90(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]), k=rotation))
    return arrays


def load_video(
    source: VideoSource, num_frames: int | None = None, fps: float | None = None, allow_partial: bool = False
) -> tuple[np.ndarray, VTokVideoMetadata]:
    """Decode the sampled frames of a video with PyAV.

    Args:
        source (`str`, `os.PathLike`, `bytes` or binary file-like object):
            The video file. A file-like object is read from its start.
        num_frames (`int`, *optional*):
            Number of frames, evenly spaced in time from the first frame to the last (see
            `sample_frame_indices`).
        fps (`float`, *optional*):
            Frames per second to sample, from the first frame on. Exclusive with `num_frames`.
            When neither is given, `DEFAULT_NUM_FRAMES` (16) frames are sampled.
        allow_partial (`bool`, *optional*, defaults to `False`):
            Read the frames that are there in a truncated or damaged file (with a warning) instead of
            raising.

    Returns:
        `tuple[np.ndarray, VTokVideoMetadata]`: uint8 frames `(num_sampled_frames, height, width, 3)`,
        upright (the display rotation applied), and the metadata: `total_num_frames`, `fps` (average),
        `duration`, `width` and `height` of the returned frames, `frames_indices` (positions in
        presentation order) and `frames_pts` / `timestamps` (when each returned frame is shown). A video
        with fewer frames than requested gives all of them, with a warning.

    Raises:
        `VTokVideoError`: the file is missing, empty, not a video, has no frames, or is truncated or
        damaged. No PyAV exception reaches the caller.
    """
    check_sampling_arguments(num_frames, fps)
    if num_frames is None and fps is None:
        num_frames = DEFAULT_NUM_FRAMES
    name = _describe(source)
    container_input = _container_input(source, name)
    try:
        container = av.open(container_input, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VTokVideoError(f"Cannot read video {name}: not a decodable video container ({error}).") from error
    try:
        with container:
            return _load(container, name, num_frames, fps, allow_partial)
    except av.FFmpegError as error:  # all of PyAV's `av.error.*`, e.g. PermissionError from a failed seek
        raise VTokVideoError(f"Cannot read video {name}: the data is damaged ({error}).") from error


def _load(container, name: str, num_frames, fps, allow_partial: bool) -> tuple[np.ndarray, VTokVideoMetadata]:
    if not container.streams.video:
        raise VTokVideoError(f"Cannot read video {name}: the file has no video stream.")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VTokVideoError(f"Cannot read video {name}: no decoder for its video codec.")
    if not stream.time_base:
        raise VTokVideoError(f"Cannot read video {name}: the video stream has no time base.")
    stream.thread_type = "AUTO"
    # Every frame is scaled to the size the container states: a stream may change resolution midway, and
    # a damaged frame header may claim a huge one (read before decoding, which updates `stream.width`).
    size = (stream.width, stream.height) if stream.width and stream.height else None
    index = _index_packets(container, stream)
    if len(index.pts) == 0:
        raise VTokVideoError(f"Cannot read video {name}: the video stream has no frames.")
    _check_complete(container, stream, index, name, allow_partial)

    time_base = stream.time_base
    timestamps = index.pts * float(time_base)
    indices = sample_frame_indices(timestamps, num_frames=num_frames, fps=fps, name=f"Video {name}")
    frames = np.stack(_decode(container, stream, index, indices, name, size))
    metadata = VTokVideoMetadata(
        total_num_frames=len(index.pts),
        fps=float(stream.average_rate) if stream.average_rate else None,
        width=frames.shape[2],
        height=frames.shape[1],
        duration=float(index.video_end - timestamps[0]),
        video_backend="pyav",
        frames_indices=indices.tolist(),
        frames_pts=index.pts[indices].tolist(),
        start_pts=int(index.pts[0]),
        time_base=time_base,
    )
    return frames, metadata


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


__all__ = [
    "load_video",
    "write_video",
    "sample_frame_indices",
    "VTokVideoError",
    "VTokVideoMetadata",
    "DEFAULT_NUM_FRAMES",
]
