"""`benchmarks/decoder_conditioning.py --quick` runs every decoder variant end to end, and its arguments are checked."""

import json
import math
from pathlib import Path

import pytest

from conftest import load_script


def _load_benchmark():
    return load_script("benchmarks/decoder_conditioning.py")


@pytest.mark.slow  # five decoders trained and sampled: 35-45 s on the 2 shared cores
def test_quick_run_json(tmp_path):
    benchmark = _load_benchmark()
    output = tmp_path / "decoder_conditioning.json"
    results = benchmark.main(["--quick", "--output", str(output)])
    assert json.loads(output.read_text()) == results
    assert results["setup"]["steps"] == 2 and results["setup"]["clips"] == 2
    assert not Path(results["setup"]["output"]).is_absolute()  # names no folder of the machine it ran on
    # the tiny tokenizer's 4x4 key-frame patches + one residual token per later frame, 32 wide, per clip
    assert results["setup"]["token_shape"] == [2, 16 + 7, 32]
    variants = results["variants"]
    assert [(row["conditioning"], row["prediction_type"]) for row in variants] == benchmark.VARIANTS
    for row in variants:
        assert row["parameters"] > 0 and math.isfinite(row["final_train_loss"]) and row["final_train_loss"] > 0
        assert row["reconstruction_mse"] > 0 and row["swapped_tokens_mse"] > 0
        assert row["swapped_over_reconstruction"] == pytest.approx(row["swapped_tokens_mse"] / row["reconstruction_mse"])
    # the prediction type changes the training target, not the weights
    parameters = {(row["conditioning"], row["prediction_type"]): row["parameters"] for row in variants}
    for conditioning in ("concat", "cross_attention"):
        assert parameters[conditioning, "sample"] == parameters[conditioning, "velocity"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--clips", "1"], "--clips must be >= 2"),
        (["--clips", "3", "--batch_size", "4"], "cannot exceed --clips"),
    ],
)
def test_arguments_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        _load_benchmark().parse_args(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
