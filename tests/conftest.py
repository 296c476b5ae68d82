"""Tiny, seeded CPU configurations shared by the whole suite (SigLIP vision + Qwen2 text), and the loader
of the repository's scripts (examples, benchmarks), which are files, not an installed package."""

import importlib.util
from pathlib import Path

import pytest
import torch

from modeling_vtok import VTokConfig

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """The module of the script at `relative_path` in the repository (e.g. "benchmarks/tv_align_shapes.py"),
    executed once per call, named after its file."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Token ids inside the tiny vocabulary, reserved for the video special tokens.
TINY_VOCAB_SIZE = 99
VIDEO_TOKEN_ID = 96
VIDEO_START_TOKEN_ID = 97
VIDEO_END_TOKEN_ID = 98


def tiny_vision_config(image_size: int = 32, patch_size: int = 8) -> dict:
    return {
        "model_type": "siglip_vision_model",
        "image_size": image_size,
        "patch_size": patch_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }


def tiny_text_config(vocab_size: int = TINY_VOCAB_SIZE) -> dict:
    return {
        "model_type": "qwen2",
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
    }


def tiny_vtok_config(**overrides) -> VTokConfig:
    """A VTok config small enough for CPU tests: 32x32 frames, 4x4 patch grid (S = 16)."""
    kwargs = {
        "vision_config": tiny_vision_config(),
        "text_config": tiny_text_config(),
        "video_token_id": VIDEO_TOKEN_ID,
        "video_start_token_id": VIDEO_START_TOKEN_ID,
        "video_end_token_id": VIDEO_END_TOKEN_ID,
    }
    kwargs.update(overrides)
    return VTokConfig(**kwargs)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


CORPUS = [
    "a red circle moves left",
    "a blue square moves right",
    "which way does the circle move ?",
    "how many shapes are there ?",
    "left right up down one two three",
    "describe the video",
]


def tiny_stack(**config_overrides):
    """A tiny model and its processor sharing a locally trained tokenizer: `(model, processor)`."""
    from modeling_vtok import VTokForConditionalGeneration
    from processing_vtok import VTokProcessor, VTokVideoProcessor, train_text_tokenizer

    tokenizer = train_text_tokenizer(CORPUS * 4, vocab_size=300)
    config = tiny_vtok_config(
        text_config=tiny_text_config(vocab_size=len(tokenizer)),
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        video_start_token_id=tokenizer.convert_tokens_to_ids("<vid_start>"),
        video_end_token_id=tokenizer.convert_tokens_to_ids("<vid_end>"),
        **config_overrides,
    )
    processor = VTokProcessor.from_model_config(config, VTokVideoProcessor(size={"height": 32, "width": 32}), tokenizer)
    return VTokForConditionalGeneration(config).eval(), processor
