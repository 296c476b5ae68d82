"""convert_llava_to_vtok: tiny random LLaVA-NeXT-Video and LLaVA-OneVision checkpoints of the real classes (with
their processors) written at test time, converted, reloaded through the Auto classes and compared to the source."""

import copy

import numpy as np
import pytest
import torch
from peft import get_peft_model
from test_composition import llm_tokenizer
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaNextImageProcessor,
    LlavaNextVideoConfig,
    LlavaNextVideoForConditionalGeneration,
    LlavaNextVideoProcessor,
    LlavaNextVideoVideoProcessor,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
)

from modeling_vtok.convert_llava_to_vtok import main
from modeling_vtok.peft_vtok import vtok_lora_config
from processing_vtok import VTokDataCollator

# CLIP with a CLS token and 8x8 patches. LLaVA-NeXT-Video: 32x32 frames, a 4x4 grid average-pooled to 2x2 per frame.
# LLaVA-OneVision: 40x40 frames, a 5x5 grid resized bilinearly to 3x3 after the projector (odd, as the real
# 27x27 -> 14x14, so the resize is no 2x2 average), then one newline per video.
TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "patch_size": 8}
IMAGE_SIZE = {"next_video": 32, "onevision": 40}
KEY_FRAME_TOKENS = {"next_video": 4, "onevision": 9}
LLM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
MEAN, STD = [0.48, 0.46, 0.41], [0.27, 0.26, 0.28]


def llava_tokenizer():
    tokenizer = llm_tokenizer()
    tokenizer.add_tokens(["<image>", "<video>"], special_tokens=True)
    return tokenizer


def save_llava(folder, kind: str, **config_overrides):
    """A tiny LLaVA video checkpoint of `kind` ("next_video" or "onevision") with its processor, saved to `folder`."""
    tokenizer = llava_tokenizer()
    ids = {"image_token_index": tokenizer.convert_tokens_to_ids("<image>"), "video_token_index": tokenizer.convert_tokens_to_ids("<video>")}
    common = dict(vision_config=CLIPVisionConfig(**TOWER, image_size=IMAGE_SIZE[kind]).to_dict(),
                  text_config=LlamaConfig(vocab_size=len(tokenizer), **LLM).to_dict(), vision_feature_select_strategy="default", **ids)
    torch.manual_seed(0)
    if kind == "next_video":
        config = LlavaNextVideoConfig(**common, vision_feature_layer=-2, spatial_pool_stride=2, **config_overrides)
        model = LlavaNextVideoForConditionalGeneration(config)
        sizes = dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
        processor = LlavaNextVideoProcessor(
            video_processor=LlavaNextVideoVideoProcessor(**sizes), image_processor=LlavaNextImageProcessor(**sizes),
            tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        )
    else:  # vision_feature_layer=-1, LLaVA-OneVision's default: the last layer before the tower's post-layernorm
        model = LlavaOnevisionForConditionalGeneration(LlavaOnevisionConfig(**common, vision_feature_layer=-1, **config_overrides))
        sizes = dict(size={"height": 40, "width": 40}, image_mean=MEAN, image_std=STD)
        processor = LlavaOnevisionProcessor(
            video_processor=LlavaOnevisionVideoProcessor(**sizes), image_processor=LlavaOnevisionImageProcessor(**sizes),
            tokenizer=tokenizer, vision_feature_select_strategy="default", num_image_tokens=25,
        )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model.eval()


@pytest.fixture(scope="module", params=["next_video", "onevision"])
def converted(request, tmp_path_factory):
    """`(kind, source folder, source model, converted model, converted processor)` for each source architecture."""
    root = tmp_path_factory.mktemp(request.param)
    source = save_llava(root / "llava", request.param)
    main(["--input_dir", str(root / "llava"), "--output_dir", str(root / "vtok")])
    model = AutoModelForImageTextToText.from_pretrained(root / "vtok").eval()
    return request.param, root / "llava", source, model, AutoProcessor.from_pretrained(root / "vtok")


def test_reused_parts_are_bitwise_equal(converted):
    _, _, source, model, processor = converted
    vocab = source.config.text_config.vocab_size
    assert type(model).__name__ == "VTokForConditionalGeneration" and type(processor).__name__ == "VTokProcessor"
    pairs = [(source.model.vision_tower, model.model.video_tokenizer.vision_tower),
             (source.model.multi_modal_projector, model.model.multi_modal_projector)]
    for old, new in pairs:
        old_state, new_state = old.state_dict(), new.state_dict()
        assert old_state.keys() == new_state.keys()
        assert all(torch.equal(old_state[name], new_state[name]) for name in old_state)
    for name, weight in source.model.language_model.state_dict().items():
        new = model.model.language_model.state_dict()[name]
        assert torch.equal(new[:vocab] if name == "embed_tokens.weight" else new, weight), name
    assert torch.equal(model.lm_head.weight[:vocab], source.lm_head.weight)
    # The source's `<video>` is reused; `<vid_start>` and `<vid_end>` are the two new rows.
    assert model.config.video_token_id == source.config.video_token_id
    assert model.config.text_config.vocab_size == vocab + 2 == len(processor.tokenizer)
    assert model.config.vision_feature_select_strategy == "default"
    # -1 is read as the source reads it: the last hidden state before the post-layernorm, by its positive index
    assert model.config.vision_feature_layer == (-2 if source.config.vision_feature_layer == -2 else TOWER["num_hidden_layers"])
    if source.config.model_type == "llava_onevision":
        assert torch.equal(model.model.video_newline, source.model.image_newline)


def source_video_features(source, pixels):
    """The source model's embeddings of the videos `pixels`, flattened over videos (OneVision's newline included)."""
    layer, strategy = source.config.vision_feature_layer, source.config.vision_feature_select_strategy
    with torch.no_grad():
        features = source.model.get_video_features(pixels, vision_feature_layer=layer, vision_feature_select_strategy=strategy).pooler_output
    return features.reshape(-1, features.shape[-1])


def assert_reads_as_the_source(source, model, inputs):
    """Equal video embeddings and equal logits (the source's prompt has no `<vid_start>`/`<vid_end>`)."""
    pixels = inputs["pixel_values_videos"]
    with torch.no_grad():
        features, _ = model.model.get_video_features(pixels, inputs.get("video_lengths"))
    torch.testing.assert_close(features, source_video_features(source, pixels), rtol=0, atol=1e-6)
    ids = inputs["input_ids"]
    ids = ids[:, (ids[0] != model.config.video_start_token_id) & (ids[0] != model.config.video_end_token_id)]
    with torch.no_grad():
        expected = source(input_ids=ids, pixel_values_videos=pixels).logits
        got = model(input_ids=ids, pixel_values_videos=pixels).logits[..., : source.config.text_config.vocab_size]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_one_frame_video_costs_and_embeds_as_in_the_source(converted):
    """A one-frame video: the source processor's token count (OneVision's newline included), and the same input
    embeddings and logits as the source (OneVision: its projector, then the bilinear resize, then the newline)."""
    kind, source_folder, source, model, processor = converted
    side = IMAGE_SIZE[kind]
    frame = np.random.default_rng(0).integers(0, 255, (1, side, side, 3), dtype=np.uint8)
    inputs = processor(text="what is in <video> ?", videos=[frame], return_tensors="pt")
    source_ids = AutoProcessor.from_pretrained(source_folder)(text="<video>", videos=[frame], return_tensors="pt")["input_ids"]
    source_count = int((source_ids == source.config.video_token_id).sum())
    newline = kind == "onevision"
    assert model.config.num_key_frame_tokens == KEY_FRAME_TOKENS[kind]
    assert processor.num_video_tokens(1) == KEY_FRAME_TOKENS[kind] + newline == source_count
    assert_reads_as_the_source(source, model, inputs)


def test_onevision_frames_mode_embeds_a_whole_video_as_the_source(tmp_path):
    """Converted with --video_tokenization frames, a converted LLaVA-OneVision embeds a 3-frame video exactly as
    the source does (every frame projected and resized, one newline), and stored VTok tokens give the same."""
    source = save_llava(tmp_path / "llava", "onevision")
    main(["--input_dir", str(tmp_path / "llava"), "--output_dir", str(tmp_path / "vtok"), "--video_tokenization", "frames"])
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "vtok").eval()
    processor = AutoProcessor.from_pretrained(tmp_path / "vtok")
    frames = np.random.default_rng(2).integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)
    inputs = processor(text="what moves in <video> ?", videos=[frames], return_tensors="pt")
    source_ids = AutoProcessor.from_pretrained(tmp_path / "llava")(text="<video>", videos=[frames], return_tensors="pt")["input_ids"]
    assert processor.num_video_tokens(3) == 3 * 9 + 1 == int((source_ids == source.config.video_token_id).sum())
    assert_reads_as_the_source(source, model, inputs)

    with torch.no_grad():
        stored = model.model.get_vtok_tokens(inputs["pixel_values_videos"]).tokens  # the whole 5x5 grid of each frame
        assert stored.shape == (1, 3 * 25, TOWER["hidden_size"])
        from_pixels, _ = model.model.get_video_features(inputs["pixel_values_videos"])
        from_stored, _ = model.model.get_video_features(video_embeds=stored, video_lengths=torch.tensor([3]))
    torch.testing.assert_close(from_stored, from_pixels, rtol=0, atol=0)


def test_training_from_stored_tokens_gives_the_loss_of_pixels(converted):
    """VTokDataCollator batches a corpus of stored VTok tokens (OneVision's: each key frame's whole patch grid, no
    newline) for the converted model, which gives the loss of the same examples as pixels."""
    kind, *_, model, processor = converted
    generator = np.random.default_rng(4)
    videos = [generator.integers(0, 255, (n, IMAGE_SIZE[kind], IMAGE_SIZE[kind], 3), dtype=np.uint8) for n in (3, 2)]
    rows = [{"question": "what moves ?", "answer": "a square"}, {"question": "which colour ?", "answer": "red"}]
    stored = []
    for row, video in zip(rows, videos):
        inputs = processor.video_processor([video], return_tensors="pt")
        with torch.no_grad():
            vtok = model.model.get_vtok_tokens(inputs["pixel_values_videos"], inputs["video_lengths"])
        stored.append({**row, "video_tokens": vtok.tokens[vtok.mask].numpy(), "num_frames": int(inputs["video_lengths"][0])})
    grid = (IMAGE_SIZE[kind] // TOWER["patch_size"]) ** 2 if kind == "onevision" else KEY_FRAME_TOKENS[kind]
    assert [len(row["video_tokens"]) for row in stored] == [grid + 2, grid + 1] == [processor.num_stored_video_tokens(n) for n in (3, 2)]

    collator = VTokDataCollator(processor)
    pixel_batch, token_batch = collator([{**row, "video": video} for row, video in zip(rows, videos)]), collator(stored)
    assert torch.equal(pixel_batch["input_ids"], token_batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(model(**token_batch).loss, model(**pixel_batch).loss)


def test_a_model_in_onevision_form_refuses_to_write_videos(converted):
    kind, *_, model, processor = converted
    if kind != "onevision":
        pytest.skip("LLaVA-NeXT-Video's form is VTok's own: such a model can learn to write videos")
    frames = np.random.default_rng(3).integers(0, 255, (2, 40, 40, 3), dtype=np.uint8)
    inputs = processor(text="<video>", videos=[frames], return_tensors="pt")
    with pytest.raises(ValueError, match="reads videos in LLaVA-OneVision's form.*key_frame_pooling='average'"):
        model(**inputs, videos_to_generate=torch.tensor([True]))
    with pytest.raises(ValueError, match="cannot learn to write videos"):
        model.generate_video_tokens(inputs["input_ids"], num_frames=2)


def test_generate_and_a_short_lora_finetune(converted):
    """generate runs on a 3-frame video; a LoRA finetune (the reused weights frozen) lowers the loss."""
    kind, *_, model, processor = converted
    frames = np.random.default_rng(1).integers(0, 255, (3, IMAGE_SIZE[kind], IMAGE_SIZE[kind], 3), dtype=np.uint8)
    inputs = processor(text="what moves in <video> ?", videos=[frames], return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape == (1, inputs["input_ids"].shape[1] + 3)

    peft_model = get_peft_model(copy.deepcopy(model), vtok_lora_config("llm"))
    trainable = [name for name, weight in peft_model.named_parameters() if weight.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    labels = inputs["input_ids"].clone()
    labels[labels == model.config.video_token_id] = -100
    optimizer = torch.optim.AdamW([w for w in peft_model.parameters() if w.requires_grad], lr=1e-2)
    peft_model.train()
    losses = []
    for _ in range(10):
        loss = peft_model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0], losses


def test_unsupported_folders_fail_with_a_clear_message(tmp_path, capsys):
    def convert(folder):
        with pytest.raises(SystemExit) as exit_info:
            main(["--input_dir", str(folder), "--output_dir", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    assert "has no config.json" in convert(tmp_path)
    tokenizer = llm_tokenizer()
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **LLM)).save_pretrained(tmp_path / "llama")
    message = convert(tmp_path / "llama")
    assert "holds a 'llama' model" in message and "LlavaNextVideoForConditionalGeneration" in message
    save_llava(tmp_path / "max_pool", "next_video", spatial_pool_mode="max")
    assert "spatial_pool_mode='max'" in convert(tmp_path / "max_pool")
    assert not (tmp_path / "out").exists()
