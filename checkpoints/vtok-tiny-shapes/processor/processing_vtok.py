"""Processor of VTok: videos + text -> model inputs (arXiv 2602.04202, Sec. 3).

Each `<video>` placeholder in the text becomes `<vid_start>` + `<video>` * N + `<vid_end>`, where
N = `count_video_tokens(T)` for that video's real frame count T (S key-frame tokens + one residual
token per later frame or stride window; per segment with key-frame refresh, the bound for scene cuts).
The model computes its features with the same function.
"""

from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from .configuration_vtok import VTokConfig
from .remote_code import code_reference, pop_hub_arguments, save_code_files
from .token_layout import count_video_tokens

from .text_tokenizer import add_video_tokens
from .video_processing_vtok import VTokVideoProcessor, make_list_of_videos


logger = logging.get_logger(__name__)

# Sampling arguments users pass to `apply_chat_template` directly; they belong to the video processor.
_VIDEO_SAMPLING_KWARGS = ("num_frames", "fps", "do_sample_frames", "video_metadata")


class VTokProcessor(ProcessorMixin):
    r"""
    Wraps a [`VTokVideoProcessor`] and a tokenizer. Build it with [`~VTokProcessor.from_model_config`] so
    the token counts match the model.

    num_key_frame_tokens (`int`):
        S, spatial tokens of the key frame (`VTokConfig.num_key_frame_tokens`).
    temporal_stride (`int`, *optional*, defaults to 1):
        Later frames summarised by one residual token (`VTokConfig.temporal_stride`).
    video_tokenization (`str`, *optional*, defaults to `"vtok"`):
        `"vtok"` or the `"frames"` baseline (`VTokConfig.video_tokenization`).
    key_frame_refresh (`str`, *optional*, defaults to `"none"`):
        Long videos: `"none"`, `"interval"` or `"scene_cut"` (`VTokConfig.key_frame_refresh`). For
        `"scene_cut"` a `<video>` expands to the bound, what the most key frames can cost.
    key_frame_interval (`int`, *optional*):
        Frames per key frame for `"interval"` (`VTokConfig.key_frame_interval`).
    max_key_frames (`int`, *optional*):
        Most key frames for `"scene_cut"` (`VTokConfig.max_key_frames`).
    video_newline (`bool`, *optional*, defaults to `False`):
        One more placeholder after each video, for the model's newline embedding (`VTokConfig.video_newline`).
    num_stored_key_frame_tokens (`int`, *optional*):
        VTok tokens of a key frame as the video tokenizer gives them, before the model pools them: what stored
        tokens (`video_embeds`, `vtok tokenize-corpus`) hold (`VTokConfig.tokenizer_layout`). Defaults to
        `num_key_frame_tokens`; larger only in LLaVA-OneVision's form, whose key frame keeps its whole patch grid.
    video_token (`str`, *optional*, defaults to `"<video>"`):
        Placeholder written once per video in the prompt and repeated once per video token.
    video_start_token (`str`, *optional*, defaults to `"<vid_start>"`):
        Token put before a video's placeholders.
    video_end_token (`str`, *optional*, defaults to `"<vid_end>"`):
        Token put after a video's placeholders.
    """

    # Left padding so that a batch of prompts can be continued by `generate`.
    text_kwargs = {"padding": True, "padding_side": "left", "return_tensors": "pt"}
    videos_kwargs = {"return_tensors": "pt"}

    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        chat_template=None,
        num_key_frame_tokens: int | None = None,
        temporal_stride: int = 1,
        video_tokenization: str = "vtok",
        key_frame_refresh: str = "none",
        key_frame_interval: int | None = None,
        max_key_frames: int | None = None,
        video_newline: bool = False,
        num_stored_key_frame_tokens: int | None = None,
        video_token: str = "<video>",
        video_start_token: str = "<vid_start>",
        video_end_token: str = "<vid_end>",
        **kwargs,
    ):
        if num_key_frame_tokens is None or num_key_frame_tokens < 1:
            raise ValueError(
                f"`num_key_frame_tokens` must be a positive int, got {num_key_frame_tokens}. Take it from the "
                "model: `VTokProcessor.from_model_config(config, ...)` reads `config.num_key_frame_tokens`."
            )
        if num_stored_key_frame_tokens is not None and num_stored_key_frame_tokens < num_key_frame_tokens:
            raise ValueError(
                f"`num_stored_key_frame_tokens` ({num_stored_key_frame_tokens}) must be at least `num_key_frame_tokens` "
                f"({num_key_frame_tokens}): the model pools stored key-frame tokens down, never up."
            )
        if temporal_stride < 1:
            raise ValueError(f"`temporal_stride` must be >= 1, got {temporal_stride}.")
        self.num_key_frame_tokens = num_key_frame_tokens
        self.temporal_stride = temporal_stride
        self.video_tokenization = video_tokenization
        self.key_frame_refresh = key_frame_refresh
        self.key_frame_interval = key_frame_interval
        self.max_key_frames = max_key_frames
        self.video_newline = video_newline
        self.num_stored_key_frame_tokens = num_key_frame_tokens if num_stored_key_frame_tokens is None else num_stored_key_frame_tokens
        self.num_video_tokens(1)  # rejects unknown modes and a refresh policy without its field
        self.video_token = video_token
        self.video_start_token = video_start_token
        self.video_end_token = video_end_token
        if tokenizer is not None:
            ids = {}
            for token in (video_token, video_start_token, video_end_token):
                ids[token] = tokenizer.convert_tokens_to_ids(token)
                if ids[token] is None or ids[token] == tokenizer.unk_token_id:
                    raise ValueError(
                        f"The tokenizer has no token {token!r}. Add it with "
                        f"`tokenizer.add_special_tokens({{'additional_special_tokens': [{token!r}]}})` "
                        "or train one with `train_text_tokenizer`."
                    )
            self.video_token_id = ids[video_token]
            self.video_start_token_id = ids[video_start_token]
            self.video_end_token_id = ids[video_end_token]
        if chat_template is None and tokenizer is not None:
            chat_template = getattr(tokenizer, "chat_template", None)
        super().__init__(video_processor, tokenizer, chat_template=chat_template, **kwargs)

    @classmethod
    def from_model_config(cls, config: VTokConfig, video_processor, tokenizer, **kwargs) -> "VTokProcessor":
        """Build a processor whose token counts and token ids match the model of `config`."""
        processor = cls(
            video_processor=video_processor,
            tokenizer=tokenizer,
            num_key_frame_tokens=config.num_key_frame_tokens,
            temporal_stride=config.temporal_stride,
            video_tokenization=config.video_tokenization,
            key_frame_refresh=config.key_frame_refresh,
            key_frame_interval=config.token_layout.key_frame_interval,
            max_key_frames=config.token_layout.max_key_frames,
            video_newline=config.video_newline,
            num_stored_key_frame_tokens=config.tokenizer_layout.num_key_frame_tokens,
            **kwargs,
        )
        for name in ("video_token_id", "video_start_token_id", "video_end_token_id"):
            if getattr(processor, name) != getattr(config, name):
                raise ValueError(
                    f"The tokenizer maps {name[:-3]} to id {getattr(processor, name)} but config.{name} is "
                    f"{getattr(config, name)}. Build the config with "
                    f"`{name}=tokenizer.convert_tokens_to_ids(...)` so the model finds the placeholders."
                )
        return processor

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_model_name_or_path, text_model_name_or_path, config: VTokConfig, **kwargs
    ) -> "VTokProcessor":
        """The processor of `VTokForConditionalGeneration.from_vision_text_pretrained(vision, text)` (whose
        `config` it takes): frames resized to the encoder's `image_size` and normalised with the vision
        checkpoint's image-processor settings (mean, std, resampling), and the LLM's tokenizer with the same
        VTok tokens added. `kwargs` go to the processor (e.g. `chat_template=`)."""
        image_processor = AutoImageProcessor.from_pretrained(vision_model_name_or_path)
        side = config.vision_config.image_size
        video_processor = VTokVideoProcessor(
            size={"height": side, "width": side},
            image_mean=image_processor.image_mean,
            image_std=image_processor.image_std,
            resample=image_processor.resample,
            rescale_factor=image_processor.rescale_factor,
        )
        tokenizer = AutoTokenizer.from_pretrained(text_model_name_or_path)
        add_video_tokens(tokenizer)
        return cls.from_model_config(config, video_processor, tokenizer, **kwargs)

    def num_video_tokens(self, num_frames: int) -> int:
        """Number of `<video>` placeholders a video of `num_frames` frames costs (start/end tokens excluded);
        with `key_frame_refresh="scene_cut"` the bound, which the model fills exactly."""
        return count_video_tokens(
            num_frames, self.num_key_frame_tokens, self.temporal_stride, self.video_tokenization,
            self.key_frame_refresh, self.key_frame_interval, self.max_key_frames, self.video_newline,
        )

    def num_stored_video_tokens(self, num_frames: int) -> int:
        """Number of VTok tokens the video tokenizer gives for a video of `num_frames` frames: what stored tokens
        (`video_embeds`, a `vtok tokenize-corpus` row) hold. [`num_video_tokens`] except in LLaVA-OneVision's form,
        where the model pools the key frame and adds the newline only after the projector."""
        return count_video_tokens(
            num_frames, self.num_stored_key_frame_tokens, self.temporal_stride, self.video_tokenization,
            self.key_frame_refresh, self.key_frame_interval, self.max_key_frames, False,
        )

    def video_placeholders(self, num_frames: int) -> str:
        """The text one `<video>` becomes for a video of `num_frames` frames: `<vid_start>`, `<video>` x
        [`num_video_tokens`], `<vid_end>`. The one place placeholders are expanded (the processor and
        [`VTokDataCollator`] for pre-tokenized videos)."""
        return self.video_start_token + self.video_token * self.num_video_tokens(num_frames) + self.video_end_token

    def text_to_video_prompt(self, caption: str) -> str:
        """The chat text after which the model writes a video: `user: caption`, then the assistant's turn.

        Training ([`VTokDataCollator`]) and generation ([`VTokTextToVideoPipeline`]) both use it, so the
        LLM sees at inference exactly the context it learned to continue with `<vid_start>`.
        """
        messages = [{"role": "user", "content": [{"type": "text", "text": caption}]}]
        return self.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        self._reject_unknown_kwargs(kwargs)
        if text is None and videos is None:
            raise ValueError(f"You need to provide `text` or `videos` to call {type(self).__name__}.")
        if images is not None or audio is not None:
            raise ValueError(f"{type(self).__name__} only accepts `text` and `videos`, not images or audio.")
        if text is None:
            return
        if not all(isinstance(sample, str) for sample in text):
            raise ValueError("`text` must be a string or a list of strings.")
        num_placeholders = sum(sample.count(self.video_token) for sample in text)
        num_videos = 0 if videos is None else len(make_list_of_videos(videos))
        if num_placeholders != num_videos:
            raise ValueError(
                f"The text has {num_placeholders} {self.video_token} placeholders but {num_videos} videos were "
                f"passed; write one {self.video_token} per video."
            )

    def _reject_unknown_kwargs(self, kwargs: dict) -> None:
        """Raise a `TypeError` for a keyword neither the tokenizer nor the video processor takes.

        transformers only logs a warning and drops it, so a typo such as `num_frame=8` would silently
        give the default 16 frames. `apply_chat_template(..., tokenize=True)` passes its processor
        keywords through here too.
        """
        spec = self.valid_processor_kwargs.__annotations__
        accepted = (
            set(spec)
            | set(spec["text_kwargs"].__annotations__)
            | set(self.video_processor.valid_kwargs.__annotations__)
            | {"common_kwargs"}  # transformers' older spelling of shared keywords
        )
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}. Accepted: {sorted(accepted)}."
            )

    def _process_videos(self, videos, **kwargs):
        processed = self.video_processor(videos, **kwargs)
        replacements = [self.video_placeholders(int(length)) for length in processed["video_lengths"]]
        return processed, replacements

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """Like [`ProcessorMixin.apply_chat_template`]; `{"type": "video", "video": ...}` items are decoded
        by the VTok video processor (PyAV). `num_frames` / `fps` may be passed directly."""
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        for name in _VIDEO_SAMPLING_KWARGS:
            if name in kwargs:
                processor_kwargs[name] = kwargs.pop(name)
        return super().apply_chat_template(
            conversation, chat_template=chat_template, processor_kwargs=processor_kwargs, **kwargs
        )

    def _prepare_processor_kwargs(self, chat_template, processor_kwargs, kwargs, *args, **options) -> dict:
        """transformers' step of `apply_chat_template` that collects the processor keywords (those the chat
        template does not use); unknown ones raise here, so `tokenize=False`, which processes no video,
        rejects a typo such as `num_frame=8` like the other routes instead of only warning."""
        processor_kwargs = super()._prepare_processor_kwargs(chat_template, processor_kwargs, kwargs, *args, **options)
        self._reject_unknown_kwargs(processor_kwargs)
        return processor_kwargs

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos", "video_lengths"]

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Like [`ProcessorMixin.save_pretrained`], and also writes the code files and the `auto_map`
        entries, so that the folder loads with `trust_remote_code=True` where the vtok package is not
        installed (`modeling_vtok/remote_code.py` says how). `push_to_hub=True` uploads them too
        ([`pop_hub_arguments`] says why it saves, writes the code, then pushes)."""
        hub_arguments = pop_hub_arguments(self, save_directory, kwargs) if push_to_hub else None
        self.auto_map = {"AutoProcessor": code_reference(type(self))}
        self.video_processor.auto_map = {"AutoVideoProcessor": code_reference(type(self.video_processor))}
        saved = super().save_pretrained(save_directory, **kwargs)
        save_code_files(save_directory, type(self))
        if push_to_hub:
            self.push_to_hub(**hub_arguments)
        return saved


AutoProcessor.register(VTokConfig, VTokProcessor)

__all__ = ["VTokProcessor"]
