"""`benchmarks/resolution_trade_off.py` joins the committed turning-objects accuracy and the efficiency run's
cost on the patches one later frame costs: each number is its source's, the join is by the config's own
residual patch grid."""

import json
from pathlib import Path

import pytest

from conftest import load_script

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_accuracy_and_cost_are_joined_on_patches_per_later_frame(tmp_path):
    benchmark = load_script("benchmarks/resolution_trade_off.py")
    result = benchmark.main(["--output", str(tmp_path / "trade_off.json")])
    assert (tmp_path / "trade_off.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "trade_off.json").read_text()) == result

    motion = json.loads((RESULTS / "motion_turning_4000_steps.json").read_text())
    efficiency = json.loads((RESULTS / "efficiency.json").read_text())
    rows = {row["patches_per_later_frame"]: row for row in result["rows"]}
    # tiny preset: 32-px frames, 8-px patches; realistic: 224-px frames, 16-px patches
    assert list(rows) == [196, 49, 16, 4, 1]
    assert [rows[p]["accuracy_arm"] for p in rows] == [None, None, "vtok", "vtok_residual_16px", "vtok_residual_8px"]
    assert [rows[p]["cost_arm"] for p in rows] == ["vtok", "vtok_res112", "vtok_res64", "vtok_res32", "vtok_res16"]
    for row in result["rows"]:
        if row["accuracy_arm"] is not None:  # the spatial map at 16 px changes more than the resolution: left out
            for name, cell in row["accuracy"].items():
                assert cell["accuracy"] == motion["summary"][row["accuracy_arm"]]["accuracy"][name]["accuracy"]
        at_64 = next(r for r in efficiency["arms"][row["cost_arm"]] if r["num_frames"] == 64)
        assert row["cost"] == {"vision_s": at_64["vision_s"], "end_to_end_s": at_64["end_to_end_s"]}
    assert set(result["frames_accuracy"]) == {"frames_2", "frames_8"}
    assert result["frames_cost"]["vision_s"] == next(r for r in efficiency["arms"]["frames"] if r["num_frames"] == 64)["vision_s"]


def test_a_frame_count_the_cost_run_did_not_measure_is_named(tmp_path):
    benchmark = load_script("benchmarks/resolution_trade_off.py")
    with pytest.raises(ValueError, match=r"no VTok row at T = 100: it measured T = \[8, 16, 32, 64, 128\]"):
        benchmark.main(["--frames", "100", "--output", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
