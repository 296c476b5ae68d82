"""Tiny, seeded CPU configurations shared by the whole suite (SigLIP vision + Qwen2 text)."""

import pytest
import torch

from modeling_vtok import VTokConfig

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
