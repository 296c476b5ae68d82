"""Video processor of VTok: decode (PyAV), sample, resize, rescale and normalise frames, then pad a
batch of videos of different lengths to one tensor (arXiv 2602.04202, Sec. 3, input pipeline)."""

import os

import numpy as np
import torch
from huggingface_hub.dataclasses import validate_typed_dict
from PIL import Image
from transformers import AutoVideoProcessor, BatchFeature
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.utils import logging
from transformers.video_utils import VideoMetadata

from modeling_vtok.configuration_vtok import VTokConfig

from .video_io import load_video, sample_frame_indices


logger = logging.get_logger(__name__)


def _is_source(item) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray)) or hasattr(item, "read")


def _is_frame(item) -> bool:
    return isinstance(item, Image.Image) or (isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 3)


def _is_video(item) -> bool:
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item.ndim == 4
    return isinstance(item, (list, tuple)) and len(item) > 0 and all(_is_frame(frame) for frame in item)


def make_list_of_videos(videos) -> list:
    """Flatten any nesting of videos (as `apply_chat_template` produces) to a flat list where each
    entry is a file path, bytes, a file-like object, a 4D array/tensor or a list of frames."""
    if _is_source(videos) or _is_video(videos):
        return [videos]
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return list(videos)
    if isinstance(videos, (list, tuple)):
        return [video for item in videos for video in make_list_of_videos(item)]
    shape = f" of shape {tuple(videos.shape)}" if hasattr(videos, "shape") else ""
    raise TypeError(
        f"Unsupported video input {type(videos).__name__}{shape}. A video is a file path, bytes, a binary "
        "file-like object, an array or tensor (num_frames, height, width, channels) or (num_frames, channels, "
        "height, width), or a list of PIL images; pass a list of those for a batch."
    )


def _to_frames_first(video, input_data_format) -> torch.Tensor:
    """A 4D array/tensor or a list of frames -> tensor (num_frames, channels, height, width)."""
    if isinstance(video, (list, tuple)):
        video = np.stack([np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else np.asarray(frame)
                          for frame in video])
    video = torch.from_numpy(np.ascontiguousarray(video)) if isinstance(video, np.ndarray) else video
    if input_data_format is None:
        channels_last = video.shape[-1] in (1, 3, 4)
        channels_first = video.shape[1] in (1, 3, 4)
        if not (channels_last or channels_first):
            raise ValueError(
                f"Cannot find the channel dimension of a video of shape {tuple(video.shape)}: expected "
                "(num_frames, height, width, channels) or (num_frames, channels, height, width) with 1, 3 or "
                "4 channels. Pass `input_data_format` to say which."
            )
        input_data_format = ChannelDimension.LAST if channels_last else ChannelDimension.FIRST
    if ChannelDimension(input_data_format) == ChannelDimension.LAST:
        video = video.permute(0, 3, 1, 2)
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1)
    elif video.shape[1] == 4:
        video = video[:, :3]  # drop alpha
    return video.contiguous()


class VTokVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos into `pixel_values_videos` of shape `(num_videos, max_num_frames, 3, height, width)`,
    zero-padded in time, plus `video_lengths` `(num_videos,)` with each video's true frame count.

    Files (paths, bytes, file-like objects) are decoded with PyAV, seeking to the sampled frames only:
    pass `num_frames` (evenly spaced) or `fps` (not both); files default to 16 frames. Arrays, tensors
    and lists of PIL images keep all their frames unless `num_frames` or `fps` is given (`fps` needs
    `video_metadata` with the source frame rate).
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
    return_tensors = "pt"
    model_input_names = ["pixel_values_videos", "video_lengths"]

    def preprocess(self, videos, **kwargs) -> BatchFeature:
        allowed = set(self.valid_kwargs.__annotations__) | {"return_tensors"}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}. Accepted: {sorted(allowed)}."
            )
        if kwargs.get("num_frames") is not None and kwargs.get("fps") is not None:
            raise ValueError(
                f"Pass either `num_frames` ({kwargs['num_frames']}) or `fps` ({kwargs['fps']}) to sample "
                "videos, not both."
            )
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

    def _decode_and_sample(self, videos, num_frames, fps, video_metadata, do_sample_frames, input_data_format):
        """Decode files with PyAV (sampling while decoding) and sample in-memory videos when asked."""
        if not videos:
            raise ValueError("`videos` is empty: pass at least one video.")
        if video_metadata is not None and not isinstance(video_metadata, (list, tuple)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(videos):
            raise ValueError(f"Got {len(video_metadata)} `video_metadata` entries for {len(videos)} videos.")
        out_videos, out_metadata = [], []
        for i, video in enumerate(videos):
            if _is_source(video):
                frames, metadata = load_video(video, num_frames=num_frames, fps=fps)
                out_videos.append(_to_frames_first(frames, ChannelDimension.LAST))
                out_metadata.append(metadata)
                continue
            video = _to_frames_first(video, input_data_format)
            metadata = video_metadata[i] if video_metadata is not None else None
            if isinstance(metadata, dict):
                metadata = VideoMetadata(**metadata)
            if metadata is None:
                metadata = VideoMetadata(total_num_frames=video.shape[0])
            if do_sample_frames and (num_frames is not None or fps is not None):
                if fps is not None and not metadata.fps:
                    raise ValueError(
                        f"Sampling an in-memory video at fps={fps} needs its frame rate: pass `video_metadata` "
                        "with `fps`, or sample with `num_frames` instead."
                    )
                indices = sample_frame_indices(video.shape[0], metadata.fps, num_frames=num_frames, fps=fps)
                if len(indices) < (num_frames or 0):
                    logger.warning(
                        f"Video {i} has {video.shape[0]} frames, fewer than num_frames={num_frames}; "
                        f"keeping all {len(indices)}."
                    )
                video = video[torch.from_numpy(indices)]
                metadata.frames_indices = indices.tolist()
            out_videos.append(video)
            out_metadata.append(metadata)
        return out_videos, out_metadata


AutoVideoProcessor.register(VTokConfig, VTokVideoProcessor)

__all__ = ["VTokVideoProcessor"]
