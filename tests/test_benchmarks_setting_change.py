"""`benchmarks/tv_align_setting_change.py`: two accuracy-benchmark results that differ in a setting are paired
question by question and prompt by prompt, for the arms and seeds both have; runs that cannot be paired are refused."""

import json

import pytest

from conftest import load_script


def _verdicts(all_right: list[int]) -> list[dict]:
    return [{"count_right": 1.0, "temporal_consistency": 0.5 + 0.1 * right, "all_right": float(right)} for right in all_right]


def _result(tmp_path, name: str, decoder_steps: int, arms: dict) -> str:
    """A tv_align_shapes JSON of 10 test questions and 4 prompts; `arms` maps an arm to {seed: (hits, all_right)}."""
    seeds = {arm: [{"seed": seed, "hits": {"test": hits}, "verdicts": {"test": _verdicts(generated)}, "reconstruction_verdicts": {"test": _verdicts([1, 1, 1, 0])}}
                   for seed, (hits, generated) in runs.items()] for arm, runs in arms.items()}  # fmt: skip
    result = {"settings": {"steps": 3000, "decoder_steps": decoder_steps, "num_questions": 10, "seeds": [0]}, "machine": name,
              "question_categories": {"test": ["color"] * 10}, "arms": {arm: {"seeds": runs} for arm, runs in seeds.items()}}  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(result))
    return str(path)


def test_changes_are_paired_per_question_and_prompt(tmp_path):
    benchmark = load_script("benchmarks/tv_align_setting_change.py")
    hits = [1] * 6 + [0] * 4
    base = _result(tmp_path, "base", 700, {"vtok": {0: (hits, [1, 0, 0, 0]), 1: (hits, [0, 0, 0, 0])}, "frames_all": {0: (hits, [1, 1, 1, 1])}})
    changed_hits = [1] * 6 + [1, 1, 0, 0]  # two more questions right
    changed = _result(tmp_path, "changed", 2100, {"vtok": {0: (changed_hits, [1, 1, 1, 0])}})
    output = tmp_path / "change.json"
    results = benchmark.main([base, changed, "--output", str(output), "--bootstrap", "200"])
    assert json.loads(output.read_text()) == results
    assert results["settings_changed"] == {"decoder_steps": {"base": 700, "changed": 2100}}
    assert list(results["arms"]) == ["vtok"]  # frames_all and vtok seed 1 are in the base run only
    (run,) = results["arms"]["vtok"]
    assert run["seed"] == 0 and run["questions_answered_differently"] == {"test": 2}
    understanding = run["understanding"]["test"]
    assert (understanding["base"], understanding["changed"], understanding["changed_minus_base"]) == (0.6, 0.8, 0.2)
    low, high = understanding["interval95"]
    assert 0.0 <= low <= 0.2 <= high  # no question got worse
    generated = run["generation"]["test"]
    assert (generated["all_right"]["base"], generated["all_right"]["changed"], generated["all_right"]["changed_minus_base"]) == (0.25, 0.75, 0.5)
    assert generated["temporal_consistency"]["changed_minus_base"] == pytest.approx(0.05)
    assert run["reconstruction"]["test"]["all_right"] == {"base": 0.75, "changed": 0.75, "changed_minus_base": 0.0, "interval95": [0.0, 0.0]}


def test_a_check_one_run_lacks_is_not_paired(tmp_path):
    """A run judged after a check was added (`shape_right`) pairs with an older one on the checks both have."""
    benchmark = load_script("benchmarks/tv_align_setting_change.py")
    hits = [1] * 10
    base = _result(tmp_path, "base", 700, {"vtok": {0: (hits, [1, 0, 0, 0])}})
    changed = json.loads(open(_result(tmp_path, "changed", 2100, {"vtok": {0: (hits, [1, 1, 0, 0])}})).read())
    for verdict in changed["arms"]["vtok"]["seeds"][0]["verdicts"]["test"]:
        verdict["shape_right"] = 1.0
    (tmp_path / "newer.json").write_text(json.dumps(changed))
    for pair in ([base, str(tmp_path / "newer.json")], [str(tmp_path / "newer.json"), base]):
        (run,) = benchmark.main([*pair, "--output", str(tmp_path / "out.json"), "--bootstrap", "50"])["arms"]["vtok"]
        assert set(run["generation"]["test"]) == {"count_right", "temporal_consistency", "all_right"}


def test_runs_that_cannot_be_paired_are_refused(tmp_path):
    benchmark = load_script("benchmarks/tv_align_setting_change.py")
    hits = [1] * 10
    base = _result(tmp_path, "base", 700, {"vtok": {0: (hits, [1, 1, 1, 1])}})
    other_seed = _result(tmp_path, "seed", 2100, {"vtok": {5: (hits, [1, 1, 1, 1])}})
    with pytest.raises(ValueError, match="share no arm and seed"):
        benchmark.main([base, other_seed, "--output", str(tmp_path / "out.json")])
    other_questions = json.loads(open(base).read())
    other_questions["question_categories"]["test"][0] = "motion"
    (tmp_path / "questions.json").write_text(json.dumps(other_questions))
    with pytest.raises(ValueError, match="asked different questions"):
        benchmark.main([base, str(tmp_path / "questions.json"), "--output", str(tmp_path / "out.json")])
    fewer_prompts = _result(tmp_path, "prompts", 2100, {"vtok": {0: (hits, [1, 1])}})
    with pytest.raises(ValueError, match="judged different prompts"):
        benchmark.main([base, fewer_prompts, "--output", str(tmp_path / "out.json")])
    no_ceiling = json.loads(open(fewer_prompts).read())
    no_ceiling["arms"]["vtok"]["seeds"][0].update(verdicts=json.loads(open(base).read())["arms"]["vtok"]["seeds"][0]["verdicts"])
    del no_ceiling["arms"]["vtok"]["seeds"][0]["reconstruction_verdicts"]
    (tmp_path / "no_ceiling.json").write_text(json.dumps(no_ceiling))
    with pytest.raises(ValueError, match="only the base run has 'reconstruction_verdicts'"):
        benchmark.main([base, str(tmp_path / "no_ceiling.json"), "--output", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()
