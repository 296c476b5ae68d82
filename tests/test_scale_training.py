"""Training at scale: the accelerate config files of examples/accelerate/ (DDP, FSDP2, DeepSpeed ZeRO-2/3)
and examples/train.py under `accelerate launch` with 2 CPU processes (docs/training.md, "Training at scale")."""

import os
import subprocess
import sys

import pytest
import torch
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
from safetensors.torch import load_file

from test_modeling_vtok import VTokModelTester
from test_training import EXAMPLES, TINY_RUN

CONFIGS = EXAMPLES / "accelerate"


@pytest.mark.parametrize(
    "name, distributed_type, zero_stage",
    [("ddp", DistributedType.MULTI_GPU, None), ("fsdp", DistributedType.FSDP, None),
     ("deepspeed_zero2", DistributedType.DEEPSPEED, 2), ("deepspeed_zero3", DistributedType.DEEPSPEED, 3)],
)  # fmt: skip
def test_config_file_loads_with_accelerate(name, distributed_type, zero_stage):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type == distributed_type and config.mixed_precision == "bf16" and not config.use_cpu
    assert config.num_machines == 1 and config.num_processes >= 2
    assert config.deepspeed_config.get("zero_stage") == zero_stage
    if zero_stage == 3:  # rank 0 can gather the weights for save_pretrained
        assert config.deepspeed_config["zero3_save_16bit_model"]


def test_fsdp_config_shards_each_llm_decoder_layer(monkeypatch):
    """The plugin accelerate builds from fsdp.yaml (the launcher passes each `fsdp_*` key as an `FSDP_*`
    variable) is FSDP2 with activation checkpointing and a full state dict, and its auto-wrap policy picks
    exactly the LLM's decoder layers, found through the model's `_no_split_modules`."""
    fsdp_config = load_config_from_file(str(CONFIGS / "fsdp.yaml")).fsdp_config
    for key, value in fsdp_config.items():
        monkeypatch.setenv(key.upper(), str(value).lower() if isinstance(value, bool) else str(value))
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.activation_checkpointing and plugin.reshard_after_forward is True
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
    model = VTokModelTester().model()
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    wrapped = [name for name, module in model.named_modules() if policy(module)]
    layers = model.model.language_model.layers
    assert wrapped == [f"model.language_model.layers.{i}" for i in range(len(layers))] and len(layers) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_accelerate_launch_two_cpu_processes_keeps_ranks_identical(name, tmp_path):
    """On CPU, accelerate (1.15) enables FSDP only on accelerators: the FSDP config trains with DDP and
    train.py says so. Both configs: 2 gloo processes, identical weights, equal to what was saved; DDP with
    gradient checkpointing, as docs/training.md recommends it (fsdp.yaml checkpoints by itself)."""
    checkpointing = ["--gradient-checkpointing"] if name == "ddp" else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(EXAMPLES.parent)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{name}.yaml"),
               "--num_processes", "2", "--mixed_precision", "no", str(EXAMPLES / "train.py"),
               *TINY_RUN, *checkpointing, "--stage", "vtok", "--steps", "2", "--dump-rank-weights", "--output-dir", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("trains with plain data parallelism (DDP)" in result.stderr) == (name == "fsdp")
    rank0 = load_file(tmp_path / "rank0_weights.safetensors")
    rank1 = load_file(tmp_path / "rank1_weights.safetensors")
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert rank0.keys() == rank1.keys() and set(saved) <= set(rank0)
    assert all(torch.equal(tensor, rank1[key]) for key, tensor in rank0.items())
    assert all(torch.equal(tensor, rank0[key]) for key, tensor in saved.items())
