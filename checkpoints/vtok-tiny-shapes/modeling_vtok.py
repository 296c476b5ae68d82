"""VTok transformers models (arXiv 2602.04202, Sec. 3.2): one LLM that reads VTok tokens to answer
about a video (understanding) and writes them from text (generation).

Layout follows transformers' LLaVA family: `get_video_features`, a placeholder mask with a count
check, `masked_scatter`, the language model, dataclass outputs.
"""

import inspect
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.utils import logging, torch_compilable_check

from .text_tokenizer import VIDEO_END_TOKEN, VIDEO_START_TOKEN, VIDEO_TOKEN, add_video_tokens

from .configuration_vtok import VTokConfig
from .remote_code import code_reference, pop_hub_arguments, save_code_files
from .tokenizer_vtok import VTokTokenizerOutput, VTokVideoTokenizer, sinusoidal_embedding

logger = logging.get_logger(__name__)

READS_ONLY_MESSAGE = (
    "This model reads videos in LLaVA-OneVision's form (key_frame_pooling='projected_bilinear' or video_newline=True, "
    "as convert_llava_to_vtok sets for a LLaVA-OneVision source): its LLM embeddings are not one projected VTok token "
    "each, so it cannot learn to write videos (videos_to_generate) or write them (generate_video_tokens). Build a "
    "model with key_frame_pooling='average' and video_newline=False for video generation."
)


@dataclass
class VTokModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    video_hidden_states (`torch.FloatTensor` of shape `(num_video_tokens_in_batch, hidden_size)`, *optional*):
        Projected video tokens scattered into the `<video>` placeholders, in placeholder order.
    video_tokens (`torch.FloatTensor` of shape `(num_video_tokens_in_batch, token_dim)`, *optional*):
        The raw VTok tokens behind them (the targets of the visual generation loss).
    """

    video_hidden_states: torch.FloatTensor | None = None
    video_tokens: torch.FloatTensor | None = None


@dataclass
class VTokCausalLMOutputWithPast(CausalLMOutputWithPast):
    r"""
    Upstream's causal-LM output (`loss`, `logits`, the language model's KV cache, `hidden_states`,
    `attentions`, under the names of the installed transformers) plus VTok's terms:

    text_loss (`torch.FloatTensor` of shape `()`, *optional*):
        L_under: next-token cross entropy on `labels` (placeholders and padding ignored).
    visual_loss (`torch.FloatTensor` of shape `()`, *optional*):
        L_visLM: regression of the next VTok token for the videos flagged in `videos_to_generate`.
    video_hidden_states (`torch.FloatTensor` of shape `(num_video_tokens_in_batch, hidden_size)`, *optional*):
        Projected video tokens fed to the LLM.

    `loss` is `text_loss + config.visual_loss_weight * visual_loss` (each term only when its targets are given).
    """

    text_loss: torch.FloatTensor | None = None
    visual_loss: torch.FloatTensor | None = None
    video_hidden_states: torch.FloatTensor | None = None


def language_model_fields(outputs: VTokModelOutputWithPast) -> dict:
    """The fields the language model itself produced (KV cache, hidden states, attentions), by whatever
    names the installed transformers gives them (5.24 renamed `past_key_values` to `cache`)."""
    vtok_fields = ("last_hidden_state", "video_hidden_states", "video_tokens")
    return {name: value for name, value in outputs.items() if name not in vtok_fields}


def cache_keyword(module: nn.Module) -> str:
    """The keyword under which `module.forward` takes its KV cache: `cache` from transformers 5.24, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


class VTokMultiModalProjector(nn.Module):
    """Maps VTok tokens (vision width) into the LLM's embedding space, as LLaVA's projector."""

    def __init__(self, config: VTokConfig):
        super().__init__()
        bias = config.multimodal_projector_bias
        self.linear_1 = nn.Linear(config.vision_config.hidden_size, config.text_config.hidden_size, bias=bias)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(config.text_config.hidden_size, config.text_config.hidden_size, bias=bias)

    def forward(self, video_tokens: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(video_tokens)))


class VTokPreTrainedModel(PreTrainedModel):
    config: VTokConfig
    config_class = VTokConfig
    base_model_prefix = "model"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def save_pretrained(self, save_directory, is_main_process: bool = True, push_to_hub: bool = False, **kwargs):
        """Like [`PreTrainedModel.save_pretrained`], and also writes the code files and the config's
        `auto_map`, so that the folder loads with `trust_remote_code=True` where the vtok package is not
        installed (`remote_code.py` says how). `push_to_hub=True` uploads them too ([`pop_hub_arguments`] says how)."""
        hub_arguments = pop_hub_arguments(self, save_directory, kwargs) if push_to_hub else None
        self.config.auto_map = {
            "AutoConfig": code_reference(VTokConfig),
            "AutoModel": code_reference(VTokModel),
            "AutoModelForImageTextToText": code_reference(VTokForConditionalGeneration),
        }
        super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            save_code_files(save_directory, VTokForConditionalGeneration)
            if push_to_hub:
                self.push_to_hub(**hub_arguments)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, VTokVideoTokenizer):  # identity statistics until fit_feature_statistics
            for kind in ("key", "residual"):
                init.zeros_(getattr(module, f"{kind}_mean"))
                init.ones_(getattr(module, f"{kind}_std"))
        if isinstance(module, VTokModel) and module.video_newline is not None:  # as LLaVA-OneVision's image_newline
            init.normal_(module.video_newline, mean=0.0, std=1 / math.sqrt(self.config.text_config.hidden_size))


class VTokModel(VTokPreTrainedModel):
    """Vision encoder + VTok tokenizer + projector + language model, without a head."""

    def __init__(self, config: VTokConfig):
        super().__init__(config)
        self.video_tokenizer = VTokVideoTokenizer(config)
        self.multi_modal_projector = VTokMultiModalProjector(config)
        self.language_model = AutoModel.from_config(config.text_config)
        # LLaVA-OneVision's image_newline: one learned embedding after each video (config.video_newline)
        self.video_newline = nn.Parameter(torch.zeros(config.text_config.hidden_size)) if config.video_newline else None
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_vtok_tokens(self, pixel_values_videos: torch.Tensor, video_lengths: torch.Tensor | None = None) -> VTokTokenizerOutput:
        r"""Raw VTok tokens `(batch_size, max_num_tokens, token_dim)` with their mask and temporal positions."""
        return self.video_tokenizer(pixel_values_videos.to(self.dtype), video_lengths)

    def embed_video_tokens(self, video_tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """VTok tokens `(..., token_dim)` at temporal `positions` `(...)` -> LLM embeddings `(..., hidden_size)`."""
        if self.config.temporal_position_embedding == "sinusoidal":
            video_tokens = video_tokens + sinusoidal_embedding(positions, video_tokens.shape[-1]).to(video_tokens.dtype)
        return self.multi_modal_projector(video_tokens)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        video_lengths: torch.Tensor | None = None,
        video_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, max_num_frames, channels, height, width)`, *optional*):
            Frames from [`VTokVideoProcessor`], zero-padded after each video's last frame.
        video_lengths (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
            True frame count per video.
        video_embeds (`torch.FloatTensor` of shape `(num_videos, max_num_tokens, token_dim)`, *optional*):
            The VTok tokens of the videos, computed before (see [`~VTokModel.unpad_video_embeds`]), in place of
            `pixel_values_videos`: the vision encoder is not run.

        Returns the projected features `(num_video_tokens_in_batch, hidden_size)` and the raw VTok
        tokens `(num_vtok_tokens_in_batch, token_dim)`, both flattened over videos in order. They are one
        for one, except in LLaVA-OneVision's form (`config.reads_only`, see [`~VTokModel.onevision_video_embeddings`]).
        """
        if video_embeds is not None:
            tokens, positions = self.unpad_video_embeds(video_embeds, video_lengths)
            num_videos, max_frames = len(video_embeds), None
        else:
            vtok = self.get_vtok_tokens(pixel_values_videos, video_lengths)
            tokens, positions = vtok.tokens[vtok.mask], vtok.positions[vtok.mask]
            num_videos, max_frames = pixel_values_videos.shape[:2]
        features = self.embed_video_tokens(tokens, positions)
        if self.config.reads_only:
            lengths = [max_frames] * num_videos if video_lengths is None else [int(length) for length in video_lengths]
            features = self.onevision_video_embeddings(features, lengths)
        return features, tokens

    def onevision_video_embeddings(self, features: torch.Tensor, video_lengths: list[int]) -> torch.Tensor:
        r"""Projected VTok tokens in the tokenizer's layout (`config.tokenizer_layout`, flattened over videos) -> the
        LLM's embeddings in LLaVA-OneVision's form (`config.token_layout`), video by video: with
        `key_frame_pooling="projected_bilinear"` the key frame's projected patch grid (every frame's in "frames"
        mode) is resized bilinearly to `key_frame_pool_size`, as LLaVA-OneVision's `apply_pooling`; with
        `video_newline` the newline embedding follows the video."""
        config = self.config
        grid, pooled_grid = config.tokenizer_layout.key_grid_size, config.token_layout.key_grid_size
        counts = [config.tokenizer_layout.num_video_tokens(length) for length in video_lengths]
        videos = []
        for video, length in zip(features.split(counts), video_lengths):
            if config.key_frame_pooling == "projected_bilinear":
                num_grids = length if config.video_tokenization == "frames" else 1
                grids = video[: num_grids * grid * grid].unflatten(0, (num_grids, grid, grid)).permute(0, 3, 1, 2)
                pooled = F.interpolate(grids, size=(pooled_grid, pooled_grid), mode="bilinear").permute(0, 2, 3, 1).flatten(0, 2)
                video = torch.cat([pooled, video[num_grids * grid * grid :]])
            if config.video_newline:
                video = torch.cat([video, self.video_newline[None].to(video.dtype)])
            videos.append(video)
        return torch.cat(videos)

    def unpad_video_embeds(self, video_embeds: torch.Tensor, video_lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Stored VTok tokens -> the real tokens `(num_video_tokens_in_batch, token_dim)` and their temporal positions.

        `video_embeds` `(num_videos, max_num_tokens, token_dim)` holds, per video, exactly what the video
        tokenizer gives from its pixels (`get_vtok_tokens(...).tokens`, the raw tokens before the projector,
        zero-padded after `config.tokenizer_layout.num_video_tokens(video_lengths[i])` tokens): the key frame's S tokens then the
        residual tokens. `video_lengths` (the frame counts) is needed: it fixes each video's layout.
        """
        if video_lengths is None:
            raise ValueError(
                "`video_embeds` needs `video_lengths`, the number of frames each video's tokens were computed from "
                "(its `num_frames` column when stored with `vtok tokenize-corpus`): it fixes the token layout."
            )
        layout, token_dim = self.config.tokenizer_layout, self.config.vision_config.hidden_size
        lengths = [int(length) for length in video_lengths]
        if video_embeds.dim() != 3 or video_embeds.shape[-1] != token_dim or video_embeds.shape[0] != len(lengths):
            raise ValueError(
                f"`video_embeds` must have shape (num_videos={len(lengths)}, max_num_tokens, token_dim={token_dim}) "
                f"(vision_config.hidden_size), got {tuple(video_embeds.shape)}."
            )
        counts = [layout.num_video_tokens(length) for length in lengths]
        if video_embeds.shape[1] != max(counts):
            raise ValueError(
                f"`video_embeds` holds {video_embeds.shape[1]} tokens per video, but videos of video_lengths={lengths} "
                f"frames have {counts} VTok tokens (config.tokenizer_layout.num_video_tokens); pad to the longest, {max(counts)}. "
                "Were they computed by a model with another key_frame_pool_size, temporal_stride or video_tokenization?"
            )
        if self.training and any(parameter.requires_grad for parameter in self.video_tokenizer.parameters()):
            logger.warning_once(
                "Training from `video_embeds`: the video tokenizer (g_phi, its statistics, the vision encoder) is "
                "skipped, so its trainable parameters get no gradient. Freeze it "
                "(model.model.video_tokenizer.requires_grad_(False)) or train from pixels."
            )
        mask = torch.arange(max(counts), device=video_embeds.device)[None] < torch.tensor(counts, device=video_embeds.device)[:, None]
        positions = torch.cat([layout.temporal_positions(length) for length in lengths]).to(video_embeds.device)
        return video_embeds[mask].to(self.dtype), positions

    def get_placeholder_mask(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor, video_features: torch.Tensor) -> torch.Tensor:
        """Boolean `(batch_size, sequence_length)` mask of `<video>` placeholders; checks it matches the features."""
        if input_ids is None:
            video_embedding = self.get_input_embeddings()(torch.tensor(self.config.video_token_id, device=inputs_embeds.device))
            mask = (inputs_embeds == video_embedding).all(-1)
        else:
            mask = input_ids == self.config.video_token_id
        # a tensor-side check (transformers' helper): no host sync, so torch.compile keeps one graph
        torch_compilable_check(
            mask.sum() == video_features.shape[0],
            lambda: f"Video features and video tokens do not match: the text holds {int(mask.sum())} `<video>` placeholder "
            f"tokens (id {self.config.video_token_id}) but the videos give {video_features.shape[0]} video tokens. "
            "Build inputs with VTokProcessor, which expands each `<video>` to config.num_video_tokens(num_frames), "
            "and pass one video per `<video>`.",
        )
        return mask

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_lengths: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        video_embeds: torch.FloatTensor | None = None,
        **kwargs,
    ) -> VTokModelOutputWithPast:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, max_num_frames, channels, height, width)`, *optional*):
            Frames from [`VTokVideoProcessor`]; one video per `<video>` in the text, in order.
        video_lengths (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
            True frame count per video (padding frames are never encoded).
        video_embeds (`torch.FloatTensor` of shape `(num_videos, max_num_tokens, token_dim)`, *optional*):
            Precomputed VTok tokens in place of `pixel_values_videos` (the vision encoder is then not run),
            with `video_lengths`; see [`~VTokModel.unpad_video_embeds`].
        kwargs:
            Go to the language model unchanged, the KV cache among them, under the name the installed
            transformers uses (`cache` from 5.24, `past_key_values` before).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if pixel_values_videos is not None and video_embeds is not None:
            raise ValueError("You must specify at most one of pixel_values_videos or video_embeds (the videos' precomputed VTok tokens).")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        video_features = video_tokens = None
        cached_length = max((value.get_seq_length() for value in kwargs.values() if isinstance(value, Cache)), default=0)
        continues_a_cache = cached_length > 0
        context = getattr(self.config.text_config, "max_position_embeddings", None)
        if context is not None and cached_length + inputs_embeds.shape[1] > context:
            logger.warning_once(
                f"The sequence has {cached_length + inputs_embeds.shape[1]} tokens, more than the language model's "
                f"max_position_embeddings={context}: it was not trained on positions that far. Sample fewer frames "
                "(each costs tokens: processor.num_video_tokens(num_frames)) or shorten the text."
            )
        if pixel_values_videos is not None or video_embeds is not None:
            video_features, video_tokens = self.get_video_features(pixel_values_videos, video_lengths, video_embeds)
            video_features = video_features.to(inputs_embeds.dtype)
            video_mask = self.get_placeholder_mask(input_ids, inputs_embeds, video_features)
            inputs_embeds = inputs_embeds.masked_scatter(video_mask.unsqueeze(-1), video_features)
        elif input_ids is not None and not continues_a_cache:
            torch_compilable_check(
                (input_ids != self.config.video_token_id).all(),
                "The text holds `<video>` placeholder tokens but no `pixel_values_videos` (or `video_embeds`) were given; "
                "pass the videos through VTokProcessor(text=..., videos=...).",
            )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return VTokModelOutputWithPast(**outputs, video_hidden_states=video_features, video_tokens=video_tokens)


class VTokForConditionalGeneration(VTokPreTrainedModel, GenerationMixin):
    """VTok model with a language modeling head (understanding) and a visual head that regresses
    the next VTok token (generation), trained with `L = L_under + lambda_visLM * L_visLM`."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: VTokConfig):
        super().__init__(config)
        self.model = VTokModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.visual_head = nn.Linear(config.text_config.hidden_size, config.vision_config.hidden_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_model_name_or_path: str | os.PathLike, text_model_name_or_path: str | os.PathLike, **config_overrides
    ) -> "VTokForConditionalGeneration":
        r"""
        A VTok model on a pretrained vision encoder and a pretrained causal LLM, as transformers'
        `VisionTextDualEncoderModel.from_vision_text_pretrained` composes its two towers.

        vision_model_name_or_path (`str` or `os.PathLike`):
            A vision checkpoint folder: a vision tower (`SiglipVisionModel`, `CLIPVisionModel`, ...) or a dual
            model that holds one as `vision_model` (`SiglipModel`, `CLIPModel`). Its weights are F, kept exactly.
        text_model_name_or_path (`str` or `os.PathLike`):
            A causal LM checkpoint folder with its tokenizer (Qwen2, Llama, ...). Its weights are kept exactly;
            the embeddings (and an untied head) grow by VTok's three special tokens, which the tokenizer
            gets with [`add_video_tokens`].
        config_overrides:
            Any [`VTokConfig`] field (`key_frame_pool_size`, `temporal_stride`, `video_tokenization`, ...).
            `vision_feature_select_strategy` defaults to `"default"` (drop the CLS token) for CLIP.

        The projector and g_phi start from their initialisation. Build the matching processor with
        [`VTokProcessor.from_vision_text_pretrained`]; it adds the same tokens to the same tokenizer.
        """
        vision = AutoModel.from_pretrained(vision_model_name_or_path)
        vision = getattr(vision, "vision_model", vision)  # a dual (CLIP / SigLIP) checkpoint holds its vision tower here
        language = AutoModelForCausalLM.from_pretrained(text_model_name_or_path)
        config_overrides.setdefault(
            "vision_feature_select_strategy", "default" if vision.config.model_type == "clip_vision_model" else "full"
        )
        return cls.from_pretrained_modules(
            vision,
            language.base_model,
            language.get_output_embeddings(),
            AutoTokenizer.from_pretrained(text_model_name_or_path),
            generation_config=language.generation_config,
            **config_overrides,
        )

    @classmethod
    def from_pretrained_modules(
        cls,
        vision_tower: PreTrainedModel,
        language_model: PreTrainedModel,
        lm_head: nn.Linear,
        tokenizer,
        multi_modal_projector: nn.Module | None = None,
        generation_config=None,
        **config_overrides,
    ) -> "VTokForConditionalGeneration":
        r"""
        A VTok model holding exact copies of loaded modules: a vision tower, a language model without its head
        (`AutoModel` of its config), its `lm_head` and, where one exists (a LLaVA checkpoint's), a projector with
        [`VTokMultiModalProjector`]'s layout. `tokenizer` gets VTok's tokens ([`add_video_tokens`], in place) and
        the embeddings grow to hold them. Shared by [`~VTokForConditionalGeneration.from_vision_text_pretrained`]
        and `modeling_vtok.convert_llava_to_vtok`; `config_overrides` are [`VTokConfig`] fields.
        """
        token_ids = add_video_tokens(tokenizer)
        text_config = language_model.config
        config = VTokConfig(
            vision_config=vision_tower.config.to_dict(),
            text_config=text_config.to_dict(),
            video_token_id=token_ids[VIDEO_TOKEN],
            video_start_token_id=token_ids[VIDEO_START_TOKEN],
            video_end_token_id=token_ids[VIDEO_END_TOKEN],
            tie_word_embeddings=text_config.tie_word_embeddings,
            eos_token_id=text_config.eos_token_id,
            pad_token_id=text_config.pad_token_id,
            **config_overrides,
        )
        model = cls(config)
        model.model.video_tokenizer.vision_tower.load_state_dict(vision_tower.state_dict())
        model.model.language_model.load_state_dict(language_model.state_dict())
        model.lm_head.load_state_dict(lm_head.state_dict())
        if multi_modal_projector is not None:
            model.model.multi_modal_projector.load_state_dict(multi_modal_projector.state_dict())
        if max(token_ids.values()) >= text_config.vocab_size:  # else the LLM's spare embedding rows hold them
            model.resize_token_embeddings(max(token_ids.values()) + 1)
        if generation_config is not None:
            model.generation_config = generation_config
        return model.eval()

    def get_video_features(self, pixel_values_videos=None, video_lengths=None, video_embeds=None):
        return self.model.get_video_features(pixel_values_videos, video_lengths, video_embeds)

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        """Upstream's, with the videos' stored VTok tokens (`video_embeds`) given to the prefill only, as upstream
        does with `pixel_values_videos`: later steps feed one new token and read the videos from the KV cache."""
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration and kwargs.get("use_cache", True):
            model_inputs.pop("video_embeds", None)
        return model_inputs

    def visual_loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L_visLM between predicted and true VTok tokens `(num_tokens, token_dim)`; form set by `visual_loss_type`."""
        loss_type = self.config.visual_loss_type
        loss = predicted.new_zeros(())
        if "mse" in loss_type:
            loss = loss + F.mse_loss(predicted, target)
        if "cosine" in loss_type:
            loss = loss + (1 - F.cosine_similarity(predicted, target, dim=-1)).mean()
        return loss

    def _visual_loss_from_sequence(self, input_ids, hidden_states, video_tokens, video_lengths, videos_to_generate):
        """Teacher forcing: the hidden state before each token of a flagged video predicts that token."""
        lengths = video_lengths.tolist() if video_lengths is not None else None
        num_videos = len(videos_to_generate)
        tokens_per_video = (
            [self.config.num_video_tokens(n) for n in lengths] if lengths is not None else [video_tokens.shape[0] // num_videos] * num_videos
        )
        flags = torch.repeat_interleave(videos_to_generate.to(torch.bool).cpu(), torch.tensor(tokens_per_video)).to(input_ids.device)
        placeholder = input_ids == self.config.video_token_id
        target = torch.zeros(*input_ids.shape, video_tokens.shape[-1], dtype=video_tokens.dtype, device=video_tokens.device)
        target = target.masked_scatter(placeholder.unsqueeze(-1), video_tokens.detach())
        generate_here = torch.zeros_like(placeholder).masked_scatter(placeholder, flags)
        # position p predicts the token at p + 1
        predict_mask = generate_here[:, 1:]
        if not predict_mask.any():
            return None
        predicted = self.visual_head(hidden_states[:, :-1][predict_mask])
        return self.visual_loss(predicted.float(), target[:, 1:][predict_mask].float())

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_lengths: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        videos_to_generate: torch.BoolTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        return_dict: bool | None = None,
        video_embeds: torch.FloatTensor | None = None,
        **kwargs,
    ) -> VTokCausalLMOutputWithPast | tuple:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Next-token targets for L_under; -100 is ignored, and so are `<video>` placeholders and padding.
        videos_to_generate (`torch.BoolTensor` of shape `(num_videos,)`, *optional*):
            Which videos the LLM should learn to write (L_visLM, teacher-forced on their true VTok tokens).
        video_embeds (`torch.FloatTensor` of shape `(num_videos, max_num_tokens, token_dim)`, *optional*):
            Precomputed VTok tokens in place of `pixel_values_videos`, with `video_lengths`; same loss, no vision encoder.
        kwargs:
            Go to the language model (the KV cache among them) and to the loss function.
        """
        # Before the forward it would waste. All False (VTokDataCollator's understanding batches) asks for nothing.
        if videos_to_generate is not None and videos_to_generate.any() and self.config.reads_only:
            raise ValueError(READS_ONLY_MESSAGE)
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            video_lengths=video_lengths,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            video_embeds=video_embeds,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        text_loss = visual_loss = None
        if labels is not None:
            labels = labels.clone()
            if input_ids is not None:
                labels[input_ids == self.config.video_token_id] = -100
            if attention_mask is not None and attention_mask.dim() == 2:
                labels[attention_mask == 0] = -100
            text_loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs)
        if videos_to_generate is not None:
            if outputs.video_tokens is None or input_ids is None:
                raise ValueError(
                    "videos_to_generate needs input_ids and the videos themselves (pixel_values_videos or video_embeds) as targets."
                )
            num_videos = len(pixel_values_videos if pixel_values_videos is not None else video_embeds)
            if len(videos_to_generate) != num_videos:
                raise ValueError(f"videos_to_generate has {len(videos_to_generate)} entries but {num_videos} videos were given.")
            visual_loss = self._visual_loss_from_sequence(input_ids, hidden_states, outputs.video_tokens, video_lengths, videos_to_generate)

        losses = [loss for loss in (text_loss, None if visual_loss is None else self.config.visual_loss_weight * visual_loss) if loss is not None]
        output = VTokCausalLMOutputWithPast(
            loss=sum(losses) if losses else None,
            logits=logits,
            text_loss=text_loss,
            visual_loss=visual_loss,
            video_hidden_states=outputs.video_hidden_states,
            **language_model_fields(outputs),
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def generate_video_tokens(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, num_frames: int = 8
    ) -> torch.FloatTensor:
        r"""Write the VTok tokens of a `num_frames`-frame video after a text prompt.

        Appends `<vid_start>` to the (left-padded) prompts, then runs the LLM autoregressively with
        its KV cache: the visual head regresses the next token, which is embedded exactly like an
        input video token and fed back. Deterministic (regression, no sampling).

        Returns `(batch_size, config.num_video_tokens(num_frames), token_dim)`: the key frame's S
        spatial tokens, then one residual token per later frame (window); for the "frames" baseline S
        tokens of every frame.
        """
        config = self.config
        if config.reads_only:
            raise ValueError(READS_ONLY_MESSAGE)
        if config.key_frame_refresh == "scene_cut":  # the written tokens would need key frames before any frame exists
            raise ValueError(
                "generate_video_tokens cannot write a video of a key_frame_refresh='scene_cut' model: its key frames "
                "fall where the frames' content changes, and a video being written has no frames yet. Generate with "
                "a model of key_frame_refresh='none' or 'interval'."
            )
        if input_ids.dim() != 2 or input_ids.shape[0] == 0:
            raise ValueError(f"input_ids must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}.")
        batch_size, device = input_ids.shape[0], input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        start = torch.full((batch_size, 1), config.video_start_token_id, dtype=input_ids.dtype, device=device)
        input_ids = torch.cat([input_ids, start], dim=1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(start)], dim=1)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # left padding keeps real tokens at 0..n-1

        inputs_embeds = self.get_input_embeddings()(input_ids)
        positions = config.token_layout.temporal_positions(num_frames).to(device)
        cache = {cache_keyword(self.model.language_model): DynamicCache(config=config.text_config)}
        tokens = []
        for step in range(len(positions)):
            hidden = self.model.language_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=True,
                **cache,
            ).last_hidden_state
            next_token = self.visual_head(hidden[:, -1])  # (batch_size, token_dim)
            tokens.append(next_token)
            inputs_embeds = self.model.embed_video_tokens(next_token[:, None], positions[step].expand(batch_size, 1))
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(batch_size, 1)], dim=1)
            position_ids = position_ids[:, -1:] + 1
        return torch.stack(tokens, dim=1)


__all__ = ["VTokPreTrainedModel", "VTokModel", "VTokForConditionalGeneration", "VTokModelOutputWithPast", "VTokCausalLMOutputWithPast"]
