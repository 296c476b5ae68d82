"""`benchmarks/tv_align_shapes.py --quick` runs end to end, and its JSON keeps the benchmark's invariants:
exact token counts of the four arms, the same number of optimizer steps, accuracies in [0, 1] and
intervals around their point estimates."""

import json

import pytest

from conftest import load_script
from modeling_vtok.metrics_vtok import normalize_answer
from vtok_shapes.dataset import load_vtok_shapes


def _load_benchmark():
    return load_script("benchmarks/tv_align_shapes.py")


def _check_interval(cell: dict, key: str = "accuracy", interval: str = "interval95"):
    low, high = cell[interval]
    assert 0.0 <= low <= cell[key] <= high <= 1.0, cell


@pytest.mark.slow  # four tiny models (2 steps) and a decoder (1 step): 115 s in pytest on the 2 shared cores at load 10-12
# (the earlier 6-step size: 238 s standalone at load 7); 19 s after the imports with one torch thread at load 6
def test_quick_run_json(tmp_path, monkeypatch):
    output = tmp_path / "tv_align_shapes.json"
    benchmark = _load_benchmark()
    benchmark.main(["--quick", "--output", str(output), "--work-dir", str(tmp_path / "work")])
    results = json.loads(output.read_text())
    assert output.with_suffix(".png").stat().st_size > 10_000

    # tiny preset: 4x4 patches per 32x32 frame (S = 16), 8-frame clips
    arms = results["arms"]
    assert {arm: info["tokens_per_video"] for arm, info in arms.items()} == {"vtok": 16 + 7, "frames_all": 16 * 8, "frames_budget": 16 * 2,
                                                                            "vtok_spatial_map": 16 + 7,  # one token per frame, as VTok's
                                                                            "vtok_key_frame_grid": 16 + 7}
    assert all(info["tokens_per_video"] == info["tokens_per_video_from_layout"] for info in arms.values())
    steps = {run["optimizer_steps"] for info in arms.values() for run in info["seeds"]}
    assert steps == {results["settings"]["steps"]}
    assert all(run["final_losses"]["loss"] > 0 for info in arms.values() for run in info["seeds"])
    assert {"text_loss", "visual_loss"} <= set(arms["vtok"]["seeds"][0]["final_losses"])  # both terms of VTok's loss trained
    for info in arms.values():  # every arm renders: a "frames" arm's decoder reads S tokens per frame
        assert [run["decoder_optimizer_steps"] for run in info["seeds"]] == [results["settings"]["decoder_steps"]]
    # the decoder variant is the one trained: the key grid on the key frame only for its arm, on every frame otherwise
    assert {arm: [run["decoder_settings"] for run in info["seeds"]] for arm, info in arms.items()} == {
        arm: [{"key_grid_frames": "key_frame" if arm == "vtok_key_frame_grid" else "every_frame"}] for arm in arms}

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
        checks = ("colour_moves_as_prompted", "count_right", "size_right", "position_right", "temporal_consistency", "all_right",
                  "shape_right", "track_error", "iou_with_prompted_clip", "iou_first_frame", "iou_last_frame")
        for arm in arms:  # clips generated from prompts, and the prompts' true clips rendered from their own tokens
            for summary in (results["generation"][arm][split], results["reconstruction"][arm][split]):
                assert summary["num_prompts"] == results["settings"]["num_prompts"] and summary["num_seeds"] == 1
                for key in checks:
                    _check_interval(summary[key], key="mean")
        true_clips = results["judge_on_true_clips"][split]
        assert true_clips["all_right"] == true_clips["shape_right"] == true_clips["iou_with_prompted_clip"] == 1.0  # the judge passes every true clip
        references = load_vtok_shapes(split, num_samples=results["settings"]["num_questions"], num_frames=8)["answer"]
        for info in arms.values():  # the answers are kept, and each hit is its answer's match
            for run in info["seeds"]:
                matches = [int(normalize_answer(a) == normalize_answer(r)) for a, r in zip(run["answers"][split], references, strict=True)]
                assert run["hits"][split] == matches

    # every run kept its 8-bit clips: the same judge scores them again exactly, a changed judge adds its checks
    rejudged = benchmark.main(["--rejudge", str(output), "--output", str(tmp_path / "rejudged.json")])
    for arm, info in arms.items():
        for run, again in zip(info["seeds"], rejudged["arms"][arm]["seeds"], strict=True):
            assert again["verdicts"] == run["verdicts"] and again["reconstruction_verdicts"] == run["reconstruction_verdicts"]
            assert again["hits"] == run["hits"]
    judge = benchmark.judge_generated_clip
    monkeypatch.setattr(benchmark, "judge_generated_clip", lambda frames, *a, **kw: {**judge(frames, *a, **kw), "mean_brightness": frames.mean() / 255})
    rejudged = benchmark.main(["--rejudge", str(output), "--output", str(tmp_path / "rejudged.json")])
    clips = benchmark.load_clips(arms["vtok"]["seeds"][0]["clips"])
    assert [v["mean_brightness"] for v in rejudged["arms"]["vtok"]["seeds"][0]["verdicts"]["test"]] == pytest.approx(
        [clip.mean() / 255 for clip in clips["test"]["generated"]])
    assert "mean_brightness" in rejudged["generation"]["vtok"]["test"] and "--rejudge" in rejudged["command"]


def test_a_run_that_kept_no_clips_cannot_be_rejudged(tmp_path):
    import numpy as np

    benchmark = _load_benchmark()
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_fake_run(benchmark, {"vtok": {0: np.ones(70, dtype=int)}})))
    with pytest.raises(ValueError, match="seed 0 of arm 'vtok' kept no clips"):
        benchmark.main(["--rejudge", str(path), "--output", str(tmp_path / "x.json")])


def test_kept_clips_are_named_relative_to_the_checkout_that_holds_them(tmp_path):
    """A run from a frozen worktree that writes into another checkout records `runs/...` (what that checkout's
    `load_clips` resolves), not a path climbing out of the worktree; clips read back exactly, without pickles."""
    import numpy as np

    benchmark = _load_benchmark()
    clips = {split: {kind: np.random.default_rng(0).integers(0, 256, (2, 8, 4, 4, 3), dtype=np.uint8)
                     for kind in ("generated", "reconstructed")} for split in benchmark.SPLITS}  # fmt: skip
    (tmp_path / "checkout" / ".git").mkdir(parents=True)
    recorded = benchmark.save_clips(clips, tmp_path / "checkout" / "runs" / "vtok_seed0" / "clips.npz")
    assert recorded == "runs/vtok_seed0/clips.npz"
    outside = benchmark.save_clips(clips, tmp_path / "elsewhere" / "clips.npz")  # no checkout above: relative to this one
    loaded = benchmark.load_clips(outside)
    assert all(np.array_equal(loaded[split][kind], clips[split][kind]) for split in clips for kind in clips[split])


def test_the_recorded_command_names_paths_relative_to_their_checkout(tmp_path):
    """A frozen worktree's run with an absolute `--work-dir` and `--output` into a checkout records them as
    `runs/...`, the command as one types it in that checkout; relative arguments and values stay as typed."""
    benchmark = _load_benchmark()
    (tmp_path / "checkout" / ".git").mkdir(parents=True)
    work_dir, output = tmp_path / "checkout" / "runs" / "dec4200", tmp_path / "checkout" / "runs" / "x.json"
    command = benchmark.recorded_command(benchmark.__file__, ["--seeds", "2", "--work-dir", str(work_dir), "--output", str(output), "--arms", "vtok"])
    assert command == "python benchmarks/tv_align_shapes.py --seeds 2 --work-dir runs/dec4200 --output runs/x.json --arms vtok"


def test_arguments_are_checked(capsys):
    benchmark = _load_benchmark()
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--num-prompts", "0"])
    assert "--num-prompts must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--arms", "frames_some"])


def test_bootstrap_interval_contains_the_mean():
    benchmark = _load_benchmark()
    import numpy as np

    values = np.array([1.0] * 30 + [0.0] * 70)
    low, high = benchmark.bootstrap_interval(values, 500)
    assert low < 0.3 < high and high - low < 0.25
    assert benchmark.bootstrap_interval(np.ones(10), 50) == [1.0, 1.0]


def test_the_interval_with_seed_noise_holds_what_the_seeds_disagree_on():
    """Seed 0 answers every question right and seed 1 none: resampling questions alone sees no noise at all
    (every resample's mean is 0.5); resampling the seeds too draws both seeds the same a quarter of the time."""
    benchmark = _load_benchmark()
    import numpy as np

    values = np.stack([np.ones(50), np.zeros(50)], axis=1)  # (questions, seeds)
    assert benchmark.bootstrap_interval(values, 500) == [0.5, 0.5]
    assert benchmark.bootstrap_interval(values, 500, resample_seeds=True) == [0.0, 1.0]
    assert benchmark.bootstrap_interval(values[:, :1], 500, resample_seeds=True) == benchmark.bootstrap_interval(values[:, :1], 500)  # one seed: nothing to resample


def test_seeds_to_resolve_grows_with_the_spread_of_the_seeds():
    """1.96 * s / sqrt(n) <= 0.05: seeds that differ by 0.1 (s = 0.0707) need 8 seeds, by 0.2 (s = 0.1414) 31;
    seeds that agree still need the 2 that show it; one seed shows no spread at all."""
    benchmark = _load_benchmark()
    import numpy as np

    assert benchmark.seeds_to_resolve(np.array([0.0, 0.1])) == 8
    assert benchmark.seeds_to_resolve(np.array([0.0, 0.2])) == 31
    assert benchmark.seeds_to_resolve(np.array([0.0, 0.2]), difference=0.1) == 8
    assert benchmark.seeds_to_resolve(np.array([0.03, 0.03, 0.03])) == 2
    with pytest.raises(ValueError, match="at least 2 seeds, got 1"):
        benchmark.seeds_to_resolve(np.array([0.1]))


def _fake_run(benchmark, arm_seeds: dict, steps: int = 2) -> dict:
    """A result of `--quick` settings whose arms answered 70 questions (`{arm: {seed: hits}}`) and judged one prompt."""
    args = benchmark.parse_args(["--quick"])
    args.steps = steps  # (--quick sets its own)
    verdict = {"colour_moves_as_prompted": 1.0, "count_right": 1.0, "size_right": 0.0, "position_right": 0.0, "temporal_consistency": 0.5,
               "consistent": 1.0, "all_right": 0.0}  # fmt: skip
    arms = {arm: {"tokens_per_video": 23, "seeds": [{"seed": seed, "hits": {"test": hits.tolist(), "heldout": hits.tolist()},
                                                     "verdicts": {"test": [verdict], "heldout": [verdict]}} for seed, hits in seeds.items()]}
            for arm, seeds in arm_seeds.items()}  # fmt: skip
    categories = [benchmark.CATEGORIES[i % 7] for i in range(70)]
    return {"command": "x", "machine": f"{args.steps} steps' machine", "settings": vars(args),
            "question_categories": {"test": categories, "heldout": categories}, "arms": arms}


def test_combine_runs_of_different_arms_and_seeds_pairs_exactly(tmp_path):
    """Arms and seeds trained in separate processes merge into one JSON; VTok's difference to an arm pairs
    the same questions and seeds, whichever run each came from."""
    import numpy as np

    benchmark = _load_benchmark()
    rng = np.random.default_rng(0)
    hits = {(arm, seed): rng.integers(0, 2, 70) for arm in ("vtok", "frames_all") for seed in (0, 1)}
    runs = [_fake_run(benchmark, {"vtok": {0: hits["vtok", 0]}, "frames_all": {0: hits["frames_all", 0]}}),
            _fake_run(benchmark, {"frames_all": {1: hits["frames_all", 1]}, "vtok": {1: hits["vtok", 1]}})]  # fmt: skip
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, run in zip(paths, runs):
        benchmark.write_results(run, path, 100)
    combined = benchmark.main(["--combine", *map(str, paths), "--output", str(tmp_path / "all.json")])
    assert json.loads((tmp_path / "all.json").read_text()) == combined
    assert (tmp_path / "all.png").stat().st_size > 10_000
    assert list(combined["arms"]) == ["vtok", "frames_all"] and combined["settings"]["seeds"] == [0, 1]
    cell = combined["understanding"]["test"]["frames_all"]["all"]
    paired = np.mean([hits["vtok", seed] - hits["frames_all", seed] for seed in (0, 1)])
    assert cell["vtok_minus_this_seeds"] == [0, 1] and cell["vtok_minus_this"] == round(float(paired), 4)
    assert cell["per_seed"] == [round(float(hits["frames_all", seed].mean()), 4) for seed in (0, 1)]
    assert cell["vtok_minus_this_per_seed"] == [round(float((hits["vtok", seed] - hits["frames_all", seed]).mean()), 4) for seed in (0, 1)]
    low, high = cell["vtok_minus_this_interval95_with_seed_noise"]
    assert low <= cell["vtok_minus_this"] <= high and high - low >= 0.05  # two seeds and 70 questions of coin flips: wide
    assert cell["seeds_to_resolve_5_points"] == benchmark.seeds_to_resolve(np.array(cell["vtok_minus_this_per_seed"]))
    assert combined["generation"]["vtok"]["test"]["num_seeds"] == 2
    assert combined["generation"]["vtok"]["test"]["temporal_consistency"]["per_seed"] == [0.5, 0.5]  # each seed judged one prompt at 0.5
    assert combined["machine"] == runs[0]["machine"]  # the same machine line once

    with pytest.raises(ValueError, match="Seed 0 of arm 'vtok' is in more than one run"):
        benchmark.main(["--combine", *map(str, paths), str(paths[0]), "--output", str(tmp_path / "x.json")])
    benchmark.write_results(_fake_run(benchmark, {"vtok": {2: hits["vtok", 0]}}, steps=7), tmp_path / "other.json", 100)
    with pytest.raises(ValueError, match="same settings"):
        benchmark.main(["--combine", str(paths[0]), str(tmp_path / "other.json"), "--output", str(tmp_path / "x.json")])
    old = json.loads(paths[1].read_text())
    del old["question_categories"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="old.json stores no per-question results"):
        benchmark.main(["--combine", str(paths[0]), str(tmp_path / "old.json"), "--output", str(tmp_path / "x.json")])


def test_a_cut_off_seed_keeps_the_pairing():
    """After VTok's arm of a new seed the other arms have one seed fewer: the difference pairs the seeds both have."""
    import numpy as np

    benchmark = _load_benchmark()
    run = _fake_run(benchmark, {"vtok": {0: np.ones(70, int), 1: np.zeros(70, int)}, "frames_all": {0: np.zeros(70, int)}})
    summary = benchmark.summarise_understanding(run["arms"], "test", run["question_categories"]["test"], 50)
    assert summary["vtok"]["all"]["per_seed"] == [1.0, 0.0]
    assert summary["frames_all"]["all"]["vtok_minus_this"] == 1.0  # seed 0 only, not the mean over VTok's two seeds
    assert summary["frames_all"]["all"]["vtok_minus_this_seeds"] == [0]
    assert summary["frames_all"]["all"]["vtok_minus_this_per_seed"] == [1.0]
    assert "seeds_to_resolve_5_points" not in summary["frames_all"]["all"]  # one shared seed shows no spread


def test_an_arm_without_reconstructions_is_left_out_and_said_so(tmp_path, capsys):
    """Seeds written before reconstructions were judged: their arm has no 'reconstruction' summary, and a line says why."""
    import numpy as np

    benchmark = _load_benchmark()
    run = _fake_run(benchmark, {"vtok": {0: np.ones(70, int)}, "frames_all": {0: np.zeros(70, int)}})
    vtok_seed = run["arms"]["vtok"]["seeds"][0]
    vtok_seed["reconstruction_verdicts"] = vtok_seed["verdicts"]
    results = benchmark.write_results(run, tmp_path / "r.json", 50)
    assert list(results["reconstruction"]) == ["vtok"]
    assert results["reconstruction"]["vtok"]["test"]["colour_moves_as_prompted"]["mean"] == 1.0
    assert "frames_all: a seed has no reconstruction verdicts" in capsys.readouterr().out


def test_a_check_only_some_seeds_were_judged_on_is_summarised_over_those_and_said_so(tmp_path, capsys):
    """A seed judged before `shape_right` was added, merged with one judged after: the check is summarised over the
    seed that has it (listed in `seeds`), and a line says so; VTok's difference pairs only that seed; the plot
    draws it."""
    import numpy as np

    benchmark = _load_benchmark()
    run = _fake_run(benchmark, {"vtok": {0: np.ones(70, int), 1: np.zeros(70, int)}, "frames_all": {0: np.ones(70, int), 1: np.ones(70, int)}})
    for arm, shape_right in (("vtok", 1.0), ("frames_all", 0.0)):
        newer = run["arms"][arm]["seeds"][1]
        newer["verdicts"] = {split: [{**verdicts[0], "shape_right": shape_right}] for split, verdicts in newer["verdicts"].items()}
    results = benchmark.write_results(run, tmp_path / "r.json", 50)
    vtok, frames = results["generation"]["vtok"]["test"], results["generation"]["frames_all"]["test"]
    assert (vtok["shape_right"]["mean"], vtok["shape_right"]["seeds"], vtok["shape_right"]["per_seed"]) == (1.0, [1], [1.0])
    assert (frames["shape_right"]["vtok_minus_this"], frames["shape_right"]["vtok_minus_this_seeds"]) == (1.0, [1])
    assert "seeds" not in vtok["all_right"] and vtok["all_right"]["per_seed"] == [0.0, 0.0] and frames["all_right"]["vtok_minus_this_seeds"] == [0, 1]
    assert "verdicts test: 'shape_right' summarised over seeds [1]: the others were judged before it was added" in capsys.readouterr().out
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_generation_differences_to_vtok_pair_prompts_and_seeds():
    """VTok minus an arm on each judge check, over the same prompts and the seeds both have (here seed 0 only)."""
    import numpy as np

    benchmark = _load_benchmark()
    run = _fake_run(benchmark, {"vtok": {0: np.ones(70, int), 1: np.ones(70, int)}, "frames_all": {0: np.ones(70, int)}})
    vtok_seeds = run["arms"]["vtok"]["seeds"]
    vtok_seeds[0]["verdicts"] = {split: [{**v[0], "all_right": 1.0, "temporal_consistency": 0.75}] for split, v in vtok_seeds[0]["verdicts"].items()}
    summary = {arm: benchmark.summarise_generation(record, "test", 50, vtok=run["arms"]["vtok"]) for arm, record in run["arms"].items()}
    assert "vtok_minus_this" not in summary["vtok"]["all_right"]
    assert summary["vtok"]["all_right"]["per_seed"] == [1.0, 0.0]
    frames = summary["frames_all"]
    assert (frames["all_right"]["vtok_minus_this"], frames["all_right"]["vtok_minus_this_seeds"]) == (1.0, [0])  # not VTok's 2-seed mean
    assert frames["all_right"]["vtok_minus_this_per_seed"] == [1.0]  # the same fields as understanding's differences
    assert frames["temporal_consistency"]["vtok_minus_this"] == 0.25 and frames["count_right"]["vtok_minus_this_interval95"] == [0.0, 0.0]
