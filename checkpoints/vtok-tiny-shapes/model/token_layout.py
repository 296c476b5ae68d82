"""The layout of one video's VTok tokens: how many there are, which frames each one covers and which
temporal position it carries (arXiv 2602.04202, Sec. 3.1).

Every quantity derived from the layout is computed here and nowhere else: the processor expands
`<video>` with [`count_video_tokens`], the video tokenizer groups frames with
[`VTokTokenLayout.residual_windows`], the LLM reads [`VTokTokenLayout.temporal_positions`], and the
diffusion decoder places tokens with [`VTokTokenLayout.residual_token_of_frames`]. They cannot drift apart.

    "vtok":   [S key-frame tokens (key frame k)] [r_1: window 1] [r_2: window 2] ...
              the non-key frames, in order, are cut into windows of `temporal_stride` frames
    "frames": [S tokens of frame 0] [S tokens of frame 1] ...   (the naive baseline)
"""

import math
from dataclasses import dataclass

import torch


VIDEO_TOKENIZATIONS = ("vtok", "frames")


def count_video_tokens(
    num_frames: int,
    num_key_frame_tokens: int,
    temporal_stride: int = 1,
    video_tokenization: str = "vtok",
) -> int:
    """Number of LLM tokens one video of `num_frames` frames costs (placeholders only, no start/end).

    - "vtok": the key frame's S spatial tokens plus one residual token per window of
      `temporal_stride` later frames: `S + ceil((T - 1) / stride)`.
    - "frames": naive frame sampling, S tokens for every frame: `S * T`.
    """
    if num_frames < 1:
        raise ValueError(f"A video needs at least one frame, got num_frames={num_frames}.")
    if video_tokenization == "frames":
        return num_key_frame_tokens * num_frames
    if video_tokenization == "vtok":
        return num_key_frame_tokens + math.ceil((num_frames - 1) / temporal_stride)
    raise ValueError(f"Unknown video_tokenization={video_tokenization!r}. Has to be one of {list(VIDEO_TOKENIZATIONS)}.")


@dataclass(frozen=True)
class VTokTokenLayout:
    r"""
    key_grid_size (`int`):
        g, side of the key frame's token grid: S = g * g spatial tokens in raster order.
    temporal_stride (`int`, defaults to 1):
        Non-key frames summarised by one residual token.
    video_tokenization (`str`, defaults to `"vtok"`):
        `"vtok"` or the `"frames"` baseline (S tokens for every frame, no residual tokens).
    key_frame_index (`int`, defaults to 0):
        The frame whose spatial tokens are kept; every other frame belongs to a residual token.
    """

    key_grid_size: int
    temporal_stride: int = 1
    video_tokenization: str = "vtok"
    key_frame_index: int = 0

    @property
    def num_key_frame_tokens(self) -> int:
        """S: spatial tokens of the key frame (and of every frame in "frames" mode)."""
        return self.key_grid_size**2

    def num_video_tokens(self, num_frames: int) -> int:
        """LLM tokens of a `num_frames`-frame video, see [`count_video_tokens`]."""
        return count_video_tokens(num_frames, self.num_key_frame_tokens, self.temporal_stride, self.video_tokenization)

    def num_residual_tokens(self, num_frames: int) -> int:
        """Residual tokens of a `num_frames`-frame video (none in "frames" mode)."""
        if self.video_tokenization == "frames":
            return 0
        return self.num_video_tokens(num_frames) - self.num_key_frame_tokens

    def residual_windows(self, num_frames: int) -> list[list[int]]:
        """The frames each residual token covers: the non-key frames in order, cut into windows of
        `temporal_stride` (the last window may be shorter). No frame is skipped."""
        if self.video_tokenization == "frames":
            return []
        others = [t for t in range(num_frames) if t != self.key_frame_index]
        return [others[i : i + self.temporal_stride] for i in range(0, len(others), self.temporal_stride)]

    def residual_token_of_frames(self, num_frames: int) -> torch.LongTensor:
        """`(num_frames,)`: for each frame, the index of the residual token that covers it; -1 for the key frame."""
        index = torch.full((num_frames,), -1, dtype=torch.long)
        for token, window in enumerate(self.residual_windows(num_frames)):
            index[window] = token
        return index

    def temporal_positions(self, num_frames: int) -> torch.LongTensor:
        """Temporal index of each of a video's tokens, `(num_video_tokens(num_frames),)`.

        "vtok": 0 for the S key-frame tokens, then 1, 2, ... for the residual tokens in order.
        "frames": the frame index, repeated for the S tokens of each frame.
        """
        num_spatial = self.num_key_frame_tokens
        if self.video_tokenization == "frames":
            return torch.arange(num_frames).repeat_interleave(num_spatial)
        num_residual = self.num_residual_tokens(num_frames)
        return torch.cat([torch.zeros(num_spatial, dtype=torch.long), torch.arange(1, num_residual + 1)])


__all__ = ["VIDEO_TOKENIZATIONS", "VTokTokenLayout", "count_video_tokens"]
