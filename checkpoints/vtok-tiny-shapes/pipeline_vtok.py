"""Text-to-video with VTok (arXiv 2602.04202, Sec. 3.3): the LLM writes VTok tokens, the diffusion decoder
renders them.

    prompt --processor--> input_ids --VTokForConditionalGeneration.generate_video_tokens--> tokens (B, S + R, D)
    tokens --VTokVideoDecoder + FlowMatchEulerDiscreteScheduler (+ guidance)--> latents --(VAE)--> frames

The same denoising code renders tokens taken from a real video (`reconstruct`) or spliced from two
videos, key frame of one and residual tokens of the other (`transfer_motion`). Follows diffusers'
`pipelines/wan/pipeline_wan.py`. See docs/generation.md.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput, export_to_video, logging
from diffusers.utils.accelerate_utils import apply_forward_hook
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from .import_utils import require
from .lora_loader_vtok import VTokLoraLoaderMixin
from .remote_code import pop_hub_arguments, save_pipeline_code, with_installed_code


logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("np", "pt", "pil", "latent")

EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> import modeling_vtok, processing_vtok
        >>> from modeling_vtok import VTokTextToVideoPipeline
        >>> from modeling_vtok.pipeline_vtok import export_video

        >>> pipe = VTokTextToVideoPipeline.from_pretrained("path/to/vtok-pipeline")
        >>> frames = pipe("a red circle moves left", num_frames=8, num_inference_steps=20,
        ...               generator=torch.Generator().manual_seed(0)).frames[0]
        >>> export_video(frames, "circle.mp4", fps=8)
        ```
"""


@dataclass
class VTokPipelineOutput(BaseOutput):
    r"""
    frames (`np.ndarray`, `torch.Tensor` or `list[list[PIL.Image.Image]]`):
        `"np"`: `(batch_size, num_frames, height, width, 3)` floats in [0, 1]; `"pt"`:
        `(batch_size, num_frames, 3, height, width)` in [0, 1]; `"pil"`: one list of frames per video;
        `"latent"`: the decoder's final sample `(batch_size, num_channels, num_latent_frames, h, w)`.
    """

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


def export_video(frames, output_video_path: str, fps: int = 8) -> str:
    """Write one video of `output_type="np"` or `"pil"` frames to an MP4 with `diffusers.utils.export_to_video`."""
    require("imageio", "export_video")
    if isinstance(frames, np.ndarray):
        frames = list(frames)
    return export_to_video(frames, output_video_path, fps=fps)


class VTokTextToVideoPipeline(DiffusionPipeline, VTokLoraLoaderMixin):
    r"""
    Text-to-video generation with a VTok model.

    model ([`VTokForConditionalGeneration`]):
        Writes VTok tokens from a prompt (`generate_video_tokens`) and tokenizes real videos (`model.get_vtok_tokens`).
    processor ([`VTokProcessor`]):
        Tokenizes prompts (left padding) and samples / normalises videos.
    decoder ([`VTokVideoDecoder`]):
        Renders VTok tokens into frames (pixels) or VAE latents.
    scheduler ([`FlowMatchEulerDiscreteScheduler`]):
        The flow-matching sampler.
    vae ([`AutoencoderKLWan`], *optional*):
        When given, the decoder works in its latent space and its `in_channels` equal the VAE's `z_dim`.

    A generation LoRA adapter of `model` loads with `load_lora_weights` ([`VTokLoraLoaderMixin`]).
    """

    model_cpu_offload_seq = "model->decoder->vae"
    _optional_components = ["vae"]
    _callback_tensor_inputs = ["latents", "video_tokens", "negative_video_tokens"]

    # `model`, `processor` and `decoder` are not annotated: loaded by remote code, diffusers executes each
    # component's file again, so its class would not be the one an annotation names (a false type warning).
    def __init__(self, model, processor, decoder, scheduler: FlowMatchEulerDiscreteScheduler, vae=None):
        super().__init__()
        self.register_modules(model=model, processor=processor, decoder=decoder, scheduler=scheduler, vae=vae)
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal if vae is not None else 1
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial if vae is not None else 1
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Like [`DiffusionPipeline.save_pretrained`], and also writes the code files, so that
        `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` loads the folder, with or without
        the vtok package installed (`remote_code.py` says how); `push_to_hub=True` uploads them too
        ([`pop_hub_arguments`] says how). Refuses while LoRA adapters are loaded: transformers would then write
        only the model's adapter, not its weights."""
        if self.get_list_adapters():
            raise ValueError(
                f"The model holds LoRA adapters {self.get_list_adapters()['model']}: saving now would write only the "
                "adapter in place of the model's weights. Call pipe.unload_lora_weights() first (the adapter folder "
                "you loaded keeps the adapter)."
            )
        hub_arguments = pop_hub_arguments(self, save_directory, kwargs) if push_to_hub else None
        super().save_pretrained(save_directory, **kwargs)
        save_pipeline_code(
            save_directory, type(self), {name: type(c) for name, c in self.components.items() if c is not None}
        )
        if push_to_hub:
            self.push_to_hub(**hub_arguments)

    @classmethod
    def load_config(cls, *args, **kwargs):
        """`model_index.json`, with the folder's own code files (there for `DiffusionPipeline` with
        `trust_remote_code=True`) replaced by this class and the components imported beside it: loading
        through this class runs its own code and needs no `trust_remote_code`."""
        loaded = super().load_config(*args, **kwargs)
        if isinstance(loaded, tuple):
            return (with_installed_code(loaded[0], cls), *loaded[1:])
        return with_installed_code(loaded, cls)

    # -- steps --

    def check_inputs(
        self,
        prompt,
        negative_prompt,
        num_frames,
        height,
        width,
        output_type,
        video_tokens=None,
        negative_video_tokens=None,
        callback_on_step_end_tensor_inputs=None,
    ):
        decoder_config = self.decoder.config
        expected_channels = self.vae.config.z_dim if self.vae is not None else 3
        if decoder_config.in_channels != expected_channels:
            raise ValueError(
                f"The decoder works on {decoder_config.in_channels} channels, but "
                + (f"the VAE's latents have z_dim={expected_channels}." if self.vae is not None else
                   "without a VAE it must render RGB pixels (3); pass the VAE whose latent space it was trained in.")
            )
        if self.model is not None:  # None: rendering precomputed `video_tokens` after the LLM was freed
            config = self.model.config
            if decoder_config.token_dim != config.vision_config.hidden_size or self.decoder.token_layout != config.tokenizer_layout:
                raise ValueError(
                    f"The decoder reads tokens of size {decoder_config.token_dim} laid out as {self.decoder.token_layout}, "
                    f"the model writes tokens of size {config.vision_config.hidden_size} laid out as {config.tokenizer_layout}; "
                    "build the decoder with VTokVideoDecoder.from_model_config(model.config, ...)."
                )
        elif prompt is not None:
            raise ValueError("This pipeline has no `model` to write VTok tokens from a prompt; pass `video_tokens`.")
        if (prompt is None) == (video_tokens is None):
            raise ValueError("Pass exactly one of `prompt` or `video_tokens`.")
        if prompt is not None and not isinstance(prompt, (str, list)):
            raise ValueError(f"`prompt` has to be of type `str` or `list` but is {type(prompt)}.")
        if isinstance(prompt, list) and len(prompt) == 0:
            raise ValueError("`prompt` is an empty list; pass at least one prompt.")
        if negative_prompt is not None and negative_video_tokens is not None:
            raise ValueError("Pass at most one of `negative_prompt` or `negative_video_tokens`.")
        if negative_prompt is not None:
            if not isinstance(negative_prompt, (str, list)):
                raise ValueError(f"`negative_prompt` has to be of type `str` or `list` but is {type(negative_prompt)}.")
            num_prompts = 1 if isinstance(prompt, str) else len(prompt or [])
            if isinstance(negative_prompt, list) and len(negative_prompt) != num_prompts:
                raise ValueError(
                    f"`negative_prompt` has {len(negative_prompt)} entries but `prompt` has {num_prompts}."
                )
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"`num_frames` has to be an int >= 1 but is {num_frames}.")
        multiple = self.vae_scale_factor_spatial * decoder_config.patch_size[1]
        if height % multiple != 0 or width % multiple != 0:
            raise ValueError(
                f"`height` and `width` have to be divisible by {multiple} (decoder patch size "
                f"{decoder_config.patch_size[1]} x VAE scale {self.vae_scale_factor_spatial}) but are {height} and {width}."
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"Unknown `output_type`={output_type!r}. Has to be one of {list(OUTPUT_TYPES)}.")
        if video_tokens is not None:
            self.decoder._check_tokens(video_tokens, num_frames)
        if negative_video_tokens is not None and negative_video_tokens.shape != video_tokens.shape:
            raise ValueError(
                f"`negative_video_tokens` has shape {tuple(negative_video_tokens.shape)}, `video_tokens` "
                f"{tuple(video_tokens.shape)}; they must match."
            )
        if callback_on_step_end_tensor_inputs is not None and any(
            k not in self._callback_tensor_inputs for k in callback_on_step_end_tensor_inputs
        ):
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has to be in {self._callback_tensor_inputs}, but found "
                f"{[k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]}."
            )

    def _onload_model(self) -> None:
        """Move the model to the execution device now if `enable_model_cpu_offload` hooked it. The hook
        fires on `forward`, but the pipeline calls `generate_video_tokens` and `get_vtok_tokens`; diffusers'
        `apply_forward_hook` runs it for such methods (as for `AutoencoderKL.decode`)."""
        apply_forward_hook(lambda model: None)(self.model)

    def _prompt_tokens(self, prompt: list[str], num_frames: int, device) -> torch.Tensor:
        # the same chat text the model was trained to continue with a video (VTokDataCollator)
        text = [self.processor.text_to_video_prompt(p) for p in prompt]
        text = self.processor(text=text, return_tensors="pt", padding=True)
        self._onload_model()
        return self.model.generate_video_tokens(
            text["input_ids"].to(device), text["attention_mask"].to(device), num_frames=num_frames
        )

    def encode_prompt(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_frames: int = 8,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        device: torch.device | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""
        Prompts -> VTok tokens written by the LLM, `(batch_size * num_videos_per_prompt, S + R, token_dim)`,
        and the unconditional tokens for guidance: those of `negative_prompt`, or the decoder's learned
        null tokens when it is `None` (`None` without guidance).
        """
        device = device or self._execution_device
        prompt = [prompt] if isinstance(prompt, str) else prompt
        video_tokens = self._prompt_tokens(prompt, num_frames, device)
        negative_video_tokens = None
        if do_classifier_free_guidance and negative_prompt is not None:
            negative_prompt = [negative_prompt] * len(prompt) if isinstance(negative_prompt, str) else negative_prompt
            negative_video_tokens = self._prompt_tokens(negative_prompt, num_frames, device)
            negative_video_tokens = negative_video_tokens.repeat_interleave(num_videos_per_prompt, dim=0)
        return video_tokens.repeat_interleave(num_videos_per_prompt, dim=0), negative_video_tokens

    def prepare_latents(
        self,
        batch_size: int,
        num_channels_latents: int,
        num_frames: int,
        height: int,
        width: int,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial noise `(batch_size, num_channels_latents, num_latent_frames, height / s, width / s)`."""
        num_latent_frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        shape = (
            batch_size,
            num_channels_latents,
            num_latent_frames,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"`latents` must have shape {shape}, got {tuple(latents.shape)}.")
            return latents.to(device=device, dtype=dtype)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"You have passed a list of generators of length {len(generator)}, but requested an effective batch"
                f" size of {batch_size}. Make sure the batch size matches the length of the generators."
            )
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    def denoise(
        self,
        latents: torch.Tensor,
        video_tokens: torch.Tensor,
        negative_video_tokens: torch.Tensor | None,
        num_frames: int,
        num_inference_steps: int,
        guidance_scale: float,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> torch.Tensor:
        """The flow-matching loop with classifier-free guidance, shared by `__call__`, `reconstruct` and
        `transfer_motion`. Returns the final latents."""
        device = latents.device
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        self._interrupt = False
        self.scheduler.set_begin_index(0)
        if self.do_classifier_free_guidance and negative_video_tokens is None:
            negative_video_tokens = self.decoder.null_tokens(*video_tokens.shape[:2])
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:  # set by a callback to stop early (diffusers' convention)
                    continue
                timestep = t.expand(latents.shape[0])
                output = self.decoder(latents, timestep, video_tokens, num_frames=num_frames, return_dict=False)[0]
                if self.do_classifier_free_guidance:
                    output_uncond = self.decoder(
                        latents, timestep, negative_video_tokens, num_frames=num_frames, return_dict=False
                    )[0]
                    output = output_uncond + self.guidance_scale * (output - output_uncond)
                # Guidance is linear, so it can be applied to x0 predictions before turning them into a velocity.
                velocity = self.decoder.velocity(output, latents, self.scheduler.sigmas[i])
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]

                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    for k in callback_on_step_end_tensor_inputs:
                        callback_kwargs[k] = locals()[k]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                    video_tokens = callback_outputs.pop("video_tokens", video_tokens)
                    negative_video_tokens = callback_outputs.pop("negative_video_tokens", negative_video_tokens)
                progress_bar.update()
        return latents

    def decode_latents(self, latents: torch.Tensor, output_type: str = "np"):
        """Final latents -> frames: through the VAE when there is one (undoing Wan's latent normalisation),
        then `VideoProcessor.postprocess_video` from [-1, 1]."""
        if self.vae is not None:
            latents = latents.to(self.vae.dtype)
            z_dim = self.vae.config.z_dim
            mean = torch.tensor(self.vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(latents)
            std = torch.tensor(self.vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(latents)
            video = self.vae.decode(latents * std + mean, return_dict=False)[0]
        else:
            video = latents
        return self.video_processor.postprocess_video(video.clamp(-1, 1).float(), output_type=output_type)

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self):
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self):
        return self._num_timesteps

    @property
    def interrupt(self):
        return self._interrupt

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        num_frames: int = 8,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        video_tokens: torch.Tensor | None = None,
        negative_video_tokens: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> VTokPipelineOutput | tuple:
        r"""
        Generate videos from prompts (or render given VTok tokens).

        prompt (`str` or `list[str]`, *optional*):
            What to generate. Pass `video_tokens` instead to render tokens you already have.
        negative_prompt (`str` or `list[str]`, *optional*):
            Its tokens are the unconditional branch of guidance; when `None`, the decoder's null tokens are.
        num_frames (`int`, defaults to 8):
            Frames per video. With a VAE, rounded down to `k * vae_scale_factor_temporal + 1` (with a warning).
        height (`int`, *optional*), width (`int`, *optional*):
            Size in pixels; default `decoder.config.sample_size`. Must be divisible by the decoder's patch
            size times the VAE's spatial scale.
        num_inference_steps (`int`, defaults to 20):
            Flow-matching Euler steps.
        guidance_scale (`float`, defaults to 3.0):
            Classifier-free guidance weight; `<= 1` disables guidance (one decoder call per step).
        num_videos_per_prompt (`int`, defaults to 1):
            Videos per prompt. The LLM's tokens are deterministic, so the videos differ only by the noise.
        generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
            The only source of randomness.
        latents (`torch.Tensor`, *optional*):
            Initial noise `(batch_size, num_channels, num_latent_frames, height / s, width / s)`.
        video_tokens (`torch.FloatTensor` of shape `(batch_size, S + R, token_dim)`, *optional*):
            VTok tokens to render instead of a prompt's.
        negative_video_tokens (`torch.FloatTensor`, *optional*):
            Unconditional tokens for guidance, same shape as `video_tokens`.
        output_type (`str`, defaults to `"np"`):
            `"np"`, `"pt"`, `"pil"` or `"latent"` (see [`VTokPipelineOutput`]).
        return_dict (`bool`, defaults to `True`):
            Return a [`VTokPipelineOutput`] instead of a tuple.
        callback_on_step_end (`Callable`, *optional*):
            Called as `callback_on_step_end(pipe, step, timestep, callback_kwargs)` after each step; the
            tensors it returns (e.g. `latents`) replace the pipeline's.
        callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`):
            Tensors passed in `callback_kwargs`; any of `_callback_tensor_inputs`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        height = height or self.decoder.config.sample_size
        width = width or self.decoder.config.sample_size

        # 1. Check inputs
        self.check_inputs(
            prompt, negative_prompt, num_frames, height, width, output_type,
            video_tokens, negative_video_tokens, callback_on_step_end_tensor_inputs,
        )
        if (num_frames - 1) % self.vae_scale_factor_temporal != 0:
            rounded = (num_frames - 1) // self.vae_scale_factor_temporal * self.vae_scale_factor_temporal + 1
            logger.warning(
                f"`num_frames - 1` has to be divisible by {self.vae_scale_factor_temporal} (the VAE's temporal "
                f"scale). Rounding num_frames={num_frames} to {rounded}."
            )
            num_frames = rounded
        self._guidance_scale = guidance_scale
        device = self._execution_device

        # 2. Encode the prompt: the LLM writes VTok tokens
        if video_tokens is None:
            video_tokens, negative_video_tokens = self.encode_prompt(
                prompt, negative_prompt, num_frames, self.do_classifier_free_guidance, num_videos_per_prompt, device
            )
        else:
            video_tokens = video_tokens.to(device).repeat_interleave(num_videos_per_prompt, dim=0)
            if negative_video_tokens is not None:
                negative_video_tokens = negative_video_tokens.to(device).repeat_interleave(num_videos_per_prompt, dim=0)
        dtype = self.decoder.dtype
        video_tokens = video_tokens.to(dtype)
        if negative_video_tokens is not None:
            negative_video_tokens = negative_video_tokens.to(dtype)

        # 3. Prepare the initial noise
        latents = self.prepare_latents(
            video_tokens.shape[0], self.decoder.config.in_channels, num_frames, height, width,
            dtype, device, generator, latents,
        )

        # 4. Denoise
        latents = self.denoise(
            latents, video_tokens, negative_video_tokens, num_frames, num_inference_steps,
            guidance_scale, callback_on_step_end, callback_on_step_end_tensor_inputs,
        )

        # 5. Decode and post-process
        video = latents if output_type == "latent" else self.decode_latents(latents, output_type)
        self.maybe_free_model_hooks()

        # 6. Return
        if not return_dict:
            return (video,)
        return VTokPipelineOutput(frames=video)

    # -- beyond text-to-video --

    @torch.no_grad()
    def encode_video(self, videos, num_frames: int | None = None) -> tuple[torch.Tensor, int]:
        r"""
        Videos -> `(video_tokens, num_frames)`: raw VTok tokens `(num_videos, S + R, token_dim)` (S * T for the
        "frames" baseline) through the processor and
        `model.model.get_vtok_tokens`. `videos` is anything the processor takes (an array
        `(T, H, W, 3)`, a file path, or a list of them); `num_frames` samples that many frames. All videos
        must end up with the same frame count.
        """
        if self.model is None or self.processor is None:
            raise ValueError("Encoding videos needs the pipeline's `model` and `processor`; this one was built without them.")
        inputs = self.processor(videos=videos, num_frames=num_frames, return_tensors="pt")
        lengths = inputs["video_lengths"]
        if not torch.all(lengths == lengths[0]):
            raise ValueError(
                f"All videos must have the same number of frames, got {lengths.tolist()}; pass `num_frames`."
            )
        device = self._execution_device
        self._onload_model()
        out = self.model.model.get_vtok_tokens(inputs["pixel_values_videos"].to(device), lengths.to(device))
        return out.tokens[:, : int(out.mask[0].sum())], int(lengths[0])

    def reconstruct(self, video, num_frames: int | None = None, **kwargs) -> VTokPipelineOutput | tuple:
        r"""
        Video -> VTok tokens -> decoder -> frames: shows what the tokens keep. `video` is anything the
        processor takes; `num_frames` samples that many frames. Other keywords go to `__call__`
        (`num_inference_steps`, `guidance_scale`, `generator`, `output_type`, ...).
        """
        video_tokens, num_frames = self.encode_video(video, num_frames)
        return self(video_tokens=video_tokens, num_frames=num_frames, **kwargs)

    def transfer_motion(self, key_video, motion_video, num_frames: int | None = None, **kwargs) -> VTokPipelineOutput | tuple:
        r"""
        Render the key-frame tokens of `key_video` with the residual tokens of `motion_video`: the first
        one's appearance moving like the second. Both (or both lists of the same length) must give the
        same frame count; `num_frames` samples that many frames from each. Other keywords go to `__call__`.
        """
        if self.decoder.config.video_tokenization != "vtok":
            raise ValueError(
                f"Motion transfer swaps residual tokens, which a video_tokenization={self.decoder.config.video_tokenization!r} "
                "decoder does not read; use a 'vtok' model and decoder."
            )
        key_tokens, num_frames = self.encode_video(key_video, num_frames)
        motion_tokens, motion_frames = self.encode_video(motion_video, num_frames)
        if key_tokens.shape != motion_tokens.shape or num_frames != motion_frames:
            raise ValueError(
                f"`key_video` and `motion_video` give token shapes {tuple(key_tokens.shape)} and "
                f"{tuple(motion_tokens.shape)}; pass the same number of videos and the same `num_frames`."
            )
        S = self.decoder.token_layout.num_key_frame_tokens
        video_tokens = torch.cat([key_tokens[:, :S], motion_tokens[:, S:]], dim=1)
        return self(video_tokens=video_tokens, num_frames=num_frames, **kwargs)


__all__ = ["VTokTextToVideoPipeline", "VTokPipelineOutput", "export_video"]
