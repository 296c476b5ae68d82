"""The turning-objects world (`vtok_shapes.turning`) shows the motions its answers name, and
`benchmarks/motion_turning.py --quick` trains every arm and writes a JSON with every arm and category,
exact token and patch counts, equal optimizer steps and accuracies inside their intervals."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script
from vtok_shapes.turning import BACKGROUNDS, TURNING_CATEGORIES, load_turning_objects, turn_frame

_UNIT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def _load_benchmark():
    return load_script("benchmarks/motion_turning.py")


def _square_centres(video: np.ndarray) -> np.ndarray:
    """Centre of the coloured pixels (the background is grey: equal channels) in each frame, `(T, 2)` as (x, y)."""
    coloured = video.max(-1).astype(int) - video.min(-1).astype(int) > 30
    return np.array([np.argwhere(mask)[:, ::-1].mean(0) for mask in coloured])


def test_clips_show_the_directions_the_answers_name():
    dataset = load_turning_objects("test", num_samples=30)
    turn = turn_frame(8)
    for row in dataset:
        centres = _square_centres(row["video"])
        first, second = centres[turn] - centres[0], centres[-1] - centres[turn]
        assert np.dot(first, _UNIT[row["first_direction"]]) > 2 * np.abs(first).min() + 5, row
        assert np.dot(second, _UNIT[row["second_direction"]]) > 2 * np.abs(second).min() + 3, row
        assert row["first_direction"] != row["second_direction"]
        assert row["answer"] == {"color": row["color"], "first_direction": row["first_direction"],
                                 "second_direction": row["second_direction"]}[row["category"]]  # fmt: skip


def test_splits_are_deterministic_balanced_and_test_backgrounds_unseen():
    train, test = load_turning_objects("train", num_samples=60), load_turning_objects("test", num_samples=60)
    assert np.array_equal(train[5]["video"], load_turning_objects("train", num_samples=60)[5]["video"])
    assert not np.array_equal(train[5]["video"], load_turning_objects("train", num_samples=60, seed=1)[5]["video"])
    assert train["category"] == test["category"] == [TURNING_CATEGORIES[i % 3] for i in range(60)]
    assert set(train["background"]) == set(BACKGROUNDS["train"]) and set(test["background"]) == set(BACKGROUNDS["test"])
    assert not set(BACKGROUNDS["train"]) & set(BACKGROUNDS["test"])
    with pytest.raises(ValueError, match="Unknown split 'heldout'"):
        load_turning_objects("heldout")
    with pytest.raises(ValueError, match="num_frames must be at least 4"):
        load_turning_objects("train", num_frames=3)


def test_quick_run_json(tmp_path):
    benchmark = _load_benchmark()
    output = tmp_path / "motion.json"
    benchmark.main(["--quick", "--output", str(output), "--work-dir", str(tmp_path / "work")])
    results = json.loads(output.read_text())
    assert output.with_suffix(".png").stat().st_size > 10_000
    summary, settings = results["summary"], results["settings"]
    assert list(summary) == list(benchmark.ARMS)

    # tiny preset: 4x4 patches of 8 px per 32-px frame (S = 16), 8-frame clips; 16-px residuals: 2x2 patches
    tokens = {arm: 16 + 7 for arm in benchmark.ARMS} | {"frames_2": 16 * 2, "frames_8": 16 * 8}
    assert {arm: s["tokens_per_video"] for arm, s in summary.items()} == tokens
    low_resolution = {"vtok_residual_16px": 16 + 8 * 4, "vtok_spatial_map_16px": 16 + 8 * 4, "vtok_residual_8px": 16 + 8}
    patches = {arm: 16 * 8 for arm in benchmark.ARMS} | {"frames_2": 16 * 2} | low_resolution
    assert {arm: s["encoder_patches_per_video"] for arm, s in summary.items()} == patches
    for arm, record in results["arms"].items():
        assert [run["seed"] for run in record["seeds"]] == settings["seeds"]
        for run in record["seeds"]:
            assert run["optimizer_steps"] == settings["steps"]
            assert run["tokens_per_video"] == run["tokens_per_video_from_layout"]
            assert run["train_seconds"] > 0
        assert np.array([run["hits"] for run in record["seeds"]]).shape == (len(settings["seeds"]), settings["num_questions"])

    for arm, s in summary.items():
        assert s["vision_ms_per_video"] > 0  # timed side by side after training
        assert set(s["accuracy"]) == {"all", *TURNING_CATEGORIES}
        assert s["accuracy"]["all"]["num_questions"] == settings["num_questions"]
        for name, cell in s["accuracy"].items():
            low, high = cell["interval95"]
            assert 0.0 <= low <= cell["accuracy"] <= high <= 1.0, (arm, name, cell)
            if arm != "vtok":
                low, high = cell["minus_vtok_interval95"]
                assert -1.0 <= low <= cell["minus_vtok"] <= high <= 1.0


def test_combine_keeps_paired_differences_and_seed_spread(tmp_path):
    """Runs of different arms merge into the numbers one run of both would give."""
    benchmark = _load_benchmark()
    args = benchmark.parse_args(["--seeds", "0", "1"])
    categories = [TURNING_CATEGORIES[i % 3] for i in range(6)]
    hits = {"vtok": [[1, 1, 0, 1, 0, 0], [1, 0, 0, 1, 1, 0]], "frames_2": [[0, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]}
    run = {"tokens_per_video": 23, "encoder_patches_per_video": 128, "train_seconds": 1.0, "vision_ms_per_video": 2.0}

    def write(name: str, arm: str, seeds: list[int], arm_hits: list[list[int]]) -> Path:
        record = {"seeds": [{**run, "seed": seed, "hits": seed_hits} for seed, seed_hits in zip(seeds, arm_hits)]}
        settings = {**vars(args), "seeds": seeds}
        results = {"command": name, "machine": f"{name}'s machine", "load_average": [1.0], "settings": settings,
                   "question_categories": categories, "arms": {arm: record}}
        benchmark.write_results(results, tmp_path / f"{name}.json", num_resamples=50)
        return tmp_path / f"{name}.json"

    # vtok's seed 1 comes first from a run of its own; frames_2 has no seed 2
    paths = [write("vtok_1", "vtok", [1], hits["vtok"][1:]), write("frames", "frames_2", [0, 1], hits["frames_2"]),
             write("vtok_0_2", "vtok", [0, 2], [hits["vtok"][0], [1] * 6])]  # fmt: skip
    combined = benchmark.main(["--combine", *map(str, paths), "--output", str(tmp_path / "all.json"), "--bootstrap", "50", "--no-vision-timing"])
    assert combined["settings"]["seeds"] == [0, 1, 2] and [r["seed"] for r in combined["arms"]["vtok"]["seeds"]] == [0, 1, 2]
    assert [run["hits"] for run in combined["arms"]["vtok"]["seeds"]] == [hits["vtok"][0], hits["vtok"][1], [1] * 6]
    assert combined["machine"] == "vtok_1's machine + frames's machine + vtok_0_2's machine"
    frames = combined["summary"]["frames_2"]["accuracy"]
    assert frames["all"]["per_seed"] == [round(1 / 6, 4), 0.5]
    assert frames["all"]["seed_std"] == round(float(np.std([1 / 6, 0.5], ddof=1)), 4)
    assert frames["all"]["minus_vtok_seeds"] == [0, 1]  # paired by seed, then averaged
    assert frames["all"]["minus_vtok"] == round(((1 / 6 - 3 / 6) + (3 / 6 - 3 / 6)) / 2, 4)
    assert frames["color"]["accuracy"] == 0.25 and combined["summary"]["vtok"]["accuracy"]["color"]["per_seed"] == [0.0, 0.0, 1.0]
    vtok_colour = combined["summary"]["vtok"]["accuracy"]["color"]  # every colour question: wrong in seeds 0 and 1, right in 2
    assert vtok_colour["interval95"] == [0.3333, 0.3333]  # resampling questions cannot see that
    low, high = vtok_colour["interval95_with_seed_noise"]  # resampling the seeds can: all three draws 0 or 1 in 8 of 27
    assert low == 0.0 and high >= 2 / 3
    low, high = frames["all"]["minus_vtok_interval95_with_seed_noise"]
    assert low <= frames["all"]["minus_vtok"] <= high

    with pytest.raises(ValueError, match="Seed 1 of arm 'vtok' is in more than one run"):
        benchmark.main(["--combine", *map(str, paths), str(paths[0]), "--output", str(tmp_path / "x.json")])
    old_layout = json.loads(paths[0].read_text())  # hits beside the seeds, as written before 2026-11-28
    old_layout["arms"]["vtok"]["hits"] = [run.pop("hits") for run in old_layout["arms"]["vtok"]["seeds"]]
    (tmp_path / "old.json").write_text(json.dumps(old_layout))
    with pytest.raises(ValueError, match=r"old.json keeps its hits per arm.*into seeds\[i\]\['hits'\]"):
        benchmark.main(["--combine", str(tmp_path / "old.json"), str(paths[1]), "--output", str(tmp_path / "x.json"), "--no-vision-timing"])
    other = json.loads(paths[1].read_text())
    other["settings"]["steps"] = 7
    paths[1].write_text(json.dumps(other))
    with pytest.raises(ValueError, match="same settings"):
        benchmark.main(["--combine", *map(str, paths), "--output", str(tmp_path / "x.json")])


def test_arguments_and_unknown_config_fields_are_refused(monkeypatch):
    benchmark = _load_benchmark()
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--num-questions", "10"])
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--steps", "0"])
    monkeypatch.setitem(benchmark.ARMS, "vtok_typo", {"video_tokenization": "vtok", "num_frames": 8, "config": {"residual_refrence": "both"}})
    with pytest.raises(ValueError, match=r"VTokConfig has no fields \['residual_refrence'\]"):
        benchmark.build_arm("vtok_typo", ["a b c"])
