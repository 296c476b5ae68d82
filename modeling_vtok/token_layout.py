"""The layout of one video's VTok tokens: how many there are, which frames each one covers and which
temporal position it carries (arXiv 2602.04202, Sec. 3.1).

Every quantity derived from the layout is computed here and nowhere else: the processor expands
`<video>` with [`count_video_tokens`], the video tokenizer groups frames with
[`VTokTokenLayout.segments`], the LLM reads [`VTokTokenLayout.temporal_positions`], and the
diffusion decoder places tokens with [`VTokTokenLayout.residual_token_of_frames`]. They cannot drift apart.

    "vtok":   [S key-frame tokens (key frame k)] [r_1: window 1] [r_2: window 2] ...
              the non-key frames, in order, are cut into windows of `temporal_stride` frames
    "vtok" with key-frame refresh (long videos): one such segment per key frame,
              [S tokens of key 1] [its windows] [S tokens of key 2] [its windows] ... [no-refresh slots]
              a segment runs from its key frame to the frame before the next key frame
    "frames": [S tokens of frame 0] [S tokens of frame 1] ...   (the naive baseline)
    with `video_newline` (LLaVA-OneVision's form): [the video's tokens as above] [newline]
"""

import math
from dataclasses import dataclass

import torch


VIDEO_TOKENIZATIONS = ("vtok", "frames")
KEY_FRAME_REFRESHES = ("none", "interval", "scene_cut")


def max_residual_tokens(num_frames: int, num_segments: int, temporal_stride: int) -> int:
    """The most residual tokens m = `num_segments` segments covering T = `num_frames` frames can have.

    The segments hold r = T - m non-key frames in all. A segment with q >= 1 of them has
    ceil(q / stride) = 1 + floor((q - 1) / stride) windows, so k segments that have any give at most
    k + floor((r - k) / stride) windows; that grows with k, hence k = min(m, r). At stride 1 it is r.
    """
    residual_frames = num_frames - num_segments
    with_residuals = min(num_segments, residual_frames)
    return with_residuals + (residual_frames - with_residuals) // temporal_stride


def count_video_tokens(
    num_frames: int,
    num_key_frame_tokens: int,
    temporal_stride: int = 1,
    video_tokenization: str = "vtok",
    key_frame_refresh: str = "none",
    key_frame_interval: int | None = None,
    max_key_frames: int | None = None,
    video_newline: bool = False,
) -> int:
    """Number of LLM tokens one video of `num_frames` frames costs (placeholders only, no start/end).

    - "vtok": the key frame's S spatial tokens plus one residual token per window of
      `temporal_stride` later frames: `S + ceil((T - 1) / stride)`.
      - `key_frame_refresh="interval"`: a key frame every `key_frame_interval` (K) frames, each segment
        counted as above: `sum over segments of S + ceil((len - 1) / stride)` (exact).
      - `key_frame_refresh="scene_cut"`: the key frames depend on the content, so this is the BOUND
        the processor reserves: the most tokens m <= `max_key_frames` segments can take,
        `max over m of m * S + max_residual_tokens(T, m, stride)` (`m * S + T - m` at stride 1). A video
        with fewer tokens fills the rest with the learned no-refresh token.
    - "frames": naive frame sampling, S tokens for every frame: `S * T`.

    `video_newline` adds one token after the video (LLaVA-OneVision's `image_newline`).
    """
    if num_frames < 1:
        raise ValueError(f"A video needs at least one frame, got num_frames={num_frames}.")
    if video_newline:
        return 1 + count_video_tokens(
            num_frames, num_key_frame_tokens, temporal_stride, video_tokenization, key_frame_refresh, key_frame_interval, max_key_frames
        )
    if video_tokenization == "frames":
        return num_key_frame_tokens * num_frames
    if video_tokenization != "vtok":
        raise ValueError(f"Unknown video_tokenization={video_tokenization!r}. Has to be one of {list(VIDEO_TOKENIZATIONS)}.")
    if key_frame_refresh == "none":
        return num_key_frame_tokens + math.ceil((num_frames - 1) / temporal_stride)
    if key_frame_refresh == "interval":
        if not isinstance(key_frame_interval, int) or key_frame_interval < 1:
            raise ValueError(f"key_frame_refresh='interval' needs key_frame_interval >= 1 (frames per key frame), got {key_frame_interval}.")
        return sum(
            count_video_tokens(min(key_frame_interval, num_frames - start), num_key_frame_tokens, temporal_stride)
            for start in range(0, num_frames, key_frame_interval)
        )
    if key_frame_refresh == "scene_cut":
        if not isinstance(max_key_frames, int) or max_key_frames < 1:
            raise ValueError(f"key_frame_refresh='scene_cut' needs max_key_frames >= 1 (it bounds the token count), got {max_key_frames}.")
        return max(
            m * num_key_frame_tokens + max_residual_tokens(num_frames, m, temporal_stride)
            for m in range(1, min(max_key_frames, num_frames) + 1)
        )
    raise ValueError(f"Unknown key_frame_refresh={key_frame_refresh!r}. Has to be one of {list(KEY_FRAME_REFRESHES)}.")


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
        The frame whose spatial tokens are kept; every other frame belongs to a residual token
        (without key-frame refresh; with it the key frames start their segments, the first at frame 0).
    key_frame_refresh (`str`, defaults to `"none"`):
        `"none"`, `"interval"` (a key frame every `key_frame_interval` frames) or `"scene_cut"` (a key
        frame where the content changed, at most `max_key_frames`).
    key_frame_interval (`int`, *optional*):
        Frames per segment for `"interval"`.
    max_key_frames (`int`, *optional*):
        Most key frames for `"scene_cut"`; fixes the token count the processor reserves.
    video_newline (`bool`, defaults to `False`):
        One more token after the video's tokens, a learned embedding the model appends (LLaVA-OneVision's
        `image_newline`; `VTokConfig.video_newline`).
    """

    key_grid_size: int
    temporal_stride: int = 1
    video_tokenization: str = "vtok"
    key_frame_index: int = 0
    key_frame_refresh: str = "none"
    key_frame_interval: int | None = None
    max_key_frames: int | None = None
    video_newline: bool = False

    @property
    def num_key_frame_tokens(self) -> int:
        """S: spatial tokens of the key frame (and of every frame in "frames" mode)."""
        return self.key_grid_size**2

    def num_video_tokens(self, num_frames: int) -> int:
        """LLM tokens of a `num_frames`-frame video, see [`count_video_tokens`]: exact, or for `"scene_cut"`
        the bound every video of that length is padded to."""
        return count_video_tokens(
            num_frames, self.num_key_frame_tokens, self.temporal_stride, self.video_tokenization,
            self.key_frame_refresh, self.key_frame_interval, self.max_key_frames, self.video_newline,
        )

    def key_frames(self, num_frames: int) -> list[int] | None:
        """The key frames of a fixed policy (`[key_frame_index]`, or every `key_frame_interval`-th frame);
        `None` for `"scene_cut"`, whose key frames the video tokenizer finds in the content."""
        if self.key_frame_refresh == "scene_cut":
            return None
        if self.key_frame_refresh == "interval":
            return list(range(0, num_frames, self.key_frame_interval))
        return [self.key_frame_index]

    def segments(self, num_frames: int, key_frames: list[int] | None = None) -> list[tuple[int, list[list[int]]]]:
        """`(key frame, residual windows)` of each segment, in order. A segment runs from its key frame to the
        frame before the next key frame (without refresh: the whole video around `key_frame_index`); its other
        frames, in order, are cut into windows of `temporal_stride` (the last may be shorter). No frame is
        skipped. `key_frames` are those the tokenizer chose (`"scene_cut"`); a fixed policy's are implied."""
        if self.video_tokenization == "frames":
            return []
        planned = self.key_frames(num_frames)
        if key_frames is None:
            if planned is None:
                raise ValueError(
                    "key_frame_refresh='scene_cut' places key frames where the content changes, so the segments and "
                    "temporal positions need the `key_frames` the video tokenizer chose (its output's key_frames, "
                    "VTokVideoTokenizer.key_frame_indices); stored VTok tokens (video_embeds) do not carry them: "
                    "give such a model pixels."
                )
            key_frames = planned
        self._check_key_frames(num_frames, key_frames, planned)
        bounds = [*key_frames[1:], num_frames] if self.key_frame_refresh != "none" else [num_frames]
        starts = key_frames if self.key_frame_refresh != "none" else [0]
        result = []
        for key, start, end in zip(key_frames, starts, bounds):
            others = [t for t in range(start, end) if t != key]
            windows = [others[i : i + self.temporal_stride] for i in range(0, len(others), self.temporal_stride)]
            result.append((key, windows))
        return result

    def _check_key_frames(self, num_frames: int, key_frames: list[int], planned: list[int] | None) -> None:
        if planned is not None and list(key_frames) != planned:
            raise ValueError(f"key_frames={list(key_frames)} differ from the {self.key_frame_refresh!r} policy's {planned}.")
        if planned is None and (
            not key_frames
            or key_frames[0] != 0
            or any(b <= a for a, b in zip(key_frames, key_frames[1:]))
            or key_frames[-1] >= num_frames
            or len(key_frames) > self.max_key_frames
        ):
            raise ValueError(
                f"key_frames={list(key_frames)} are not scene-cut key frames of a {num_frames}-frame video: increasing, "
                f"starting at frame 0, below {num_frames}, at most max_key_frames={self.max_key_frames}."
            )

    def residual_windows(self, num_frames: int, key_frames: list[int] | None = None) -> list[list[int]]:
        """The frames each residual token covers, segment after segment (see [`segments`])."""
        return [window for _, windows in self.segments(num_frames, key_frames) for window in windows]

    def residual_token_of_frames(self, num_frames: int) -> torch.LongTensor:
        """`(num_frames,)`: for each frame, the index of the residual token that covers it; -1 for the key frame."""
        index = torch.full((num_frames,), -1, dtype=torch.long)
        for token, window in enumerate(self.residual_windows(num_frames)):
            index[window] = token
        return index

    def temporal_positions(self, num_frames: int, key_frames: list[int] | None = None) -> torch.LongTensor:
        """Temporal index of each of a video's tokens, `(num_video_tokens(num_frames),)`.

        "vtok": one step per key frame and per residual window, in token order: 0 for the S key-frame
        tokens, then 1, 2, ... for the residual tokens; with refresh the next segment's key tokens take the
        next step. `"scene_cut"` slots left unused (no-refresh tokens) all take the step after the last.
        "frames": the frame index, repeated for the S tokens of each frame.
        The newline token (`video_newline`) takes the step after the video's last.
        """
        num_spatial = self.num_key_frame_tokens
        if self.video_tokenization == "frames":
            steps = torch.arange(num_frames).repeat_interleave(num_spatial)
            return torch.cat([steps, torch.tensor([num_frames] * self.video_newline, dtype=torch.long)])
        steps, step = [], 0
        for _, windows in self.segments(num_frames, key_frames):
            steps += [step] * num_spatial + list(range(step + 1, step + 1 + len(windows)))
            step += 1 + len(windows)
        steps += [step] * (self.num_video_tokens(num_frames) - len(steps))
        return torch.tensor(steps, dtype=torch.long)


__all__ = ["KEY_FRAME_REFRESHES", "VIDEO_TOKENIZATIONS", "VTokTokenLayout", "count_video_tokens"]
