"""Configuration of VTok models (arXiv 2602.04202, Sec. 3).

Every choice the paper leaves open (temporal position of residual tokens, special tokens, the
form of the visual regression loss) is a field here, so it is saved with the model.
"""

import dataclasses
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .token_layout import KEY_FRAME_REFRESHES, VIDEO_TOKENIZATIONS, VTokTokenLayout


RESIDUAL_REFERENCES = ("key_frame", "previous_frame", "both")
RESIDUAL_POOLINGS = ("mean", "attention", "spatial_map")


class VTokConfig(PreTrainedConfig):
    r"""
    Configuration of [`VTokModel`] and [`VTokForConditionalGeneration`]: a vision encoder, the VTok
    video tokenizer (key-frame spatial tokens + one residual token per later frame), a projector
    and a causal language model that both reads and writes VTok tokens.

    vision_config (`dict` or `PreTrainedConfig`, *optional*, defaults to a SigLIP vision config):
        Any vision encoder config with `image_size`, `patch_size` and `hidden_size`
        (SigLIP, CLIP, ...). Its patch features are F in `r_t = g(pool(F(x_t) - F(x_key)))`.
    text_config (`dict` or `PreTrainedConfig`, *optional*, defaults to a Qwen2 config):
        Any causal language model config (Qwen2, Llama, ...).
    video_tokenization (`str`, *optional*, defaults to `"vtok"`):
        `"vtok"`: S key-frame tokens + one residual token per later frame (or stride window).
        `"frames"`: the naive baseline, S spatial tokens for every frame, through the same code.
    key_frame_index (`int`, *optional*, defaults to 0):
        Which sampled frame keeps its spatial tokens. Every other frame becomes a residual token.
    key_frame_pool_size (`int`, *optional*):
        Side of the grid the key frame's patch features are average-pooled to (4 gives 16
        tokens). `None` keeps every patch.
    key_frame_pooling (`str`, *optional*, defaults to `"average"`):
        Where and how the key frame is pooled to `key_frame_pool_size`. `"average"` (VTok's own): the patch
        features are average-pooled before the projector, so the VTok tokens are the pooled grid (what the
        decoder reads and the LLM learns to write). `"projected_bilinear"` (LLaVA-OneVision's): the key
        frame's VTok tokens keep the whole patch grid, and the model resizes the *projected* grid bilinearly
        to `key_frame_pool_size` (every frame's in "frames" mode). A converted LLaVA-OneVision needs it to
        embed a video exactly as the source did; such a model reads videos but cannot write them (generation
        and the visual loss refuse it), since one written token cannot be resized after the projector.
    video_newline (`bool`, *optional*, defaults to `False`):
        A learned embedding (LLM width) after each video's tokens, as LLaVA-OneVision's `image_newline`; the
        processor counts one more placeholder. Understanding only, like `"projected_bilinear"`.
    temporal_stride (`int`, *optional*, defaults to 1):
        Number of consecutive non-key frames one residual token summarises (their residuals are
        averaged; no frame is skipped). "frames" mode has no residual tokens and needs 1.
    residual_reference (`str`, *optional*, defaults to `"key_frame"`):
        What a non-key frame's features are compared with. `"key_frame"` (the paper's form):
        `F(x_t) - F(x_key)`. `"previous_frame"`: `F(x_t) - F(x_{t-1})`, the motion since the last frame
        (the first frame after the key frame compares with the key frame; frame 0, when it is not the
        key frame, also with the key frame, having no frame before it). A late residual against the key
        frame mixes every motion since then; against the previous frame it reads a turn better and the
        first motion worse (docs/model.md). `"both"`: the two pooled residuals concatenated before g_phi
        (its input width doubles; still one token per window). With `temporal_stride` k > 1 a window's
        residual map is the mean of its frames' maps, each against its own reference: for
        `"previous_frame"` that is `(F(x_last) - F(x_{first - 1})) / k`, the motion across the window.
    residual_pooling (`str`, *optional*, defaults to `"mean"`):
        How a residual feature map is pooled into g_phi's input: `"mean"` over patches, a learned
        `"attention"` pool, or `"spatial_map"`: the map average-pooled to a
        `residual_pool_grid_size` x `residual_pool_grid_size` grid and flattened (g * g * dim values),
        which keeps where the change happened, still one token per window.
    residual_pool_grid_size (`int`, *optional*, defaults to 2):
        g, side of the grid `"spatial_map"` pooling keeps; at most the residual patch grid's side
        (`residual_image_size or image_size` // `patch_size`). Read only by `"spatial_map"`.
    residual_mlp_hidden_size (`int`, *optional*):
        Width of the residual MLP g_phi; defaults to the vision hidden size.
    residual_layer_norm (`bool`, *optional*, defaults to `True`):
        LayerNorm on the pooled residual before g_phi. Pooled residuals are ~20x smaller than the
        features; normalising them made direction learnable 2x faster in our measurement
        (docs/model.md). It removes each token's overall scale, which g_phi could otherwise use.
    temporal_position_embedding (`str`, *optional*, defaults to `"sinusoidal"`):
        Added to each video token before the projector so the LLM knows which frame (window) it
        comes from: `"sinusoidal"` (no length limit) or `"none"` (order only from the LLM's own positions).
    vision_feature_layer (`int`, *optional*, defaults to -1):
        Hidden layer of the vision encoder used as F (LLaVA uses -2 with CLIP).
    vision_feature_select_strategy (`str`, *optional*, defaults to `"full"`):
        `"full"` keeps all positions (SigLIP); `"default"` drops the first (CLIP's CLS token).
    projector_hidden_act (`str`, *optional*, defaults to `"gelu"`):
        Activation of the projector and of g_phi.
    multimodal_projector_bias (`bool`, *optional*, defaults to `True`):
        Whether the projector's linear layers have a bias.
    residual_image_size (`int`, *optional*):
        Side in pixels at which the residuals `F(x_t) - F(x_key)` are taken: every frame, the key frame
        included, is resized to it (bilinear, antialiased) before the encoder, while the key frame's
        spatial tokens stay at `vision_config.image_size`. A non-key frame only feeds one pooled token,
        so a lower resolution (a multiple of the patch size) cuts the encoder's cost per frame by about
        (image_size / residual_image_size)^2. Needs an encoder that interpolates its position
        embeddings (SigLIP, CLIP). `None` (default): the full resolution. "vtok" mode only.
    vision_chunk_size (`int`, *optional*):
        Frames per call of the vision encoder. Each chunk is reduced to its tokens at once, so peak
        memory no longer grows with the number of frames; the tokens are the same as without
        chunking. `None` (default): all frames of a video in one call. It can be changed on a
        loaded model (`model.config.vision_chunk_size = 16`).
    key_frame_refresh (`str`, *optional*, defaults to `"none"`):
        Long videos: start a new key frame (S spatial tokens, then its own residual tokens) along the
        video. `"none"`: one key frame. `"interval"`: frames 0, K, 2K, ... (`key_frame_interval` K); the
        count is exact. `"scene_cut"`: frame 0 and every frame whose `scene_distance` to the current key
        frame exceeds `scene_cut_threshold`, at most `max_key_frames`; the processor reserves the bound
        and unused slots hold a learned no-refresh token. Residuals are taken within each segment
        (against its key frame, or per `residual_reference`). Needs `key_frame_index=0`; the diffusion
        decoder does not read refreshed layouts (docs/model.md, "Long videos: key-frame refresh").
    key_frame_interval (`int`, *optional*):
        Frames per segment for `key_frame_refresh="interval"` (required there, >= 1).
    scene_cut_threshold (`float`, *optional*, defaults to 0.5):
        For `"scene_cut"`: a frame starts a new segment when 1 - the mean over patches of the cosine
        similarity between its patch features and the key frame's (0 same content, ~1 unrelated) is
        above it. Calibrate it on your encoder with `VTokVideoTokenizer.key_frame_indices`.
    max_key_frames (`int`, *optional*, defaults to 4):
        For `"scene_cut"`: the most key frames of a video, which bounds its token count
        (`num_video_tokens` gives the bound). Later cuts stay residuals, with a warning.
    freeze_vision_encoder (`bool`, *optional*, defaults to `True`):
        Keep F frozen, as in the paper; it then runs without building a graph.
    video_token_id (`int`, *optional*, defaults to 151656):
        Placeholder token the processor repeats once per video token.
    video_start_token_id (`int`, *optional*, defaults to 151652):
        Token before a video's placeholders. In generation the LLM writes VTok tokens after it.
    video_end_token_id (`int`, *optional*, defaults to 151653):
        Token after a video's placeholders.
    visual_loss_type (`str`, *optional*, defaults to `"mse"`):
        Regression loss L_visLM on predicted VTok tokens: `"mse"`, `"cosine"` (1 - cos) or
        `"mse+cosine"` (their sum).
    visual_loss_weight (`float`, *optional*, defaults to 1.0):
        lambda_visLM in `L = L_under + lambda_visLM * L_visLM`.

    Example:

    ```python
    >>> from modeling_vtok import VTokConfig, VTokForConditionalGeneration
    >>> config = VTokConfig(key_frame_pool_size=4, temporal_stride=2)
    >>> config.num_video_tokens(num_frames=9)  # 16 key-frame tokens + 4 residual tokens
    20
    ```"""

    model_type = "vtok"
    # What `Trainer.evaluate` / `predict` leave out of the predictions, so `compute_metrics` gets the
    # logits alone: the KV cache (named `cache` from transformers 5.24, `past_key_values` before) and
    # VTok's extra outputs.
    keys_to_ignore_at_inference = ["cache", "past_key_values", "text_loss", "visual_loss", "video_hidden_states"]
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="siglip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    video_tokenization: Literal["vtok", "frames"] = "vtok"
    key_frame_index: int = 0
    key_frame_pool_size: int | None = None
    key_frame_pooling: Literal["average", "projected_bilinear"] = "average"
    video_newline: bool = False
    temporal_stride: int = 1
    residual_reference: Literal["key_frame", "previous_frame", "both"] = "key_frame"
    residual_pooling: Literal["mean", "attention", "spatial_map"] = "mean"
    residual_pool_grid_size: int = 2
    residual_mlp_hidden_size: int | None = None
    residual_layer_norm: bool = True
    temporal_position_embedding: Literal["sinusoidal", "none"] = "sinusoidal"
    vision_feature_layer: int = -1
    vision_feature_select_strategy: Literal["default", "full"] = "full"
    projector_hidden_act: str = "gelu"
    multimodal_projector_bias: bool = True
    residual_image_size: int | None = None
    vision_chunk_size: int | None = None
    key_frame_refresh: Literal["none", "interval", "scene_cut"] = "none"
    key_frame_interval: int | None = None
    scene_cut_threshold: float = 0.5
    max_key_frames: int = 4
    freeze_vision_encoder: bool = True
    video_token_id: int = 151656
    video_start_token_id: int = 151652
    video_end_token_id: int = 151653
    visual_loss_type: Literal["mse", "cosine", "mse+cosine"] = "mse"
    visual_loss_weight: float = 1.0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.residual_mlp_hidden_size is None:
            self.residual_mlp_hidden_size = self.vision_config.hidden_size
        self.validate_architecture()

    def validate_architecture(self):
        """Reject values that would silently give a different tokenization than asked for."""
        choices = {
            "video_tokenization": VIDEO_TOKENIZATIONS,
            "key_frame_pooling": ("average", "projected_bilinear"),
            "residual_reference": RESIDUAL_REFERENCES,
            "residual_pooling": RESIDUAL_POOLINGS,
            "key_frame_refresh": KEY_FRAME_REFRESHES,
            "temporal_position_embedding": ("sinusoidal", "none"),
            "vision_feature_select_strategy": ("default", "full"),
            "visual_loss_type": ("mse", "cosine", "mse+cosine"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Unknown {name}={getattr(self, name)!r}. Has to be one of {list(allowed)}.")
        if self.key_frame_index < 0:
            raise ValueError(f"key_frame_index must be >= 0, got {self.key_frame_index}.")
        if self.temporal_stride < 1:
            raise ValueError(f"temporal_stride must be >= 1, got {self.temporal_stride}.")
        if self.video_tokenization == "frames" and self.temporal_stride != 1:
            raise ValueError(
                f"temporal_stride={self.temporal_stride} only applies to residual tokens, which "
                "video_tokenization='frames' does not have; sample fewer frames instead."
            )
        grid = self.patch_grid_size
        if self.key_frame_pool_size is not None and not 1 <= self.key_frame_pool_size <= grid:
            raise ValueError(
                f"key_frame_pool_size must be None or between 1 and the patch grid side {grid} "
                f"(vision image_size // patch_size), got {self.key_frame_pool_size}."
            )
        self.validate_vision_cost_options()
        self.validate_residual_options()
        self.validate_key_frame_refresh()
        if self.visual_loss_weight < 0:
            raise ValueError(f"visual_loss_weight must be >= 0, got {self.visual_loss_weight}.")

    def validate_vision_cost_options(self):
        """`residual_image_size` and `vision_chunk_size`: sizes the encoder can take."""
        if self.vision_chunk_size is not None and self.vision_chunk_size < 1:
            raise ValueError(f"vision_chunk_size must be None or >= 1, got {self.vision_chunk_size}.")
        size = self.residual_image_size
        if size is None:
            return
        if self.video_tokenization != "vtok":
            raise ValueError(
                f"residual_image_size={size} only applies to residual tokens, which video_tokenization="
                f"{self.video_tokenization!r} does not have."
            )
        image_size, patch_size = self.vision_config.image_size, self.vision_config.patch_size
        if not (patch_size <= size <= image_size and size % patch_size == 0):
            raise ValueError(
                f"residual_image_size must be a multiple of the vision encoder's patch_size={patch_size} "
                f"between {patch_size} and its image_size={image_size}, got {size}."
            )

    def validate_residual_options(self):
        """`residual_reference`, `residual_pooling` and `residual_pool_grid_size` against the rest."""
        if self.video_tokenization == "frames" and (self.residual_reference != "key_frame" or self.residual_pooling == "spatial_map"):
            raise ValueError(
                f"residual_reference={self.residual_reference!r} and residual_pooling={self.residual_pooling!r} shape "
                "residual tokens, which video_tokenization='frames' does not have; leave them at 'key_frame' and 'mean'."
            )
        if self.residual_pool_grid_size < 1:
            raise ValueError(f"residual_pool_grid_size must be >= 1, got {self.residual_pool_grid_size}.")
        grid = self.residual_patch_grid_size
        if self.residual_pooling == "spatial_map" and self.residual_pool_grid_size > grid:
            raise ValueError(
                f"residual_pool_grid_size={self.residual_pool_grid_size} is larger than the patch grid the residuals "
                f"are taken on ({grid}x{grid}: (residual_image_size or image_size) // patch_size); choose at most {grid}."
            )

    def validate_key_frame_refresh(self):
        """`key_frame_refresh` and the fields of its policy."""
        refresh = self.key_frame_refresh
        if refresh == "none":
            return
        if self.video_tokenization != "vtok":
            raise ValueError(
                f"key_frame_refresh={refresh!r} starts new key frames among residual tokens, which video_tokenization="
                f"{self.video_tokenization!r} does not have; leave key_frame_refresh='none'."
            )
        if self.key_frame_index != 0:
            raise ValueError(
                f"key_frame_refresh={refresh!r} starts each segment at its key frame, the first at frame 0; got "
                f"key_frame_index={self.key_frame_index}. Set key_frame_index=0."
            )
        if self.reads_only:
            raise ValueError(
                f"key_frame_refresh={refresh!r} takes several key frames, LLaVA-OneVision's video form "
                f"(key_frame_pooling={self.key_frame_pooling!r}, video_newline={self.video_newline}) one; leave key_frame_refresh='none'."
            )
        if refresh == "interval" and (self.key_frame_interval is None or self.key_frame_interval < 1):
            raise ValueError(f"key_frame_refresh='interval' needs key_frame_interval >= 1 (frames per segment), got {self.key_frame_interval}.")
        if refresh == "scene_cut" and self.max_key_frames < 1:
            raise ValueError(f"max_key_frames must be >= 1, got {self.max_key_frames}.")
        if refresh == "scene_cut" and not 0 < self.scene_cut_threshold < 2:
            raise ValueError(
                f"scene_cut_threshold must be between 0 and 2 (1 - a mean cosine similarity), got {self.scene_cut_threshold}."
            )

    @property
    def patch_grid_size(self) -> int:
        """Side of the vision encoder's square patch grid."""
        return self.vision_config.image_size // self.vision_config.patch_size

    @property
    def residual_patch_grid_size(self) -> int:
        """Side of the patch grid the residuals are taken on (at `residual_image_size` where set)."""
        return (self.residual_image_size or self.vision_config.image_size) // self.vision_config.patch_size

    @property
    def reads_only(self) -> bool:
        """True where the LLM reads videos in LLaVA-OneVision's form (`key_frame_pooling="projected_bilinear"` or
        `video_newline`): its embeddings are not one projected VTok token each, so it cannot write videos."""
        return self.key_frame_pooling == "projected_bilinear" or self.video_newline

    @property
    def residual_references(self) -> tuple[str, ...]:
        """The frames each non-key frame is compared with, in the order their pooled residuals are concatenated."""
        return ("key_frame", "previous_frame") if self.residual_reference == "both" else (self.residual_reference,)

    @property
    def pooled_residual_size(self) -> int:
        """Width of one window's pooled residual, the input of g_phi and of the `residual_mean/std` statistics:
        the vision width, times g * g for `"spatial_map"` pooling, times 2 for `residual_reference="both"`."""
        cells = self.residual_pool_grid_size**2 if self.residual_pooling == "spatial_map" else 1
        return self.vision_config.hidden_size * cells * len(self.residual_references)

    @property
    def token_layout(self) -> VTokTokenLayout:
        """How the LLM's tokens of a video are laid out (count, frames per residual token, temporal positions):
        what the processor expands `<video>` to."""
        return VTokTokenLayout(
            key_grid_size=self.key_frame_pool_size or self.patch_grid_size,
            temporal_stride=self.temporal_stride,
            video_tokenization=self.video_tokenization,
            key_frame_index=self.key_frame_index,
            key_frame_refresh=self.key_frame_refresh,
            # only the fields the policy reads, so that layouts without refresh compare equal
            key_frame_interval=self.key_frame_interval if self.key_frame_refresh == "interval" else None,
            max_key_frames=self.max_key_frames if self.key_frame_refresh == "scene_cut" else None,
            video_newline=self.video_newline,
        )

    @property
    def tokenizer_layout(self) -> VTokTokenLayout:
        """How the video tokenizer's VTok tokens of a video are laid out (what `video_embeds` store and the
        decoder reads). The LLM's [`token_layout`], except in LLaVA-OneVision's form: with
        `key_frame_pooling="projected_bilinear"` the key frame keeps its whole patch grid (the model pools it
        after the projector), and the newline is the model's, not a VTok token."""
        grid = self.patch_grid_size if self.key_frame_pooling == "projected_bilinear" else self.token_layout.key_grid_size
        return dataclasses.replace(self.token_layout, key_grid_size=grid, video_newline=False)

    @property
    def num_key_frame_tokens(self) -> int:
        """S: spatial tokens kept per key frame (and per frame in "frames" mode)."""
        return self.token_layout.num_key_frame_tokens

    def num_video_tokens(self, num_frames: int) -> int:
        """Number of video placeholder tokens the LLM sees for a video of `num_frames` frames."""
        return self.token_layout.num_video_tokens(num_frames)


__all__ = ["VTokConfig"]
