"""The VTok video decoder (arXiv 2602.04202, Sec. 3.3): a diffusion transformer that renders VTok tokens
into frames, trained with flow matching (L_dec).

Built on diffusers' `WanTransformer3DModel`. The tokens reach it through one or both of two paths
(`conditioning`):

- "concat": the key frame's S = g * g tokens are laid out on their g x g grid, projected to a few
  channels, upsampled to the sample's height x width and concatenated to the input channels of every
  frame; each residual token is projected and broadcast over the frames of its window (the key frame
  gets a learned embedding). The network sees *where* things are without having to learn it
  (`key_grid_frames="key_frame"` lays the grid on the key frame only: see that argument). For the
  "frames" baseline (`video_tokenization="frames"`: S tokens of every frame, no residual tokens) each
  frame's own grid is laid out on that frame, and every frame gets the key frame's embedding.
- "cross_attention": the tokens (plus a sinusoidal index embedding, so the key frame's raster order
  survives) are Wan's `encoder_hidden_states`.

Flow matching follows `FlowMatchEulerDiscreteScheduler`: `x_t = (1 - sigma) * x_0 + sigma * noise`,
timestep `t = sigma * num_train_timesteps`, and the scheduler steps along the velocity
`v = noise - x_0`. With `prediction_type="sample"` the network predicts x_0 and
[`~VTokVideoDecoder.velocity`] turns it into v. See docs/generation.md for the measurements behind
the defaults.

[`~VTokVideoDecoder.from_wan_pretrained`] starts from a pretrained Wan text-to-video transformer instead:
its weights are kept, and every new path starts at zero (ControlNet's "zero convolution"), so at step 0 the
decoder is exactly the pretrained Wan given an all-zero text context.
"""

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models import ModelMixin, WanTransformer3DModel
from diffusers.models.attention import AttentionMixin
from diffusers.utils import BaseOutput
from torch import nn

from .configuration_vtok import VTokConfig
from .token_layout import VIDEO_TOKENIZATIONS, VTokTokenLayout
from .tokenizer_vtok import sinusoidal_embedding


CONDITIONINGS = ("concat", "cross_attention", "both")
KEY_GRID_FRAMES = ("every_frame", "key_frame")
PREDICTION_TYPES = ("sample", "velocity")


@dataclass
class VTokVideoDecoderOutput(BaseOutput):
    r"""
    sample (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
        The network's prediction for the noisy input: the clean sample x_0 (`prediction_type="sample"`)
        or the flow velocity `noise - x_0` (`prediction_type="velocity"`).
    """

    sample: torch.FloatTensor


class VTokVideoDecoder(ModelMixin, ConfigMixin, AttentionMixin):
    r"""
    A diffusion decoder conditioned on VTok tokens `(batch_size, S + R, token_dim)`: the key frame's
    S = `key_grid_size`**2 spatial tokens (raster order), then R = ceil((T - 1) / `temporal_stride`)
    residual tokens ([`VTokTokenLayout`]); or, for the "frames" baseline, on S tokens of every frame
    `(batch_size, S * T, token_dim)`. Build it with [`~VTokVideoDecoder.from_model_config`] so its
    layout matches the model's, or on a pretrained Wan with [`~VTokVideoDecoder.from_wan_pretrained`].
    Its Wan transformer's attention processors are reachable as diffusers' `AttentionMixin` offers them
    (`attn_processors`, `set_attn_processor`, `fuse_qkv_projections`).

    token_dim (`int`, defaults to 32):
        D, the VTok token size (`VTokConfig.vision_config.hidden_size`).
    key_grid_size (`int`, defaults to 4):
        g, side of the key frame's token grid (`VTokConfig.key_frame_pool_size` or the patch grid side).
    temporal_stride (`int`, defaults to 1):
        Later frames per residual token (`VTokConfig.temporal_stride`).
    key_frame_index (`int`, defaults to 0):
        The frame the key-frame tokens describe (`VTokConfig.key_frame_index`).
    video_tokenization (`str`, defaults to `"vtok"`):
        `"vtok"`, or `"frames"`: the tokens are S spatial tokens of every frame (`VTokConfig.video_tokenization`),
        what the frame-sampling baseline's LLM writes.
    in_channels (`int`, defaults to 3):
        Channels of the sample: 3 in pixel space, the VAE's `z_dim` in latent space.
    sample_size (`int`, defaults to 32):
        Default output height and width in pixels (what the pipeline renders when none is given).
    patch_size (`tuple[int, int, int]`, defaults to `(1, 2, 2)`):
        Wan's (frames, height, width) patch size.
    num_layers (`int`, defaults to 2), num_attention_heads (`int`, defaults to 2), attention_head_dim (`int`, defaults to 16):
        Size of the Wan transformer. `attention_head_dim` must leave room for Wan's 3-axis rotary embedding (>= 6).
    ffn_dim (`int`, *optional*):
        Feed-forward width of the Wan blocks; defaults to 4 x the inner dim.
    freq_dim (`int`, defaults to 64):
        Size of the sinusoidal timestep embedding.
    conditioning (`str`, defaults to `"both"`):
        `"concat"`, `"cross_attention"` or `"both"` (see the module docstring).
    concat_channels (`int`, defaults to 4):
        Channels the key-frame grid and the residual tokens are each projected to on the "concat" path.
    key_grid_frames (`str`, defaults to `"every_frame"`):
        Which frames the key frame's grid is laid on (the "concat" path of a "vtok" decoder): `"every_frame"`,
        or `"key_frame"` (zeros on the others). On every frame the grid shows each later frame where its
        content *was*, but the key frame is the only one whose pixels it matches, so one projection serves a
        frame it describes exactly and frames it does not; on the key frame alone it says "copy here" only
        where that holds, and later frames read the content through Wan's attention across frames.
    prediction_type (`str`, defaults to `"sample"`):
        What the network predicts: `"sample"` (x_0) or `"velocity"` (`noise - x_0`).
    conditioning_dropout (`float`, defaults to 0.1):
        Probability, per training example, of replacing its tokens by the learned null token so that
        classifier-free guidance has an unconditional model.
    num_train_timesteps (`int`, defaults to 1000):
        `t = sigma * num_train_timesteps`, as in `FlowMatchEulerDiscreteScheduler`.
    rope_max_seq_len (`int`, defaults to 1024):
        Longest axis Wan's rotary embedding covers.
    text_dim (`int`, *optional*):
        Width of Wan's cross-attention context. `None` feeds the tokens (`token_dim`) directly; otherwise a
        linear `context_proj` maps them to `text_dim` (4096 for a pretrained Wan, whose context is umT5's).
    cross_attn_norm (`bool`, defaults to `True`), qk_norm (`str`, *optional*, defaults to `"rms_norm_across_heads"`), eps (`float`, defaults to 1e-6):
        Passed to `WanTransformer3DModel` (a pretrained Wan's values are copied by `from_wan_pretrained`).
    """

    _supports_gradient_checkpointing = True
    # The transformer is Wan's: device maps, layerwise casting and regional compilation treat it as Wan does.
    _no_split_modules = WanTransformer3DModel._no_split_modules
    _skip_layerwise_casting_patterns = WanTransformer3DModel._skip_layerwise_casting_patterns
    _repeated_blocks = WanTransformer3DModel._repeated_blocks

    @register_to_config
    def __init__(
        self,
        token_dim: int = 32,
        key_grid_size: int = 4,
        temporal_stride: int = 1,
        key_frame_index: int = 0,
        video_tokenization: str = "vtok",
        in_channels: int = 3,
        sample_size: int = 32,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_layers: int = 2,
        num_attention_heads: int = 2,
        attention_head_dim: int = 16,
        ffn_dim: int | None = None,
        freq_dim: int = 64,
        conditioning: str = "both",
        concat_channels: int = 4,
        key_grid_frames: str = "every_frame",
        prediction_type: str = "sample",
        conditioning_dropout: float = 0.1,
        num_train_timesteps: int = 1000,
        rope_max_seq_len: int = 1024,
        text_dim: int | None = None,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
    ):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"Unknown conditioning={conditioning!r}. Has to be one of {list(CONDITIONINGS)}.")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"Unknown prediction_type={prediction_type!r}. Has to be one of {list(PREDICTION_TYPES)}.")
        if not 0.0 <= conditioning_dropout < 1.0:
            raise ValueError(f"conditioning_dropout must be in [0, 1), got {conditioning_dropout}.")
        if video_tokenization not in VIDEO_TOKENIZATIONS:
            raise ValueError(f"Unknown video_tokenization={video_tokenization!r}. Has to be one of {list(VIDEO_TOKENIZATIONS)}.")
        if key_grid_frames not in KEY_GRID_FRAMES:
            raise ValueError(f"Unknown key_grid_frames={key_grid_frames!r}. Has to be one of {list(KEY_GRID_FRAMES)}.")
        if key_grid_frames == "key_frame" and (video_tokenization == "frames" or conditioning == "cross_attention"):
            raise ValueError(
                f"key_grid_frames='key_frame' places the key frame's grid of the \"concat\" path; this decoder has "
                f"video_tokenization={video_tokenization!r} and conditioning={conditioning!r} (a \"frames\" decoder lays "
                "every frame's own grid on it; \"cross_attention\" lays none)."
            )
        inner_dim = num_attention_heads * attention_head_dim
        self.uses_concat = conditioning in ("concat", "both")
        self.uses_cross_attention = conditioning in ("cross_attention", "both")

        # Stands in for every token of an example dropped for classifier-free guidance.
        self.null_token = nn.Parameter(torch.zeros(token_dim))
        extra_channels = 0
        if self.uses_concat:
            self.key_frame_proj = nn.Linear(token_dim, concat_channels)
            self.residual_proj = nn.Linear(token_dim, concat_channels)
            # The key frame has no residual token; it gets this instead.
            self.key_frame_residual = nn.Parameter(torch.zeros(concat_channels))
            extra_channels = 2 * concat_channels
        if not self.uses_cross_attention:
            # Wan cross-attends in every block; without token cross-attention it reads one learned vector.
            self.null_context = nn.Parameter(torch.zeros(1, 1, token_dim))
        # Tokens -> Wan's context width, when they differ (a pretrained Wan reads 4096-wide umT5 states).
        self.context_proj = nn.Linear(token_dim, text_dim) if text_dim is not None else None

        self.transformer = WanTransformer3DModel(
            patch_size=tuple(patch_size),
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels + extra_channels,
            out_channels=in_channels,
            text_dim=text_dim or token_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim or 4 * inner_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            rope_max_seq_len=rope_max_seq_len,
        )

    @classmethod
    def from_model_config(cls, config: VTokConfig, **kwargs) -> "VTokVideoDecoder":
        """A decoder for the tokens of the VTok model of `config` (or of its "frames" baseline); `kwargs` set the
        rest (size, conditioning, ...)."""
        if config.key_frame_refresh != "none":
            raise ValueError(
                f"The diffusion decoder renders one key frame's tokens and its residual tokens; the model has "
                f"key_frame_refresh={config.key_frame_refresh!r} (several segments), which video generation does not "
                "support. Generate with a model of key_frame_refresh='none'."
            )
        layout = config.tokenizer_layout
        return cls(
            token_dim=config.vision_config.hidden_size,
            key_grid_size=layout.key_grid_size,
            temporal_stride=layout.temporal_stride,
            key_frame_index=layout.key_frame_index,
            video_tokenization=layout.video_tokenization,
            **kwargs,
        )

    @classmethod
    def from_wan_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        config: VTokConfig,
        subfolder: str | None = None,
        **kwargs,
    ) -> "VTokVideoDecoder":
        r"""
        A decoder for the tokens of the VTok model of `config`, on a pretrained Wan text-to-video transformer.

        pretrained_model_name_or_path (`str` or `os.PathLike`):
            A `WanTransformer3DModel` folder (or a Wan pipeline folder with `subfolder="transformer"`).
            Its weights are kept bitwise; its `in_channels` must be the VAE's `z_dim` (the pipeline checks).
        config ([`VTokConfig`]):
            The VTok model whose tokens the decoder renders (token width and layout).
        kwargs:
            `conditioning`, `concat_channels`, `conditioning_dropout`, `sample_size`. `prediction_type`
            defaults to `"velocity"`, what Wan was trained to predict.

        Zero-initialised, so the pretrained Wan is the starting point: the input channels the "concat" path
        adds to Wan's patch embedding (`transformer.patch_embedding.weight[:, in_channels:]`, as diffusers'
        InstructPix2Pix and Wan image-to-video training widen a pretrained input), `context_proj` (the
        tokens reach Wan as an all-zero context until it trains) and the learned null vectors.
        """
        wan = WanTransformer3DModel.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder)
        wan_config = wan.config
        if wan_config.image_dim is not None or wan_config.added_kv_proj_dim is not None or (
            wan_config.out_channels not in (None, wan_config.in_channels)
        ):
            raise ValueError(
                f"{pretrained_model_name_or_path} is an image-conditioned Wan (image_dim={wan_config.image_dim}, "
                f"added_kv_proj_dim={wan_config.added_kv_proj_dim}, in_channels={wan_config.in_channels}, "
                f"out_channels={wan_config.out_channels}); the VTok decoder starts from a text-to-video Wan transformer."
            )
        if wan_config.pos_embed_seq_len is not None:
            raise ValueError(f"{pretrained_model_name_or_path} uses pos_embed_seq_len, which only image-conditioned Wan models set.")
        wan_sizes = ("patch_size", "num_attention_heads", "attention_head_dim", "in_channels", "freq_dim", "ffn_dim",
                     "num_layers", "rope_max_seq_len", "text_dim", "cross_attn_norm", "qk_norm", "eps")
        for name in set(wan_sizes) & set(kwargs):
            raise ValueError(f"`{name}` comes from the Wan transformer's config; it cannot be overridden.")
        kwargs.setdefault("prediction_type", "velocity")
        decoder = cls.from_model_config(config, **{name: wan_config[name] for name in wan_sizes}, **kwargs)

        state = wan.state_dict()
        patch_weight = state["patch_embedding.weight"]
        widened = patch_weight.new_zeros(decoder.transformer.patch_embedding.weight.shape)
        widened[:, : patch_weight.shape[1]] = patch_weight
        state["patch_embedding.weight"] = widened
        decoder.transformer.load_state_dict(state)
        with torch.no_grad():
            for parameter in decoder.context_proj.parameters():
                parameter.zero_()
        return decoder

    @property
    def token_layout(self) -> VTokTokenLayout:
        """The layout of the tokens this decoder reads."""
        config = self.config
        return VTokTokenLayout(config.key_grid_size, config.temporal_stride, config.video_tokenization, config.key_frame_index)

    @property
    def num_key_frame_tokens(self) -> int:
        return self.token_layout.num_key_frame_tokens

    def num_video_tokens(self, num_frames: int) -> int:
        """S + ceil((T - 1) / temporal_stride) (S * T for "frames"): the token count the decoder expects for `num_frames` frames."""
        return self.token_layout.num_video_tokens(num_frames)

    def null_tokens(self, batch_size: int, num_tokens: int) -> torch.Tensor:
        """The unconditional input `(batch_size, num_tokens, token_dim)` used for classifier-free guidance."""
        with self._parameters_on_execution_device():
            return self.null_token.expand(batch_size, num_tokens, -1).clone()

    @contextlib.contextmanager
    def _parameters_on_execution_device(self):
        """Makes this module's own parameters readable outside `forward`. Under accelerate's offloading
        (`enable_sequential_cpu_offload`) they sit on the "meta" device and only the hook accelerate puts on
        the module brings them to the execution device; run that hook as a forward call would."""
        hook = getattr(self, "_hf_hook", None)
        if hook is None:
            yield
            return
        hook.pre_forward(self)
        try:
            yield
        finally:
            hook.post_forward(self, None)

    def _check_tokens(self, video_tokens: torch.Tensor, num_frames: int):
        expected = self.num_video_tokens(num_frames)
        if video_tokens.dim() != 3 or video_tokens.shape[1:] != (expected, self.config.token_dim):
            layout = (f"S={self.num_key_frame_tokens} tokens per frame" if self.config.video_tokenization == "frames" else
                      f"S={self.num_key_frame_tokens} key-frame tokens + one per {self.config.temporal_stride} later frames")  # fmt: skip
            raise ValueError(
                f"`video_tokens` must have shape (batch_size, {expected}, {self.config.token_dim}) for "
                f"num_frames={num_frames} ({layout}), got {tuple(video_tokens.shape)}."
            )

    def _concat_conditioning(self, video_tokens: torch.Tensor, num_frames: int, latent_shape) -> torch.Tensor:
        """Tokens -> extra input channels `(batch_size, 2 * concat_channels, F, H, W)`."""
        batch_size = video_tokens.shape[0]
        num_latent_frames, height, width = latent_shape
        g, S = self.config.key_grid_size, self.num_key_frame_tokens
        num_grids = num_frames if self.config.video_tokenization == "frames" else 1  # the key frame's, or every frame's
        token_of_frame = self.token_layout.residual_token_of_frames(num_frames).to(video_tokens.device)  # (T,), -1: key frame
        grids = self.key_frame_proj(video_tokens[:, : num_grids * S])  # (B, n * S, c)
        grids = grids.unflatten(1, (num_grids, S)).transpose(2, 3).reshape(batch_size * num_grids, -1, g, g)  # raster order -> (B * n, c, g, g)
        grids = F.interpolate(grids, size=(height, width), mode="nearest").unflatten(0, (batch_size, num_grids))  # (B, n, c, H, W)
        if num_grids == 1:
            key = grids.expand(-1, num_latent_frames, -1, -1, -1)
            if self.config.key_grid_frames == "key_frame":
                is_key_frame = (token_of_frame == -1).to(grids.dtype)[None, :, None]  # (1, T, 1)
                key = key * self._per_latent_frame(is_key_frame, num_latent_frames)[..., None, None]  # (1, F, 1, 1, 1)
        else:
            key = self._per_latent_frame(grids, num_latent_frames)
        key = key.transpose(1, 2)  # (B, c, F, H, W)

        residual = self.residual_proj(video_tokens[:, num_grids * S :])  # (B, R, c)
        # Row 0: the key frame's learned embedding; row j + 1: residual token j.
        table = torch.cat([self.key_frame_residual.to(residual.dtype).expand(batch_size, 1, -1), residual], dim=1)
        per_frame = self._per_latent_frame(table[:, token_of_frame + 1], num_latent_frames)  # (B, F, c): each frame reads its window's token
        per_frame = per_frame.transpose(1, 2)[..., None, None].expand(-1, -1, -1, height, width)
        return torch.cat([key, per_frame], dim=1)

    @staticmethod
    def _per_latent_frame(per_frame: torch.Tensor, num_latent_frames: int) -> torch.Tensor:
        """`(B, T, ...)` values of the T frames -> `(B, F, ...)` of the latent frames. A VAE keeps frame 0 alone
        and compresses the rest; the frames each latent frame holds are averaged."""
        if per_frame.shape[1] == num_latent_frames:
            return per_frame
        flat = per_frame.flatten(2)  # (B, T, D)
        rest = flat[:, :0] if num_latent_frames == 1 else F.adaptive_avg_pool1d(flat[:, 1:].transpose(1, 2), num_latent_frames - 1).transpose(1, 2)
        return torch.cat([flat[:, :1], rest], dim=1).unflatten(2, per_frame.shape[2:])

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        video_tokens: torch.Tensor,
        num_frames: int | None = None,
        return_dict: bool = True,
    ) -> VTokVideoDecoderOutput | tuple:
        r"""
        hidden_states (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
            The noisy sample x_t (pixels in [-1, 1], or normalised VAE latents).
        timestep (`torch.Tensor` of shape `(batch_size,)` or a scalar):
            `sigma * num_train_timesteps`.
        video_tokens (`torch.FloatTensor` of shape `(batch_size, S + R, token_dim)`):
            VTok tokens (from the tokenizer, from `generate_video_tokens`, or `null_tokens` for guidance).
        num_frames (`int`, *optional*):
            Frame count T of the video the tokens describe. Defaults to the sample's frame count (pixel
            space); pass it when a VAE compressed time.
        """
        batch_size, _, num_latent_frames, height, width = hidden_states.shape
        num_frames = num_latent_frames if num_frames is None else num_frames
        self._check_tokens(video_tokens, num_frames)
        if video_tokens.shape[0] != batch_size:
            raise ValueError(
                f"`video_tokens` has batch size {video_tokens.shape[0]} but `hidden_states` has {batch_size}."
            )
        video_tokens = video_tokens.to(hidden_states.dtype)
        timestep = torch.as_tensor(timestep, device=hidden_states.device).expand(batch_size)

        model_input = hidden_states
        if self.uses_concat:
            cond = self._concat_conditioning(video_tokens, num_frames, (num_latent_frames, height, width))
            model_input = torch.cat([hidden_states, cond], dim=1)
        if self.uses_cross_attention:
            index = torch.arange(video_tokens.shape[1], device=video_tokens.device)
            context = video_tokens + sinusoidal_embedding(index, self.config.token_dim).to(video_tokens.dtype)
        else:
            context = self.null_context.expand(batch_size, -1, -1).to(hidden_states.dtype)
        if self.context_proj is not None:
            context = self.context_proj(context)

        sample = self.transformer(model_input, timestep, encoder_hidden_states=context, return_dict=False)[0]
        if not return_dict:
            return (sample,)
        return VTokVideoDecoderOutput(sample=sample)

    def velocity(self, model_output: torch.Tensor, sample: torch.Tensor, sigma) -> torch.Tensor:
        """The flow velocity `noise - x_0` that `FlowMatchEulerDiscreteScheduler.step` expects, from the
        network output at noise level `sigma` (`x_t = (1 - sigma) x_0 + sigma noise`)."""
        if self.config.prediction_type == "velocity":
            return model_output
        sigma = torch.as_tensor(sigma, dtype=sample.dtype, device=sample.device).clamp(min=1e-4)
        return (sample - model_output) / sigma.reshape(-1, *([1] * (sample.dim() - 1)))

    def training_loss(
        self,
        samples: torch.Tensor,
        video_tokens: torch.Tensor,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""
        The flow-matching loss L_dec for a batch (a scalar).

        samples (`torch.FloatTensor` of shape `(batch_size, num_channels, num_frames, height, width)`):
            Clean samples x_0: pixels in [-1, 1], or normalised VAE latents.
        video_tokens (`torch.FloatTensor` of shape `(batch_size, S + R, token_dim)`):
            The VTok tokens of those videos. In training mode each example's tokens are replaced by the
            null token with probability `conditioning_dropout`.
        num_frames (`int`, *optional*):
            Frame count of the videos (defaults to the sample's frame count).
        generator (`torch.Generator`, *optional*):
            Source of the noise levels, the noise and the dropout.
        """
        batch_size = samples.shape[0]
        device, dtype = samples.device, samples.dtype
        sigma = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
        noise = torch.randn(samples.shape, generator=generator, device=device, dtype=dtype)
        shape = (-1,) + (1,) * (samples.dim() - 1)
        noisy = (1 - sigma.view(shape)) * samples + sigma.view(shape) * noise

        video_tokens = video_tokens.to(dtype)
        if self.training and self.config.conditioning_dropout > 0:
            drop = torch.rand(batch_size, generator=generator, device=device) < self.config.conditioning_dropout
            null = self.null_tokens(batch_size, video_tokens.shape[1]).to(dtype)
            video_tokens = torch.where(drop[:, None, None], null, video_tokens)

        prediction = self(noisy, sigma * self.config.num_train_timesteps, video_tokens, num_frames=num_frames).sample
        target = samples if self.config.prediction_type == "sample" else noise - samples
        return F.mse_loss(prediction.float(), target.float())


__all__ = ["VTokVideoDecoder", "VTokVideoDecoderOutput"]
