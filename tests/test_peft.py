"""LoRA presets: what trains, adapter save/load, merge, named adapters."""

import pytest
import torch
from peft import PeftModel

from modeling_vtok import VTokForConditionalGeneration
from modeling_vtok.peft_vtok import add_vtok_adapters, load_vtok_adapters, vtok_lora_config
from peft import LoraConfig, get_peft_model
from test_modeling_vtok import VTokModelTester


def trained_step(model, inputs):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    model(**inputs, labels=inputs["input_ids"], videos_to_generate=torch.tensor([True])).loss.backward()
    optimizer.step()
    model.eval()


@pytest.fixture
def setup():
    tester = VTokModelTester()
    return tester.model(), tester.inputs(frame_counts=(4,))


def test_llm_preset_trains_only_lora_on_the_language_model(setup):
    model, _ = setup
    peft_model = get_peft_model(model, vtok_lora_config("llm"))
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name and ".language_model." in name for name in trainable)
    assert not any("vision_tower" in name and "lora_" in name for name, _ in peft_model.named_parameters())


@pytest.mark.parametrize("lora_config", [vtok_lora_config("llm", include_vision_encoder=True), LoraConfig(target_modules="all-linear")])
def test_lora_on_the_frozen_vision_tower_gets_gradients(setup, lora_config):
    """The tower's own weights stay frozen, but LoRA adapters on it are trained, not silently dead."""
    model, inputs = setup
    peft_model = get_peft_model(model, lora_config)
    trainable = {name: p for name, p in peft_model.named_parameters() if "vision_tower" in name and p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    # "all-linear" also adapts SigLIP's pooling head, which VTok does not use (it reads patch features)
    vision_lora = {name: p for name, p in trainable.items() if ".encoder.layers." in name}
    assert len(vision_lora) == 2 * 6 * 2  # A and B, six projections, two layers
    peft_model.train()
    peft_model(**inputs, labels=inputs["input_ids"]).loss.backward()
    lora_b = [p for name, p in vision_lora.items() if "lora_B" in name]
    assert all(p.grad is not None for p in vision_lora.values()) and any(p.grad.abs().sum() > 0 for p in lora_b)


def test_tokenizer_preset_also_trains_residual_mlp_and_projector(setup):
    model, _ = setup
    peft_model = get_peft_model(model, vtok_lora_config("llm+tokenizer"))
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("residual_mlp" in n for n in trainable) and any("multi_modal_projector" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)
    with_vision = get_peft_model(VTokModelTester().model(), vtok_lora_config("llm", include_vision_encoder=True))
    assert any("vision_tower" in n and "lora_" in n for n, _ in with_vision.named_parameters())
    with pytest.raises(ValueError, match="Unknown LoRA preset 'vision'"):
        vtok_lora_config("vision")


def test_adapter_save_load_and_merge_reproduce_logits(setup, tmp_path):
    model, inputs = setup
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = get_peft_model(model, vtok_lora_config("llm+tokenizer", init_lora_weights=False))
    trained_step(peft_model, inputs)
    expected = peft_model(**inputs).logits
    peft_model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").exists()

    fresh = VTokForConditionalGeneration(model.config)
    fresh.load_state_dict(base_state)
    reloaded = PeftModel.from_pretrained(fresh.eval(), tmp_path)
    torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=0, atol=0)

    merged = reloaded.merge_and_unload()
    assert isinstance(merged, VTokForConditionalGeneration)
    torch.testing.assert_close(merged(**inputs).logits, expected, atol=1e-5, rtol=1e-5)


def test_named_adapters_switch(setup):
    model, inputs = setup
    peft_model = add_vtok_adapters(model)
    assert peft_model.active_adapter == "understanding"
    trained_step(peft_model, inputs)
    understanding_logits = peft_model(**inputs).logits
    peft_model.set_adapter("generation")
    generation_logits = peft_model(**inputs).logits
    assert not torch.allclose(understanding_logits, generation_logits)
    peft_model.set_adapter("understanding")
    torch.testing.assert_close(peft_model(**inputs).logits, understanding_logits)


def test_named_adapters_save_and_load_back(setup, tmp_path):
    model, inputs = setup
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = add_vtok_adapters(model)
    for name in ("understanding", "generation"):
        peft_model.set_adapter(name)
        trained_step(peft_model, inputs)
    expected = {}
    for name in ("understanding", "generation"):
        peft_model.set_adapter(name)
        expected[name] = peft_model(**inputs).logits
    peft_model.save_pretrained(tmp_path)

    fresh = VTokForConditionalGeneration(model.config)
    fresh.load_state_dict(base_state)
    reloaded = load_vtok_adapters(fresh.eval(), tmp_path)
    assert reloaded.active_adapter == "understanding"
    for name in ("understanding", "generation"):
        reloaded.set_adapter(name)
        torch.testing.assert_close(reloaded(**inputs).logits, expected[name], rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match=r"holds no VTok adapter\(s\) \['understanding', 'generation'\]"):
        load_vtok_adapters(fresh, tmp_path / "understanding")
