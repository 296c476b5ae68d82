"""Composing VTok from pretrained parts: tiny random checkpoints of the real classes (SigLIP / CLIP vision,
Qwen2 / Llama text) saved to disk, loaded exactly, saved again and reloaded through the Auto classes."""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPConfig,
    CLIPModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from conftest import CORPUS
from modeling_vtok import VTokForConditionalGeneration
from processing_vtok import VTokProcessor
from processing_vtok.text_tokenizer import CHAT_TEMPLATE

TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8}
LLM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}


def llm_tokenizer() -> PreTrainedTokenizerFast:
    """An LLM's own tokenizer: BPE with a pad/eos token and a chat template, but no VTok tokens."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = ["<pad>", "<eos>", "<unk>", "<|im_start|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>", padding_side="left",
        chat_template=CHAT_TEMPLATE,
    )


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A SigLIP vision tower with its image processor, and a Qwen2 LLM with its tokenizer, saved to disk."""
    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    SiglipVisionModel(SiglipVisionConfig(**TOWER)).save_pretrained(root / "siglip")
    SiglipImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.45, 0.5], image_std=[0.2, 0.25, 0.3]).save_pretrained(root / "siglip")
    tokenizer = llm_tokenizer()
    Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), tie_word_embeddings=False, **LLM)).save_pretrained(root / "qwen2")
    tokenizer.save_pretrained(root / "qwen2")
    return root


def test_weights_of_both_parts_are_kept_exactly(parts):
    model = VTokForConditionalGeneration.from_vision_text_pretrained(parts / "siglip", parts / "qwen2", key_frame_pool_size=2)
    vision = SiglipVisionModel.from_pretrained(parts / "siglip")
    language = Qwen2ForCausalLM.from_pretrained(parts / "qwen2")
    for name, value in vision.state_dict().items():
        assert torch.equal(model.model.video_tokenizer.vision_tower.state_dict()[name], value), name
    old_vocab = language.config.vocab_size
    for name, value in language.model.state_dict().items():
        mine = model.model.language_model.state_dict()[name]
        assert torch.equal(mine[:old_vocab] if name == "embed_tokens.weight" else mine, value), name
    assert torch.equal(model.lm_head.weight[:old_vocab], language.lm_head.weight)

    config = model.config
    assert (config.video_token_id, config.video_start_token_id, config.video_end_token_id) == (old_vocab, old_vocab + 1, old_vocab + 2)
    assert config.text_config.vocab_size == old_vocab + 3 == model.lm_head.out_features
    assert config.num_key_frame_tokens == 4 and config.vision_feature_select_strategy == "full"


def test_composed_model_and_processor_save_and_reload_through_auto_classes(parts, tmp_path):
    model = VTokForConditionalGeneration.from_vision_text_pretrained(parts / "siglip", parts / "qwen2", temporal_stride=2)
    processor = VTokProcessor.from_vision_text_pretrained(parts / "siglip", parts / "qwen2", model.config)
    video_processor = processor.video_processor
    assert (video_processor.size.height, video_processor.size.width) == (32, 32)
    assert list(video_processor.image_mean) == [0.4, 0.45, 0.5] and list(video_processor.image_std) == [0.2, 0.25, 0.3]
    assert processor.tokenizer.chat_template == llm_tokenizer().chat_template

    clip = torch.randint(0, 255, (5, 32, 32, 3), dtype=torch.uint8).numpy()
    messages = [{"role": "user", "content": [{"type": "video", "video": clip}, {"type": "text", "text": "describe the video"}]}]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=5)
    assert int((inputs["input_ids"] == model.config.video_token_id).sum()) == model.config.num_video_tokens(5) == 16 + 2
    expected = model(**inputs).logits

    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "processor")
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "model")
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path / "processor")
    again = reloaded_processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=5)
    assert torch.equal(again["input_ids"], inputs["input_ids"])
    torch.testing.assert_close(reloaded(**again).logits, expected, rtol=0, atol=0)
    assert reloaded.generate(**again, max_new_tokens=2, do_sample=False).shape[1] == inputs["input_ids"].shape[1] + 2


def test_clip_dual_checkpoint_and_llama_with_tied_embeddings(tmp_path):
    torch.manual_seed(0)
    clip_text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 50}
    clip_config = CLIPConfig(vision_config=TOWER, text_config=clip_text, projection_dim=16)
    CLIPModel(clip_config).save_pretrained(tmp_path / "clip")
    tokenizer = llm_tokenizer()
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer) + 8, tie_word_embeddings=True, **LLM)).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")

    model = VTokForConditionalGeneration.from_vision_text_pretrained(tmp_path / "clip", tmp_path / "llama")
    clip = CLIPModel.from_pretrained(tmp_path / "clip")
    for name, value in clip.vision_model.state_dict().items():
        assert torch.equal(model.model.video_tokenizer.vision_tower.state_dict()[name], value), name
    assert model.config.vision_feature_select_strategy == "default"  # CLIP's CLS token is dropped
    # the LLM's spare embedding rows hold the three new tokens: no resize, tied head
    assert model.config.text_config.vocab_size == len(tokenizer) + 8 and model.config.video_end_token_id == len(tokenizer) + 2
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    features, tokens = model.get_video_features(torch.randn(1, 3, 3, 32, 32))
    assert features.shape == (16 + 2, 32) and tokens.shape == (16 + 2, 32)


def test_twenty_lora_trainer_steps_on_the_composed_model(parts, tmp_path):
    from modeling_vtok.peft_vtok import vtok_lora_config
    from modeling_vtok.trainer_vtok import VTokTrainer
    from modeling_vtok.training_vtok import vtok_training_arguments
    from peft import get_peft_model
    from processing_vtok import VTokDataCollator
    from test_end_to_end import moving_square

    model = VTokForConditionalGeneration.from_vision_text_pretrained(parts / "siglip", parts / "qwen2", key_frame_pool_size=2)
    processor = VTokProcessor.from_vision_text_pretrained(parts / "siglip", parts / "qwen2", model.config)
    vision_before = {name: value.clone() for name, value in model.model.video_tokenizer.vision_tower.state_dict().items()}
    peft_model = get_peft_model(model, vtok_lora_config("llm+tokenizer"))
    examples = [
        {"video": moving_square(4)[:, :, ::-1] if i % 2 else moving_square(4), "question": "which way does the circle move ?", "answer": ("right", "left")[i % 2]}
        for i in range(8)
    ]
    args = vtok_training_arguments(str(tmp_path), max_steps=20, per_device_train_batch_size=4, learning_rate=5e-3, logging_steps=5)
    trainer = VTokTrainer(model=peft_model, args=args, train_dataset=examples, data_collator=VTokDataCollator(processor, num_frames=4))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    for name, value in model.model.video_tokenizer.vision_tower.state_dict().items():  # the tower stays frozen
        assert torch.equal(value, vision_before[name]), name
