"""Video processor of VTok: decode (PyAV), sample, resize, rescale and normalise frames, then pad a
batch of videos of different lengths to one tensor (arXiv 2602.04202, Sec. 3, input pipeline)."""

import numbers
import os

import numpy as np
import torch
from huggingface_hub.dataclasses import validate_typed_dict
from PIL import Image
from transformers import AutoVideoProcessor, BatchFeature
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

from .configuration_vtok import VTokConfig

from .video_io import VTokVideoError, check_sampling_arguments, load_video, sample_frame_indices


def _is_source(item) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray)) or hasattr(item, "read")


def _datasets_video_source(item: dict):
    """The file of a `datasets.Video(decode=False)` value, `{"path": ..., "bytes": ...}`, for PyAV: its bytes
    when the dataset holds them (the path is then only the original file's name), else its path. Reading
    these with our decoder is what keeps `datasets`' own video decoding (torchcodec) out of the way."""
    if not set(item) <= {"path", "bytes"}:
        raise TypeError(
            f"Unsupported video input: a dict with keys {sorted(item)}. A dict video is a `datasets.Video(decode=False)` "
            "value with keys `path` and `bytes`."
        )
    source = item.get("bytes") or item.get("path")
    if source is None:
        raise VTokVideoError("Invalid video: a `datasets.Video(decode=False)` value with neither `bytes` nor `path`.")
    return source


def _nesting_depth(item) -> int:
    """How deep lists nest down the first elements of `item` to a number (3 for a frame given as rows of
    pixels of channel values, as a `datasets.Dataset` returns an array column), or -1 if not to a number."""
    depth = 0
    while isinstance(item, (list, tuple)) and len(item) > 0:
        item, depth = item[0], depth + 1
    return depth if isinstance(item, numbers.Number) else -1


def _is_frame(item) -> bool:
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item.ndim == 3
    return isinstance(item, Image.Image) or _nesting_depth(item) == 3


def _is_video(item) -> bool:
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item.ndim == 4
    return isinstance(item, (list, tuple)) and len(item) > 0 and all(_is_frame(frame) for frame in item)


def make_list_of_videos(videos) -> list:
    """Flatten any nesting of videos (as `apply_chat_template` produces) to a flat list where each
    entry is a file path, bytes, a file-like object, a 4D array/tensor or a list of frames.

    A single frame is a one-frame video: `apply_chat_template` nests a `{"type": "video"}` item's
    value in lists, so a frame there is a one-frame video, and `processor(videos=frame)` agrees.
    A `datasets.Video(decode=False)` value (a dict) becomes its bytes or path."""
    if isinstance(videos, dict):
        return [_datasets_video_source(videos)]
    if _is_source(videos) or _is_video(videos):
        return [videos]
    if _is_frame(videos):
        return [[videos]]
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return list(videos)
    if isinstance(videos, (list, tuple)):
        return [video for item in videos for video in make_list_of_videos(item)]
    shape = f" of shape {tuple(videos.shape)}" if hasattr(videos, "shape") else ""
    raise TypeError(
        f"Unsupported video input {type(videos).__name__}{shape}. A video is a file path, bytes, a binary "
        "file-like object, an array or tensor (num_frames, height, width, channels) or (num_frames, channels, "
        "height, width), a list of frames (PIL images, arrays, or nested lists of numbers such as a "
        "`datasets.Dataset` returns), a `datasets.Video(decode=False)` value ({'path': ..., 'bytes': ...}), or a "
        "single frame; pass a list of those for a batch."
    )


def _to_frames_first(video, input_data_format) -> torch.Tensor:
    """A 4D array/tensor or a list of frames -> tensor (num_frames, 3, height, width): grey frames repeated
    to RGB, alpha dropped. Raises `VTokVideoError` for what is not a video: frames of different shapes,
    values that are not numbers, no frames, or no axis of 1, 3 or 4 channels."""
    if isinstance(video, (list, tuple)):
        try:
            video = np.stack([np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else np.asarray(frame)
                              for frame in video])
        except ValueError as error:  # frames of different sizes, or ragged nested lists
            raise VTokVideoError(f"Invalid video: its frames differ in shape ({error}).") from error
    if isinstance(video, np.ndarray):
        if video.dtype.kind not in "iuf":
            raise VTokVideoError(f"Invalid video: pixel values of dtype {video.dtype}; expected integers or floats.")
        video = torch.from_numpy(np.ascontiguousarray(video))
    if video.dtype == torch.bool or video.dtype.is_complex:
        raise VTokVideoError(f"Invalid video: pixel values of dtype {video.dtype}; expected integers or floats.")
    if video.shape[0] == 0:
        raise VTokVideoError(f"Invalid video: it has no frames (shape {tuple(video.shape)}).")
    if input_data_format is None:
        channels_last = video.shape[-1] in (1, 3, 4)
        channels_first = video.shape[1] in (1, 3, 4)
        if not (channels_last or channels_first):
            raise VTokVideoError(
                f"Invalid video: cannot find the channel dimension of shape {tuple(video.shape)}: expected "
                "(num_frames, height, width, channels) or (num_frames, channels, height, width) with 1, 3 or "
                "4 channels (a single frame: (height, width, channels)). Pass `input_data_format` to say which."
            )
        input_data_format = ChannelDimension.LAST if channels_last else ChannelDimension.FIRST
    if ChannelDimension(input_data_format) == ChannelDimension.LAST:
        video = video.permute(0, 3, 1, 2)
    if video.shape[1] not in (1, 3, 4):
        raise VTokVideoError(
            f"Invalid video: {video.shape[1]} channels with input_data_format={input_data_format}; expected 1, 3 or 4."
        )
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1)
    elif video.shape[1] == 4:
        video = video[:, :3]  # drop alpha
    return video.contiguous()


def _check_pixel_values(video: torch.Tensor, do_rescale: bool, rescale_factor: float) -> torch.Tensor:
    """Reject pixel values the model would silently misread, and return the video as uint8 or float32.

    With `do_rescale`, values are multiplied by `rescale_factor` and must lie in [0, 1 / rescale_factor]
    ([0, 255] by default); without it they are used as given and must lie in [0, 1]. Floats that all lie
    in [0, 1] while `do_rescale` is on were most likely rescaled already and would come out black, so the
    caller has to say so with `do_rescale=False` (transformers' image processors warn about the same case).
    """
    if video.dtype.is_floating_point and not torch.isfinite(video).all():
        raise VTokVideoError("Invalid video: its pixel values contain NaN or infinity.")
    low, high = video.min().item(), video.max().item()
    top = 1 / rescale_factor if do_rescale else 1.0
    if low < 0 or high > top * (1 + 1e-6):
        meaning = f"rescaled by rescale_factor={rescale_factor:g}" if do_rescale else "used as given (do_rescale=False)"
        raise VTokVideoError(
            f"Invalid video: its pixel values range from {low:g} to {high:g}, outside [0, {top:g}], the range of "
            f"values {meaning}."
        )
    if do_rescale and video.dtype.is_floating_point and 0 < high <= 1:
        raise VTokVideoError(
            f"Invalid video: its pixel values are floats in [0, 1], which look rescaled already: do_rescale=True "
            f"would multiply them by {rescale_factor:g} again. Pass `do_rescale=False` for values in [0, 1], or "
            f"give values in [0, {top:g}]."
        )
    return video if video.dtype == torch.uint8 else video.to(torch.float32)


class VTokVideoProcessorKwargs(VideosKwargs, total=False):
    """
    allow_partial (`bool`, *optional*, defaults to `False`):
        Read the frames that are there in a truncated or damaged file (with a warning) instead of raising
        `VTokVideoError` (see `load_video`).
    max_frames (`int`, *optional*, defaults to 1024):
        Most frames a video may have after sampling; more raise `VTokVideoError` instead of running out of
        memory or past the LLM's context (an in-memory array keeps all its frames unless you sample it).
    """

    allow_partial: bool | None
    max_frames: int | None


class VTokVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos into `pixel_values_videos` of shape `(num_videos, max_num_frames, 3, height, width)`,
    zero-padded in time, plus `video_lengths` `(num_videos,)` with each video's true frame count.

    Files (paths, bytes, file-like objects, and `datasets.Video(decode=False)` values `{"path", "bytes"}`, so a
    `datasets` video column needs no torchcodec) are decoded with PyAV, seeking to the sampled frames only:
    pass `num_frames` (evenly spaced in time) or `fps` (not both); files default to 16 frames. Arrays,
    tensors and lists of frames keep all their frames unless `num_frames` or `fps` is given (`fps` needs
    `video_metadata` with the source frame rate).

    A video that cannot be read or is not valid input (no frames, NaN, infinite or out-of-range pixel
    values, floats in [0, 1] without `do_rescale=False`) raises `VTokVideoError` naming its position in
    the batch (`error.batch_index`).
    """

    resample = PILImageResampling.BICUBIC
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    size = {"height": 224, "width": 224}
    default_to_square = True
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    allow_partial = False
    max_frames = 1024
    return_tensors = "pt"
    valid_kwargs = VTokVideoProcessorKwargs
    model_input_names = ["pixel_values_videos", "video_lengths"]

    def preprocess(self, videos, **kwargs) -> BatchFeature:
        allowed = set(self.valid_kwargs.__annotations__) | {"return_tensors"}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}. Accepted: {sorted(allowed)}."
            )
        kwargs = {name: value for name, value in kwargs.items() if value is not None}  # None: the saved setting applies
        check_sampling_arguments(kwargs.get("num_frames"), kwargs.get("fps"))
        validate_typed_dict(self.valid_kwargs, kwargs)
        # A per-call `num_frames` replaces an instance `fps` and vice versa.
        if kwargs.get("num_frames") is not None or kwargs.get("fps") is not None:
            kwargs.setdefault("num_frames", None)
            kwargs.setdefault("fps", None)
        for name in self.valid_kwargs.__annotations__:
            kwargs.setdefault(name, getattr(self, name, None))

        videos, metadata = self._decode_and_sample(
            make_list_of_videos(videos),
            num_frames=kwargs.pop("num_frames"),
            fps=kwargs.pop("fps"),
            video_metadata=kwargs.pop("video_metadata"),
            do_sample_frames=kwargs.pop("do_sample_frames"),
            input_data_format=kwargs.pop("input_data_format"),
            allow_partial=kwargs.pop("allow_partial"),
            max_frames=kwargs.pop("max_frames"),
            do_rescale=kwargs["do_rescale"],
            rescale_factor=kwargs["rescale_factor"],
        )
        device = kwargs.pop("device")
        if device is not None:
            videos = [video.to(device) for video in videos]
        kwargs.pop("do_convert_rgb")  # done in `_to_frames_first`
        kwargs = self._standardize_kwargs(**kwargs)
        self._validate_preprocess_kwargs(**kwargs)
        kwargs.pop("data_format")
        return_metadata = kwargs.pop("return_metadata")
        return_tensors = kwargs.pop("return_tensors")

        processed = self._preprocess(videos=videos, return_tensors=None, **kwargs)["pixel_values_videos"]
        lengths = [video.shape[0] for video in processed]
        # (num_videos, max_num_frames, channels, height, width), zeros after each video's last frame
        pixel_values = processed[0].new_zeros((len(processed), max(lengths), *processed[0].shape[1:]))
        for i, video in enumerate(processed):
            pixel_values[i, : video.shape[0]] = video
        data = {"pixel_values_videos": pixel_values, "video_lengths": torch.tensor(lengths, dtype=torch.long)}
        if return_metadata:
            data["video_metadata"] = metadata
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])

    def sampling_disagreement(self, num_frames: int | None = None, fps: float | None = None) -> str | None:
        """How an explicit `num_frames` or `fps` differs from the sampling saved with this processor (the one
        its model was trained on), as a sentence for a warning; `None` when they agree or nothing is given.
        VTok reads any frame count, so a difference is allowed, but the model learned from (and its feature
        statistics were fitted on) the saved sampling."""
        check_sampling_arguments(num_frames, fps)
        given = {name: value for name, value in (("num_frames", num_frames), ("fps", fps)) if value is not None}
        saved = {name: value for name, value in (("num_frames", self.num_frames), ("fps", self.fps)) if value is not None}
        if not given or not saved or given == saved:  # 3 == 3.0: an fps saved as a float agrees with an int
            return None
        given, saved = (", ".join(f"{name}={value}" for name, value in sampling.items()) for sampling in (given, saved))
        return f"sampling {given} differs from the processor's saved {saved}, the sampling the model was trained on"

    def _decode_and_sample(self, videos, video_metadata, **options):
        """Decode, sample and check each video; a `VTokVideoError` is raised again naming the video's position."""
        if not videos:
            raise ValueError("`videos` is empty: pass at least one video.")
        if video_metadata is not None and not isinstance(video_metadata, (list, tuple)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(videos):
            raise ValueError(f"Got {len(video_metadata)} `video_metadata` entries for {len(videos)} videos.")
        out_videos, out_metadata = [], []
        for i, video in enumerate(videos):
            metadata = video_metadata[i] if video_metadata is not None else None
            try:
                video, metadata = self._decode_and_sample_one(video, metadata, position=i, **options)
            except VTokVideoError as error:
                raise VTokVideoError(f"Video {i} of {len(videos)} in the batch: {error}", batch_index=i) from error
            out_videos.append(video)
            out_metadata.append(metadata)
        return out_videos, out_metadata

    def _decode_and_sample_one(
        self, video, metadata, position, num_frames, fps, do_sample_frames, input_data_format, allow_partial,
        max_frames, do_rescale, rescale_factor,
    ) -> tuple[torch.Tensor, VideoMetadata]:
        """Decode a file with PyAV (sampling while decoding), or sample an in-memory video when asked (before
        converting it, so only the sampled frames are copied); then check its pixel values and length.
        Returns the frames `(num_frames, 3, height, width)` and their metadata."""
        if _is_source(video):
            video, metadata = load_video(video, num_frames=num_frames, fps=fps, allow_partial=allow_partial)
            input_data_format = ChannelDimension.LAST
        else:
            if isinstance(metadata, dict):
                metadata = VideoMetadata(**metadata)
            if metadata is None:
                metadata = VideoMetadata(total_num_frames=len(video))
            if do_sample_frames and (num_frames is not None or fps is not None) and len(video) > 0:
                if fps is not None and not metadata.fps:
                    raise ValueError(
                        f"Sampling an in-memory video at fps={fps} needs its frame rate: pass `video_metadata` "
                        "with `fps`, or sample with `num_frames` instead."
                    )
                timestamps = np.arange(len(video)) / (metadata.fps or 1)
                indices = sample_frame_indices(timestamps, num_frames=num_frames, fps=fps, name=f"Video {position}")
                video = [video[i] for i in indices] if isinstance(video, (list, tuple)) else video[indices.tolist()]
                metadata.frames_indices = indices.tolist()
        video = _check_pixel_values(_to_frames_first(video, input_data_format), do_rescale, rescale_factor)
        if len(video) > max_frames:
            raise VTokVideoError(
                f"The video has {len(video)} frames after sampling, more than max_frames={max_frames}, and would cost "
                f"the LLM thousands of tokens and the vision encoder one pass per frame. Sample fewer with "
                "`num_frames` or `fps`, or raise `max_frames`."
            )
        return video, metadata


AutoVideoProcessor.register(VTokConfig, VTokVideoProcessor)

__all__ = ["VTokVideoProcessor"]
