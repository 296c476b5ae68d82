"""VTokModel / VTokForConditionalGeneration: placeholders, gradients, batching, save/load, generation."""

import dataclasses
import os

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from conftest import VIDEO_END_TOKEN_ID, VIDEO_START_TOKEN_ID, VIDEO_TOKEN_ID, tiny_text_config, tiny_vtok_config
from modeling_vtok import VTokConfig, VTokForConditionalGeneration, VTokModel


class VTokModelTester:
    """Builds a tiny model and inputs with the placeholders already expanded, like VTokProcessor does."""

    def __init__(self, **config_overrides):
        self.config = tiny_vtok_config(**config_overrides)

    def model(self) -> VTokForConditionalGeneration:
        return VTokForConditionalGeneration(self.config).eval()

    def video_ids(self, num_frames: int) -> list[int]:
        return [VIDEO_START_TOKEN_ID] + [VIDEO_TOKEN_ID] * self.config.num_video_tokens(num_frames) + [VIDEO_END_TOKEN_ID]

    def inputs(self, frame_counts=(4,), prompt=(5, 6), answer=(7, 8, 9)):
        """Left-padded batch: `prompt <video> answer` per video."""
        sequences = [list(prompt) + self.video_ids(n) + list(answer) for n in frame_counts]
        width = max(map(len, sequences))
        input_ids = torch.tensor([[0] * (width - len(s)) + s for s in sequences])
        attention_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences])
        pixel_values_videos = torch.zeros(len(frame_counts), max(frame_counts), 3, 32, 32)
        for i, n in enumerate(frame_counts):
            pixel_values_videos[i, :n] = torch.randn(n, 3, 32, 32)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values_videos": pixel_values_videos,
            "video_lengths": torch.tensor(list(frame_counts)),
        }


ONEVISION_FORM = {"key_frame_pooling": "projected_bilinear", "video_newline": True}


@pytest.mark.parametrize(
    "overrides,num_frames,expected",
    [({}, 5, 16 + 4), ({"temporal_stride": 3}, 8, 16 + 3), ({"key_frame_pool_size": 2}, 3, 4 + 2), ({"video_tokenization": "frames"}, 3, 48),
     ({"key_frame_pool_size": 2, **ONEVISION_FORM}, 3, 4 + 2 + 1), ({"key_frame_pool_size": 2, "video_tokenization": "frames", **ONEVISION_FORM}, 3, 3 * 4 + 1)],
)  # fmt: skip
def test_llm_sees_exactly_the_counted_video_tokens(overrides, num_frames, expected):
    tester = VTokModelTester(**overrides)
    model = tester.model()
    inputs = tester.inputs(frame_counts=(num_frames,))
    assert (inputs["input_ids"] == VIDEO_TOKEN_ID).sum() == expected == tester.config.num_video_tokens(num_frames)
    features, tokens = model.get_video_features(inputs["pixel_values_videos"], inputs["video_lengths"])
    assert features.shape == (expected, tester.config.text_config.hidden_size)
    # the VTok tokens themselves: one per LLM token, except in LLaVA-OneVision's form (every patch of the key frame, no newline)
    num_vtok_tokens = expected if not tester.config.reads_only else (16 + 2 if tester.config.video_tokenization == "vtok" else 3 * 16)
    assert tokens.shape == (num_vtok_tokens, tester.config.vision_config.hidden_size)
    assert tester.config.tokenizer_layout.num_video_tokens(num_frames) == num_vtok_tokens
    out = model(**inputs)
    assert out.video_hidden_states.shape[0] == expected


def test_placeholder_count_mismatch_raises():
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4,))
    inputs["input_ids"] = inputs["input_ids"][:, 1:]  # drop one prompt token: still fine
    inputs["input_ids"][0, 3] = 5  # one placeholder fewer
    inputs["attention_mask"] = inputs["attention_mask"][:, 1:]
    with pytest.raises(ValueError, match="holds 18 `<video>` placeholder tokens .* give 19 video tokens"):
        model(**inputs)
    two_videos = tester.inputs(frame_counts=(4, 4))
    with pytest.raises(ValueError, match="do not match"):
        model(input_ids=two_videos["input_ids"][:1], pixel_values_videos=two_videos["pixel_values_videos"])
    with pytest.raises(ValueError, match="no `pixel_values_videos`"):
        model(input_ids=two_videos["input_ids"][:1])


@pytest.mark.parametrize("use_cache", [True, False])
def test_placeholders_without_videos_raise_in_generate(use_cache):
    """generate passes an (empty) KV cache on the first step: the guard must still fire."""
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4,), answer=())
    with pytest.raises(ValueError, match="no `pixel_values_videos`"):
        model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=2, use_cache=use_cache)


def test_outputs_follow_upstream_classes_and_the_cache_continues_a_forward():
    """The outputs are transformers' own classes; the KV cache comes back and goes in under the
    installed transformers' name (`cache` from 5.24, `past_key_values` before)."""
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4,), answer=(7, 8))
    full = model(**inputs, use_cache=False).logits
    assert isinstance(model(**inputs), CausalLMOutputWithPast) and isinstance(model.model(**inputs), BaseModelOutputWithPast)

    prefix = {**inputs, "input_ids": inputs["input_ids"][:, :-1], "attention_mask": inputs["attention_mask"][:, :-1]}
    out = model(**prefix, use_cache=True)
    caches = {name: value for name, value in out.items() if isinstance(value, Cache)}
    assert len(caches) == 1 and out.to_tuple()  # one cache field, whatever its name
    ((name, cache),) = caches.items()
    assert name in {field.name for field in dataclasses.fields(CausalLMOutputWithPast)}
    step = model(input_ids=inputs["input_ids"][:, -1:], attention_mask=inputs["attention_mask"], **{name: cache})
    torch.testing.assert_close(step.logits[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)


def test_a_sequence_longer_than_the_context_warns():
    tester = VTokModelTester(text_config={**tiny_text_config(), "max_position_embeddings": 16})
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4,))  # 2 + 21 + 3 = 26 tokens
    logger = logging.get_logger("modeling_vtok.modeling_vtok")
    with CaptureLogger(logger) as captured:
        model(**inputs)
    assert "26 tokens, more than the language model's max_position_embeddings=16" in captured.out


def test_gradients_reach_residual_mlp_and_projector_not_frozen_encoder():
    tester = VTokModelTester()
    model = tester.model().train()
    inputs = tester.inputs(frame_counts=(4,))
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    tokenizer = model.model.video_tokenizer
    assert tokenizer.residual_mlp.linear_1.weight.grad.abs().sum() > 0
    assert model.model.multi_modal_projector.linear_1.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tokenizer.vision_tower.parameters())


def test_unfrozen_encoder_gets_gradients():
    tester = VTokModelTester(freeze_vision_encoder=False)
    model = tester.model().train()
    inputs = tester.inputs(frame_counts=(4,))
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    assert model.model.video_tokenizer.vision_tower.embeddings.patch_embedding.weight.grad.abs().sum() > 0


def test_labels_ignore_placeholders_and_padding():
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4, 2))
    manual = inputs["input_ids"].clone()
    manual[(manual == VIDEO_TOKEN_ID) | (inputs["attention_mask"] == 0)] = -100
    auto = model(**inputs, labels=inputs["input_ids"]).text_loss
    torch.testing.assert_close(auto, model(**inputs, labels=manual).text_loss)


def test_batch_of_different_lengths_equals_single_runs():
    tester = VTokModelTester()
    model = tester.model()
    batch = tester.inputs(frame_counts=(6, 3))
    logits = model(**batch).logits
    for i, n in enumerate((6, 3)):
        keep = batch["attention_mask"][i].bool()
        single = model(
            input_ids=batch["input_ids"][i : i + 1, keep],
            pixel_values_videos=batch["pixel_values_videos"][i : i + 1, :n],
        ).logits
        torch.testing.assert_close(logits[i, keep], single[0], atol=1e-4, rtol=1e-4)


def test_dict_and_tuple_outputs_agree():
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs()
    as_dict = model(**inputs, labels=inputs["input_ids"])
    as_tuple = model(**inputs, labels=inputs["input_ids"], return_dict=False)
    torch.testing.assert_close(as_tuple[0], as_dict.loss)
    assert any(isinstance(t, torch.Tensor) and t.shape == as_dict.logits.shape and torch.equal(t, as_dict.logits) for t in as_tuple)


def test_save_load_round_trip_through_auto_classes(tmp_path):
    tester = VTokModelTester(temporal_stride=2, residual_pooling="attention")
    model = tester.model()
    inputs = tester.inputs(frame_counts=(5,))
    model.model.video_tokenizer.fit_feature_statistics(torch.rand(3, 5, 3, 32, 32))  # buffers, saved with the weights
    expected = model(**inputs).logits
    model.save_pretrained(tmp_path)
    files = os.listdir(tmp_path)
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)

    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, VTokConfig) and config.temporal_stride == 2 and config.residual_pooling == "attention"
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, VTokForConditionalGeneration)
    assert torch.equal(reloaded(**inputs).logits, expected)
    for name in ("key_mean", "key_std", "residual_mean", "residual_std"):
        assert torch.equal(getattr(reloaded.model.video_tokenizer, name), getattr(model.model.video_tokenizer, name))

    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, VTokModel)
    torch.testing.assert_close(base(**inputs).last_hidden_state, model.model(**inputs).last_hidden_state, rtol=0, atol=0)


def test_generate_answers_after_a_video():
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4, 2), answer=())
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape == (2, inputs["input_ids"].shape[1] + 4)
    assert torch.equal(generated[:, : inputs["input_ids"].shape[1]], inputs["input_ids"])


# -- generation direction (L_visLM and generate_video_tokens) --


def test_visual_loss_only_for_flagged_videos():
    tester = VTokModelTester()
    model = tester.model()
    inputs = tester.inputs(frame_counts=(4, 3))
    assert model(**inputs).loss is None
    none_flagged = model(**inputs, videos_to_generate=torch.tensor([False, False]))
    assert none_flagged.visual_loss is None
    one = model(**inputs, videos_to_generate=torch.tensor([True, False])).visual_loss
    both = model(**inputs, videos_to_generate=torch.tensor([True, True])).visual_loss
    assert one > 0 and both > 0 and not torch.allclose(one, both)
    with pytest.raises(ValueError, match="videos_to_generate has 1 entries but 2 videos"):
        model(**inputs, videos_to_generate=torch.tensor([True]))


@pytest.mark.parametrize("loss_type", ["mse", "cosine", "mse+cosine"])
def test_visual_loss_decreases_on_tiny_overfit(loss_type):
    tester = VTokModelTester(visual_loss_type=loss_type)
    model = tester.model().train()
    inputs = tester.inputs(frame_counts=(4,))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(**inputs, labels=inputs["input_ids"], videos_to_generate=torch.tensor([True]))
        torch.testing.assert_close(out.loss, out.text_loss + model.config.visual_loss_weight * out.visual_loss)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.visual_loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("num_frames", [1, 4, 7])
def test_generate_video_tokens_shape_and_determinism(num_frames):
    tester = VTokModelTester()
    model = tester.model()
    prompts = torch.tensor([[0, 5, 6], [7, 8, 9]])
    attention_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    tokens = model.generate_video_tokens(prompts, attention_mask, num_frames=num_frames)
    assert tokens.shape == (2, 16 + num_frames - 1, 32)
    assert torch.equal(tokens, model.generate_video_tokens(prompts, attention_mask, num_frames=num_frames))
    # left padding does not change the answer for the padded prompt
    alone = model.generate_video_tokens(prompts[:1, 1:], num_frames=num_frames)
    torch.testing.assert_close(tokens[:1], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("video_tokenization, num_tokens", [("vtok", 16 + 2), ("frames", 3 * 16)])
def test_generate_video_tokens_matches_teacher_forcing(video_tokenization, num_tokens):
    """The KV-cache loop predicts what a full teacher-forced forward predicts at each position; the "frames"
    baseline writes S tokens of every frame."""
    tester = VTokModelTester(video_tokenization=video_tokenization)
    model = tester.model()
    prompt = torch.tensor([[5, 6]])
    tokens = model.generate_video_tokens(prompt, num_frames=3)
    assert tokens.shape == (1, num_tokens, 32)
    embeds = model.get_input_embeddings()(torch.tensor([[5, 6, VIDEO_START_TOKEN_ID]]))
    video_embeds = model.model.embed_video_tokens(tokens[0], model.config.token_layout.temporal_positions(3))[None]
    hidden = model.model.language_model(inputs_embeds=torch.cat([embeds, video_embeds[:, :-1]], dim=1)).last_hidden_state
    torch.testing.assert_close(model.visual_head(hidden[:, 2:]), tokens, atol=1e-4, rtol=1e-4)


def test_clip_and_llama_backbones_work_by_config():
    vision = {"model_type": "clip_vision_model", "image_size": 32, "patch_size": 8, "hidden_size": 32,
              "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {"model_type": "llama", "vocab_size": 99, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
    tester = VTokModelTester(vision_config=vision, text_config=text, vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = tester.model()
    assert type(model.model.language_model).__name__ == "LlamaModel"
    inputs = tester.inputs(frame_counts=(3,))
    assert model(**inputs).logits.shape == (1, inputs["input_ids"].shape[1], 99)
    # CLIP's CLS token must be dropped: keeping it is a clear error, not a silent shift
    with pytest.raises(ValueError, match="17 patch features per frame, expected 16"):
        VTokModelTester(vision_config=vision, text_config=text).model()(**inputs)


def test_onevision_form_embeds_pool_after_the_projector_and_end_with_the_newline(tmp_path):
    """`key_frame_pooling="projected_bilinear"` + `video_newline`, built by config: the key frame's projected 4x4
    grid resized bilinearly to 2x2, the residual tokens as VTok's, then the newline; kept by save/load; generate
    with the KV cache gives what full forwards give."""
    tester = VTokModelTester(key_frame_pool_size=2, **ONEVISION_FORM)
    model = tester.model()
    inputs = tester.inputs(frame_counts=(3, 2))
    features, tokens = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_lengths"])
    projected = model.model.embed_video_tokens(tokens, torch.tensor([0] * 16 + [1, 2] + [0] * 16 + [1]))
    for video, (start, end) in enumerate([(0, 18), (18, 35)]):
        grid = projected[start : start + 16].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
        pooled = torch.nn.functional.interpolate(grid, size=(2, 2), mode="bilinear").permute(0, 2, 3, 1).reshape(4, -1)
        expected = torch.cat([pooled, projected[start + 16 : end], model.model.video_newline[None]])
        torch.testing.assert_close(features[video * 7 : video * 7 + len(expected)], expected, rtol=0, atol=1e-6)

    model.save_pretrained(tmp_path)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert reloaded.config.key_frame_pooling == "projected_bilinear" and reloaded.config.video_newline
    assert torch.equal(reloaded.model.video_newline, model.model.video_newline)
    torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=1e-6)

    prompt = tester.inputs(frame_counts=(3, 2), answer=())
    generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    for _ in range(3):  # greedy by hand, without a cache
        next_ids = model(**{**prompt, "use_cache": False}).logits[:, -1].argmax(-1, keepdim=True)
        prompt = {**prompt, "input_ids": torch.cat([prompt["input_ids"], next_ids], 1),
                  "attention_mask": torch.cat([prompt["attention_mask"], torch.ones_like(next_ids)], 1)}  # fmt: skip
    assert torch.equal(generated, prompt["input_ids"])


def test_onevision_form_is_checked_in_the_config():
    with pytest.raises(ValueError, match=r"Unknown key_frame_pooling='max'"):
        tiny_vtok_config(key_frame_pooling="max")
    with pytest.raises(ValueError, match="LLaVA-OneVision's video form.*one; leave key_frame_refresh='none'"):
        tiny_vtok_config(video_newline=True, key_frame_refresh="interval", key_frame_interval=4)
    default = tiny_vtok_config(key_frame_pool_size=2)
    assert default.tokenizer_layout == default.token_layout and not default.reads_only
