"""Real video files for the decoding tests, made at test time with PyAV's encoders (nothing downloaded),
and the reference they are checked against: a plain PyAV decode of every frame, without seeking."""

import io
from fractions import Fraction

import av
import numpy as np
import pytest


def pattern(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 frames `(num_frames, height, width, 3)` that differ from each other (grey level and a moving red
    column) and are not symmetric (a blue block in the top-left corner), so that a wrong frame or a wrong
    orientation shows."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = (i * 9) % 200 + 20
        frames[i, :, (i * 3) % width] = (255, 0, 0)
        frames[i, : max(1, height // 4), : max(1, width // 4)] = (0, 0, 255)
    return frames


# libx265 options: no info lines on the test output, and no encoder-settings SEI in the file (about 2 KB,
# most of a tiny test clip: a cut at 60% would leave no frame).
X265_OPTIONS = {"x265-params": "log-level=error:info=0"}


def require_encoder(codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")


def check_encodable(codec: str, width: int) -> None:
    """libx265 (PyAV 18.1's build) corrupts the heap and aborts the whole process on frames narrower than
    64 pixels (measured: 33 and 48 wide crash in 2 of 3 runs, 64 and 66 never in 10); refuse those here."""
    if codec == "libx265" and width < 64:
        raise ValueError(f"libx265 aborts the process on frames narrower than 64 pixels, got {width}.")


def mux(container, packet) -> None:
    """`container.mux(packet)`, naming the packet when the muxer refuses it. Matroska and MP4 refuse a packet
    (EINVAL) whose timestamp is missing or goes backwards; a one-frame 10-bit HEVC mkv was refused once in a
    loaded CI run and never again in 390 encodes, so a refusal says which timestamps it got."""
    try:
        container.mux(packet)
    except av.error.ArgumentError as error:
        raise av.error.ArgumentError(
            error.errno, f"{error.strerror} (muxing {packet.stream.codec_context.name} packet pts={packet.pts} dts={packet.dts} "
            f"duration={packet.duration} time_base={packet.time_base} keyframe={packet.is_keyframe} size={packet.size})"
        ) from error


def encode(
    path,
    frames: np.ndarray,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 10,
    times: list[float] | None = None,
    rotation: int = 0,
    options: dict | None = None,
    container_options: dict | None = None,
    audio_seconds: float | None = None,
) -> str:
    """Encode `frames` to `path` (the extension picks the container) and return the path as a string.

    `times` gives each frame's presentation time in seconds (variable frame rate); otherwise the frames are
    `1 / fps` apart. `rotation` is a display rotation (counter-clockwise degrees) stored in the container,
    as phones record it. `audio_seconds` adds a silent AAC track of that length.
    """
    require_encoder(codec)
    check_encodable(codec, frames.shape[2])
    with av.open(str(path), "w", options=container_options or {}) as container:
        audio = container.add_stream("aac", rate=8000, layout="mono") if audio_seconds else None
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = options or {}
        time_base = Fraction(1, 1200) if times is not None else Fraction(1, fps)
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = round((times[i] if times is not None else i / fps) / time_base), time_base
            for packet in stream.encode(frame):
                mux(container, packet)
        for packet in stream.encode():
            mux(container, packet)
        if audio is not None:
            for start in range(0, int(audio_seconds * audio.rate), 1024):
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts, samples.time_base = audio.rate, start, Fraction(1, audio.rate)
                for packet in audio.encode(samples):
                    mux(container, packet)
            for packet in audio.encode():
                mux(container, packet)
    return str(path)


def full_decode(source) -> tuple[list[int], np.ndarray]:
    """Every frame of the first video stream, in the order PyAV decodes them from the start, without display
    rotation: `(pts of each frame, uint8 RGB frames (T, H, W, 3))`."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else source) as container:
        frames = list(container.decode(video=0))
        return [frame.pts for frame in frames], np.stack([frame.to_ndarray(format="rgb24") for frame in frames])
