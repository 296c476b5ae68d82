"""The VTok video tokenizer (arXiv 2602.04202, Sec. 3.1): key-frame spatial tokens + one residual
token per later frame.

For a video x_1..x_T with key frame x_k, the vision encoder F gives patch features; the key frame
keeps its (optionally pooled) spatial tokens and every other frame t becomes

    r_t = g_phi( pool( F(x_t) - F(x_k) ) )

so the video costs S + (T - 1) tokens instead of S * T. With `temporal_stride` s > 1 the
residual maps of s consecutive non-key frames are averaged into one token (no frame is skipped).
The "frames" baseline keeps S spatial tokens of every frame through the same module.

Beyond the paper: the residual may be taken against the previous frame too (`residual_reference`)
and pooled to a coarse spatial map (`residual_pooling="spatial_map"`), still one token per window;
long videos may start new key frames every K frames or at scene cuts (`key_frame_refresh`), each
segment laid out like a short clip (docs/model.md).

Two options cut the vision encoder's cost, which dominates VTok's forward (benchmarks/efficiency.py):
`residual_image_size` takes the residuals at a lower resolution (a non-key frame only feeds one
pooled token; the key frame's spatial tokens stay at full resolution), and `vision_chunk_size`
encodes frames a chunk at a time so memory does not grow with the number of frames.
"""

import inspect
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput, logging

from .configuration_vtok import VTokConfig


logger = logging.get_logger(__name__)


@dataclass
class VTokTokenizerOutput(ModelOutput):
    r"""
    tokens (`torch.FloatTensor` of shape `(batch_size, max_num_tokens, token_dim)`):
        Raw VTok tokens per video, zero-padded: S key-frame tokens then the residual tokens
        ("vtok"), or S tokens per frame ("frames"). `token_dim` is the vision hidden size.
    mask (`torch.BoolTensor` of shape `(batch_size, max_num_tokens)`):
        True on real tokens, False on padding.
    positions (`torch.LongTensor` of shape `(batch_size, max_num_tokens)`):
        Temporal index of each token: 0 for key-frame tokens, j for the j-th residual token
        (or the frame index in "frames" mode); with key-frame refresh one step per key frame and window
        ([`VTokTokenLayout.temporal_positions`]).
    key_frames (`list[list[int]]`):
        The key frames of each video (with `key_frame_refresh="scene_cut"`, where the content changed).
    """

    tokens: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None
    positions: torch.LongTensor | None = None
    key_frames: list[list[int]] | None = None


class VTokVideoParts(NamedTuple):
    r"""One video's tokens before standardisation and g_phi ([`VTokVideoTokenizer.unnormalized_parts`]).

    spatial (`torch.FloatTensor` of shape `(num_key_frames * S, dim)`):
        The spatial tokens of each key frame in order (of every frame in "frames" mode).
    pooled (`torch.FloatTensor` of shape `(num_residual_tokens, config.pooled_residual_size)`):
        The pooled residual of each window, segment after segment.
    key_frames (`list[int]`):
        The key frames taken, in order (every frame in "frames" mode).
    distances (`torch.FloatTensor` of shape `(num_frames,)`):
        Each frame's scene distance to its segment's key frame under `"scene_cut"`; zeros otherwise.
    """

    spatial: torch.Tensor
    pooled: torch.Tensor
    key_frames: list[int]
    distances: torch.Tensor


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine code of integer positions, `(...,)` -> `(..., dim)`."""
    half = dim // 2
    freqs = torch.exp(-torch.arange(half, device=positions.device, dtype=torch.float32) * (torch.log(torch.tensor(10000.0)) / max(half, 1)))
    angles = positions.float()[..., None] * freqs
    embedding = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(embedding, (0, dim - 2 * half))


class VTokAttentionPool(nn.Module):
    """Learned single-query attention over patches, an alternative to the mean (config `residual_pooling`)."""

    def __init__(self, config: VTokConfig):
        super().__init__()
        dim = config.vision_config.hidden_size
        self.query = nn.Parameter(torch.zeros(dim))
        self.key = nn.Linear(dim, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: (windows, patches, dim) -> (windows, dim)
        scores = self.key(features) @ self.query / features.shape[-1] ** 0.5
        return (scores.softmax(dim=-1).unsqueeze(-1) * features).sum(dim=1)


class VTokResidualMLP(nn.Module):
    """g_phi: maps a pooled feature residual to one residual token (same width as the features).

    A pooled residual is far smaller than the features themselves (only the patches that changed
    contribute to the mean), so an optional input LayerNorm (`residual_layer_norm`) puts it on the
    scale of the key-frame tokens; without it a small model barely sees the motion at first.
    """

    def __init__(self, config: VTokConfig):
        super().__init__()
        in_size = config.pooled_residual_size  # wider than the features with "spatial_map" pooling or "both" references
        self.norm = nn.LayerNorm(in_size) if config.residual_layer_norm else nn.Identity()
        self.linear_1 = nn.Linear(in_size, config.residual_mlp_hidden_size)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(config.residual_mlp_hidden_size, config.vision_config.hidden_size)

    def forward(self, pooled_residuals: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(self.norm(pooled_residuals))))


class VTokVideoTokenizer(nn.Module):
    """Vision encoder + key-frame pooling + residual pooling + g_phi; turns pixels into VTok tokens."""

    def __init__(self, config: VTokConfig):
        super().__init__()
        self.config = config
        self.vision_tower = AutoModel.from_config(config.vision_config)
        lower_resolution = config.residual_image_size not in (None, config.vision_config.image_size)
        if lower_resolution and "interpolate_pos_encoding" not in inspect.signature(self.vision_tower.forward).parameters:
            raise ValueError(
                f"residual_image_size={config.residual_image_size} needs a vision encoder that can interpolate its "
                f"position embeddings (an `interpolate_pos_encoding` argument, as SigLIP and CLIP have); "
                f"{type(self.vision_tower).__name__} has none. Leave residual_image_size=None."
            )
        self.residual_pool = VTokAttentionPool(config) if config.residual_pooling == "attention" else None
        self.residual_mlp = VTokResidualMLP(config)
        if config.freeze_vision_encoder:
            self.vision_tower.requires_grad_(False)
        if config.key_frame_refresh == "scene_cut":
            # Fills the slots a video with fewer scene cuts than max_key_frames leaves unused, so the LLM always
            # reads the processor's fixed count and generate with a KV cache sees what a full forward sees.
            self.no_refresh_token = nn.Parameter(torch.zeros(config.vision_config.hidden_size))
        # Per-channel statistics that standardise key-frame tokens and pooled residuals; identity
        # until `fit_feature_statistics` measures them. Saved with the weights.
        for kind, size in (("key", config.vision_config.hidden_size), ("residual", config.pooled_residual_size)):
            self.register_buffer(f"{kind}_mean", torch.zeros(size))
            self.register_buffer(f"{kind}_std", torch.ones(size))

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """F: `(num_frames, C, H, W)` -> patch features `(num_frames, grid, grid, dim)`, in one call of the
        vision encoder. Frames are at `vision_config.image_size`, or at `residual_image_size`, where the
        encoder interpolates its position embeddings (SigLIP and CLIP learned them for one size)."""
        config = self.config
        size = frames.shape[-1]
        full_size = config.vision_config.image_size
        assert frames.shape[-2] == size and size in (full_size, config.residual_image_size), f"unexpected frame size {tuple(frames.shape)}"
        resized = {"interpolate_pos_encoding": True} if size != full_size else {}
        last_layer = config.vision_feature_layer == -1
        # A frozen tower runs without a graph, unless something in it trains (e.g. LoRA adapters from peft).
        tower_trains = any(parameter.requires_grad for parameter in self.vision_tower.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and tower_trains):
            outputs = self.vision_tower(pixel_values=frames, output_hidden_states=not last_layer, return_dict=True, **resized)
        # -1 means the tower's output, which includes its post-layernorm where it has one
        features = outputs.last_hidden_state if last_layer else outputs.hidden_states[config.vision_feature_layer]
        if config.vision_feature_select_strategy == "default":
            features = features[:, 1:]  # drop CLS
        grid = size // config.vision_config.patch_size
        if features.shape[1] != grid * grid:
            raise ValueError(
                f"The vision encoder returned {features.shape[1]} patch features per frame, expected "
                f"{grid * grid} from {size}x{size} frames and patch_size={config.vision_config.patch_size}. "
                "Set vision_feature_select_strategy='default' for encoders with a CLS token (CLIP)."
            )
        return features.unflatten(1, (grid, grid))

    def spatial_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """`(frames, grid, grid, dim)` -> `(frames, S, dim)`, average-pooled to the tokenizer layout's key grid
        (`key_frame_pool_size`; the whole grid where the model pools after the projector)."""
        pool_size = self.config.tokenizer_layout.key_grid_size
        if pool_size != features.shape[1]:
            features = F.adaptive_avg_pool2d(features.permute(0, 3, 1, 2), pool_size).permute(0, 2, 3, 1)
        return features.flatten(1, 2)

    def pool(self, window_maps: torch.Tensor) -> torch.Tensor:
        """`(windows, references, grid, grid, dim)` residual maps -> `(windows, config.pooled_residual_size)`:
        each reference's map pooled (mean, attention pool, or a g x g "spatial_map" flattened in raster
        order, channels last), the references concatenated in `config.residual_references` order."""
        num_windows = window_maps.shape[0]
        maps = window_maps.flatten(0, 1)  # (windows * references, grid, grid, dim)
        if self.config.residual_pooling == "spatial_map":
            cells = F.adaptive_avg_pool2d(maps.permute(0, 3, 1, 2), self.config.residual_pool_grid_size)
            pooled = cells.permute(0, 2, 3, 1)  # (windows * references, g, g, dim)
        elif self.residual_pool is not None:
            pooled = self.residual_pool(maps.flatten(1, 2))
        else:
            pooled = maps.flatten(1, 2).mean(dim=1)
        return pooled.reshape(num_windows, -1)

    def residual_resolution(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames `(N, C, H, W)` at `residual_image_size`, the resolution every residual is taken at."""
        size = self.config.residual_image_size
        if size is None or size == frames.shape[-1]:
            return frames
        return F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    def chunks(self, num_frames: int) -> list[range]:
        """The frames of each vision encoder call: `vision_chunk_size` at a time, or all at once."""
        chunk_size = self.config.vision_chunk_size or num_frames
        return [range(start, min(start + chunk_size, num_frames)) for start in range(0, num_frames, chunk_size)]

    def key_frame_tokens(self, frames: torch.Tensor, index: int, residual_features: torch.Tensor) -> torch.Tensor:
        """The spatial tokens `(S, dim)` of key frame `index`, from its features at the residual resolution
        `(grid, grid, dim)` where that is the full one; else encoded again at full resolution."""
        if self.config.residual_image_size in (None, frames.shape[-1]):
            return self.spatial_tokens(residual_features[None])[0]
        return self.spatial_tokens(self.encode_frames(frames[index : index + 1]))[0]

    @staticmethod
    def scene_distance(features: torch.Tensor, key_features: torch.Tensor) -> torch.Tensor:
        """1 - the mean over patches of the cosine similarity of two frames' patch features `(grid, grid, dim)`.

        0 for the same content, about 1 for unrelated content (2 at most). Cosine, not a Euclidean
        distance, so that the threshold does not depend on the encoder's feature scale; per patch, then
        averaged, so that a small moving object changes it little and a new scene everywhere a lot."""
        return 1 - F.cosine_similarity(features.float(), key_features.float(), dim=-1).mean()

    def unnormalized_parts(self, frames: torch.Tensor) -> VTokVideoParts:
        """One video's frames `(T, C, H, W)` -> its [`VTokVideoParts`]: the spatial tokens of its key frames and
        its pooled residuals, before standardisation and g_phi. Each non-key frame's residual map is taken
        against each of `config.residual_references` (its segment's key frame, the frame before it), a
        window's maps are averaged and then pooled.

        The encoder sees `vision_chunk_size` frames per call and each chunk is reduced to its tokens
        at once, so only one chunk's features (plus the current key frame's, the previous frame's and one
        open stride window) are held, however long the video. The tokens equal those of encoding every
        frame in one call. Key-frame refresh streams too: a frame starts a new segment when the policy
        says so (`"interval"`) or when its [`scene_distance`] to the current key frame exceeds
        `scene_cut_threshold` (`"scene_cut"`, while fewer than `max_key_frames` key frames were taken).
        """
        config, num_frames = self.config, len(frames)
        distances = frames.new_zeros(num_frames, dtype=torch.float32)
        if config.video_tokenization == "frames":
            spatial = torch.cat([self.spatial_tokens(self.encode_frames(frames[chunk])).flatten(0, 1) for chunk in self.chunks(num_frames)])
            return VTokVideoParts(spatial, spatial.new_zeros(0, config.pooled_residual_size), list(range(num_frames)), distances)
        layout = config.tokenizer_layout
        planned = layout.key_frames(num_frames)  # None: scene cuts, found below
        first_key = layout.key_frame_index
        chunks = self.chunks(num_frames)
        # The key frame's features come from the same encoder call as its chunk's frames, so a frame
        # identical to the key frame gives a residual of exactly zero.
        key_chunk = next(chunk for chunk in chunks if first_key in chunk)
        key_chunk_features = self.encode_frames(self.residual_resolution(frames[key_chunk]))
        key_features = key_chunk_features[first_key - key_chunk.start]
        key_frames, spatial = [first_key], [self.key_frame_tokens(frames, first_key, key_features)]

        stride, references = layout.temporal_stride, config.residual_references
        previous_features = key_features  # frame 0, when it is not the key frame, has no frame before it
        pooled, open_window, finished = [], [], []
        for chunk in chunks:
            features = key_chunk_features if chunk == key_chunk else self.encode_frames(self.residual_resolution(frames[chunk]))
            for frame, frame_features in zip(chunk, features):
                if frame == first_key:
                    previous_features = frame_features
                    continue
                if planned is not None:
                    new_segment = frame in planned
                else:
                    distances[frame] = self.scene_distance(frame_features, key_features)
                    new_segment = bool(distances[frame] > config.scene_cut_threshold)
                    if new_segment and len(key_frames) == config.max_key_frames:
                        logger.warning_once(
                            f"A video has more scene cuts than max_key_frames={config.max_key_frames} allows; the "
                            "frames after the last key frame stay residuals of its segment."
                        )
                        new_segment = False
                if new_segment:  # the open window ends with its segment
                    if open_window:
                        finished.append(torch.stack(open_window).mean(dim=0))
                        open_window = []
                    key_features = frame_features
                    key_frames.append(frame)
                    spatial.append(self.key_frame_tokens(frames, frame, frame_features))
                else:
                    reference_features = {"key_frame": key_features, "previous_frame": previous_features}
                    # (references, grid, grid, dim): the frame's residual map against each reference
                    open_window.append(torch.stack([frame_features - reference_features[name] for name in references]))
                    if len(open_window) == stride:
                        finished.append(torch.stack(open_window).mean(dim=0))  # a window's residual maps are averaged
                        open_window = []
                previous_features = frame_features
            if open_window and chunk.stop == num_frames:  # the video's last window may be shorter
                finished.append(torch.stack(open_window).mean(dim=0))
            if finished:
                pooled.append(self.pool(torch.stack(finished)))
                finished = []
        pooled = torch.cat(pooled) if pooled else key_features.new_zeros(0, config.pooled_residual_size)
        assert len(pooled) == len(layout.residual_windows(num_frames, key_frames)), "tokenizer and token layout disagree on windows"
        return VTokVideoParts(torch.cat(spatial), pooled, key_frames, distances)

    @torch.no_grad()
    def key_frame_indices(self, frames: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        r"""The key frames the tokenizer takes for one video, and each frame's scene distance, to calibrate
        `scene_cut_threshold`.

        frames (`torch.FloatTensor` of shape `(num_frames, channels, height, width)`):
            One video's frames, as the video processor gives them.

        Returns the key frames (a list of frame indices, the first frame's first) and `(num_frames,)` distances:
        for `"scene_cut"`, each frame's [`scene_distance`] to the key frame of its segment at the time it was
        seen (0 for the first key frame; a new key frame shows the distance that made it one); zeros for the
        fixed policies, which never measure it.
        """
        self._check_videos(frames[None], None)
        parts = self.unnormalized_parts(frames.to(self.key_mean.dtype))
        return parts.key_frames, parts.distances

    def standardize(self, values: torch.Tensor, kind: str) -> torch.Tensor:
        """`(values - mean) / std` with the `kind` ("key" or "residual") statistics."""
        return (values - getattr(self, f"{kind}_mean")) / getattr(self, f"{kind}_std")

    @torch.no_grad()
    def fit_feature_statistics(self, pixel_values_videos: torch.Tensor, video_lengths: torch.Tensor | None = None) -> None:
        r"""Measures the per-channel mean and std of key-frame tokens and of pooled residuals on
        these videos (a few hundred training clips), so tokens reach the projector standardised.

        Why: the features of an encoder that was never trained on the data (here: no pretrained
        weights offline) vary little between videos compared with their constant part, and the
        LLM then barely sees the video. Measured: a small model learned "what color is the X?"
        on single-shape clips in 70 steps with standardised tokens, and stayed at chance for 150
        without (docs/model.md). The statistics are buffers, saved with the weights, as a VAE's
        scaling factor; with a pretrained encoder it is optional.
        """
        lengths = self._check_videos(pixel_values_videos, video_lengths)
        pixel_values_videos = pixel_values_videos.to(self.key_mean.dtype)
        parts = [self.unnormalized_parts(video[:length]) for video, length in zip(pixel_values_videos, lengths)]
        for kind, values in (("key", torch.cat([p.spatial for p in parts])), ("residual", torch.cat([p.pooled for p in parts]))):
            if len(values) > 1:
                getattr(self, f"{kind}_mean").copy_(values.float().mean(dim=0))
                getattr(self, f"{kind}_std").copy_(values.float().std(dim=0).clamp_min(1e-4))

    def _check_videos(self, pixel_values_videos: torch.Tensor, video_lengths: torch.Tensor | None) -> list[int]:
        """Checks the frame size and the lengths; returns each video's frame count."""
        batch_size, max_frames = pixel_values_videos.shape[:2]
        if batch_size == 0 or max_frames == 0:
            raise ValueError(f"pixel_values_videos of shape {tuple(pixel_values_videos.shape)} holds no video frames.")
        size = self.config.vision_config.image_size
        if tuple(pixel_values_videos.shape[-2:]) != (size, size):
            raise ValueError(
                f"Frames are {pixel_values_videos.shape[-2]}x{pixel_values_videos.shape[-1]} but the vision encoder expects "
                f"{size}x{size} (vision_config.image_size); resize them with VTokVideoProcessor."
            )
        lengths = [max_frames] * batch_size if video_lengths is None else [int(length) for length in video_lengths]
        if len(lengths) != batch_size or min(lengths) < 1 or max(lengths) > max_frames:
            raise ValueError(
                f"video_lengths={lengths} does not fit pixel_values_videos of shape {tuple(pixel_values_videos.shape)}: "
                f"one length per video, each between 1 and {max_frames}."
            )
        key_index = self.config.key_frame_index
        if self.config.video_tokenization == "vtok" and key_index >= min(lengths):
            raise ValueError(f"key_frame_index={key_index} needs at least {key_index + 1} frames, got video_lengths={lengths}.")
        return lengths

    def forward(self, pixel_values_videos: torch.Tensor, video_lengths: torch.Tensor | None = None) -> VTokTokenizerOutput:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch_size, max_num_frames, channels, height, width)`):
            Frames of each video, zero-padded after its last frame.
        video_lengths (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            True frame count of each video; `None` means every video fills `max_num_frames`.
        """
        lengths = self._check_videos(pixel_values_videos, video_lengths)
        layout = self.config.tokenizer_layout
        tokens, positions, key_frames = [], [], []
        for video, length in zip(pixel_values_videos, lengths):  # padding frames are never encoded
            parts = self.unnormalized_parts(video[:length])
            spatial = self.standardize(parts.spatial, "key")
            residual = self.residual_mlp(self.standardize(parts.pooled, "residual")).to(spatial.dtype)
            if self.config.video_tokenization == "frames":
                video_tokens = [spatial]  # (T * S, dim)
            else:  # [S key-frame tokens][the segment's residual tokens], segment after segment
                video_tokens, num_spatial, done = [], layout.num_key_frame_tokens, 0
                for segment, (_, windows) in enumerate(layout.segments(length, parts.key_frames)):
                    video_tokens += [spatial[segment * num_spatial : (segment + 1) * num_spatial], residual[done : done + len(windows)]]
                    done += len(windows)
                unused = layout.num_video_tokens(length) - sum(map(len, video_tokens))
                if unused:  # "scene_cut": fewer key frames than the bound reserves
                    video_tokens.append(self.no_refresh_token.to(spatial.dtype).expand(unused, -1))
            tokens.append(torch.cat(video_tokens))
            positions.append(layout.temporal_positions(length, parts.key_frames if self.config.video_tokenization == "vtok" else None))
            key_frames.append(parts.key_frames)
        assert [len(t) for t in tokens] == [len(p) for p in positions], "tokenizer and token count formula disagree"
        device = pixel_values_videos.device
        return VTokTokenizerOutput(
            tokens=nn.utils.rnn.pad_sequence(tokens, batch_first=True),
            mask=nn.utils.rnn.pad_sequence([torch.ones(len(p), dtype=torch.bool) for p in positions], batch_first=True).to(device),
            positions=nn.utils.rnn.pad_sequence(positions, batch_first=True).to(device),
            key_frames=key_frames,
        )


__all__ = ["VTokVideoTokenizer", "VTokTokenizerOutput"]
