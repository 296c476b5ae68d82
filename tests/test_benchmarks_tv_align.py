"""`benchmarks/tv_align_shapes.py --quick` runs end to end, and its JSON keeps the benchmark's invariants:
exact token counts of the three arms, the same number of optimizer steps, accuracies in [0, 1] and
intervals around their point estimates."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "tv_align_shapes.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("tv_align_shapes", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_interval(cell: dict, key: str = "accuracy", interval: str = "interval95"):
    low, high = cell[interval]
    assert 0.0 <= low <= cell[key] <= high <= 1.0, cell


@pytest.mark.slow  # three tiny models (2 steps) and a decoder (1 step): 115 s in pytest on the 2 shared cores at load 10-12
# (the earlier 6-step size: 238 s standalone at load 7); 19 s after the imports with one torch thread at load 6
def test_quick_run_json(tmp_path):
    output = tmp_path / "tv_align_shapes.json"
    _load_benchmark().main(["--quick", "--output", str(output), "--work-dir", str(tmp_path / "work")])
    results = json.loads(output.read_text())
    assert output.with_suffix(".png").stat().st_size > 10_000

    # tiny preset: 4x4 patches per 32x32 frame (S = 16), 8-frame clips
    arms = results["arms"]
    assert {arm: info["tokens_per_video"] for arm, info in arms.items()} == {"vtok": 16 + 7, "frames_all": 16 * 8, "frames_budget": 16 * 2}
    assert all(info["tokens_per_video"] == info["tokens_per_video_from_layout"] for info in arms.values())
    steps = {run["optimizer_steps"] for info in arms.values() for run in info["seeds"]}
    assert steps == {results["settings"]["steps"]}
    assert all(run["final_losses"]["loss"] > 0 for info in arms.values() for run in info["seeds"])
    assert {"text_loss", "visual_loss"} <= set(arms["vtok"]["seeds"][0]["final_losses"])  # both terms of VTok's loss trained
    for info in arms.values():  # every arm renders: a "frames" arm's decoder reads S tokens per frame
        assert [run["decoder_optimizer_steps"] for run in info["seeds"]] == [results["settings"]["decoder_steps"]]

    for split in ("test", "heldout"):
        by_arm = results["understanding"][split]
        assert set(by_arm) == set(arms)
        for arm, cells in by_arm.items():
            assert cells["all"]["num_questions"] == results["settings"]["num_questions"]
            assert sum(cells[c]["num_questions"] for c in cells if c != "all") == cells["all"]["num_questions"]
            for cell in cells.values():
                _check_interval(cell)
                if arm != "vtok":
                    low, high = cell["vtok_minus_this_interval95"]
                    assert -1.0 <= low <= cell["vtok_minus_this"] <= high <= 1.0
        for arm in arms:
            gen = results["generation"][arm][split]
            assert gen["num_prompts"] == results["settings"]["num_prompts"]
            for key in ("colour_moves_as_prompted", "count_right", "size_right", "position_right", "temporal_consistency", "all_right"):
                _check_interval(gen[key], key="mean")


def test_arguments_are_checked():
    benchmark = _load_benchmark()
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--arms", "frames_some"])


def test_bootstrap_interval_contains_the_mean():
    benchmark = _load_benchmark()
    import numpy as np

    values = np.array([1.0] * 30 + [0.0] * 70)
    low, high = benchmark.bootstrap_interval(values, 500)
    assert low < 0.3 < high and high - low < 0.25
    assert benchmark.bootstrap_interval(np.ones(10), 50) == [1.0, 1.0]


def test_combine_runs_of_different_arms(tmp_path):
    """Arms trained in separate processes merge into one JSON; VTok's difference to an arm of another
    run is the unpaired one, centred on the difference of the accuracies."""
    import numpy as np

    benchmark = _load_benchmark()
    categories = [benchmark.CATEGORIES[i % 7] for i in range(70)]
    questions = {"test": [{"category": c} for c in categories]}
    rng = np.random.default_rng(0)
    for arm, tokens in (("vtok", 23), ("frames_all", 128)):
        args = benchmark.parse_args(["--quick", "--output", str(tmp_path / f"{arm}.json")])
        hits = {"test": {arm: [rng.integers(0, 2, 70).astype(float)]}}
        benchmark.write_results(args, ["--quick"], {arm: {"tokens_per_video": tokens}}, hits, questions, {"test": {}})
    combined = benchmark.main(["--combine", str(tmp_path / "vtok.json"), str(tmp_path / "frames_all.json"), "--output", str(tmp_path / "all.json")])
    assert json.loads((tmp_path / "all.json").read_text()) == combined
    assert (tmp_path / "all.png").stat().st_size > 10_000
    assert list(combined["arms"]) == ["vtok", "frames_all"]
    cells = combined["understanding"]["test"]
    for name, cell in cells["frames_all"].items():
        difference = cells["vtok"][name]["accuracy"] - cell["accuracy"]
        low, high = cell["vtok_minus_this_interval95"]
        assert cell["vtok_minus_this_unpaired"] and abs(cell["vtok_minus_this"] - difference) < 1e-3
        assert low < cell["vtok_minus_this"] < high
    with pytest.raises(ValueError, match="same settings"):
        other = benchmark.parse_args(["--quick", "--steps", "7", "--output", str(tmp_path / "other.json")])
        other.steps = 7
        benchmark.write_results(other, [], {"vtok": {"tokens_per_video": 23}}, {"test": {"vtok": [np.ones(70)]}}, questions, {"test": {}})
        benchmark.main(["--combine", str(tmp_path / "vtok.json"), str(tmp_path / "other.json"), "--output", str(tmp_path / "x.json")])


def test_a_cut_off_seed_keeps_the_pairing():
    """After VTok's arm of a new seed the other arms have one seed fewer: the difference pairs the seeds both have."""
    import numpy as np

    benchmark = _load_benchmark()
    categories = [benchmark.CATEGORIES[i % 7] for i in range(70)]
    vtok, frames = np.ones(70), np.zeros(70)
    summary = benchmark.summarise_understanding({"vtok": [vtok, np.zeros(70)], "frames_all": [frames]}, categories, 50)
    assert summary["vtok"]["all"]["per_seed"] == [1.0, 0.0]
    assert summary["frames_all"]["all"]["vtok_minus_this"] == 1.0  # seed 0 only, not the mean over VTok's two seeds
