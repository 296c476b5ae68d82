"""`benchmarks/unseen_colour_by_seed.py`: the accuracy benchmark's held-out colour results, per seed, are
broken down over exactly the colour questions it asked, by pair and clip kind, with answer kinds when kept."""

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import load_script
from vtok_shapes.dataset import load_vtok_shapes


def _source(tmp_path, runs: list[dict]) -> str:
    """A tv_align_shapes JSON of 70 held-out questions whose one arm has `runs` (seed records)."""
    categories = list(load_vtok_shapes("heldout", num_samples=70, num_frames=8).with_format(None)["category"])
    source = {"settings": {"num_questions": 70}, "question_categories": {"heldout": categories}, "arms": {"vtok": {"seeds": runs}}}
    path = tmp_path / "tv_align.json"
    path.write_text(json.dumps(source))
    return str(path)


def test_breakdown_over_the_colour_questions_asked(tmp_path):
    benchmark = load_script("benchmarks/unseen_colour_by_seed.py")
    data = load_vtok_shapes("heldout", num_samples=70, num_frames=8).with_format(None)
    colour = [i for i, category in enumerate(data["category"]) if category == "color"]
    right = [1 if i in colour[:4] else 0 for i in range(70)]  # the first four colour questions answered right
    answers = [data[i]["answer"] if right[i] else "purple" for i in range(70)]  # not a colour of this world
    runs = [{"seed": 0, "hits": {"heldout": right}, "answers": {"heldout": answers}}, {"seed": 3, "hits": {"heldout": [0] * 70}}]
    results = benchmark.main([_source(tmp_path, runs), "--output", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text()) == results
    assert results["num_colour_questions"] == len(colour) == 10  # 70 questions, 7 categories
    first, second = results["arms"]["vtok"]
    assert first["accuracy"]["all"] == {"accuracy": 0.4, "num_questions": 10} and second["accuracy"]["all"]["accuracy"] == 0.0
    alone = sum(len(data[i]["shapes"]) == 1 for i in colour)
    assert first["accuracy"]["shape alone"]["num_questions"] == alone and first["accuracy"]["with other shapes"]["num_questions"] == 10 - alone
    assert sum(cells["all"]["num_questions"] for cells in first["by_pair"].values()) == 10
    assert set(first["by_pair"]) == {f"{data[i]['color']} {data[i]['shape']}" for i in colour}
    for pair, cells in first["by_pair"].items():  # each pair's accuracy over its own questions
        asked = [i for i in colour if f"{data[i]['color']} {data[i]['shape']}" == pair]
        assert cells["all"] == {"accuracy": round(sum(right[i] for i in asked) / len(asked), 4), "num_questions": len(asked)}
    kinds = first["answer_kinds"]
    assert sum(counts["right"] for counts in kinds.values()) == 4
    assert sum(counts["not a colour"] for counts in kinds.values()) == 6
    for pair, named in first["named_when_alone"].items():  # every lone question of the pair, by the colour named
        lone = [i for i in colour if f"{data[i]['color']} {data[i]['shape']}" == pair and len(data[i]["shapes"]) == 1]
        assert named == dict(Counter(answers[i] for i in lone))
    assert sum(sum(named.values()) for named in first["named_when_alone"].values()) == alone
    assert "answer_kinds" not in second and "named_when_alone" not in second  # that run kept no answers


def test_a_source_without_per_question_results_is_refused(tmp_path):
    benchmark = load_script("benchmarks/unseen_colour_by_seed.py")
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"settings": {"num_questions": 70}, "arms": {}}))
    with pytest.raises(ValueError, match="old.json stores no per-question results"):
        benchmark.main([str(path), "--output", str(tmp_path / "out.json")])
    source = json.loads(Path(_source(tmp_path, [])).read_text())
    source["question_categories"]["heldout"] = ["color"] * 70
    path.write_text(json.dumps(source))
    with pytest.raises(ValueError, match="not the ones the benchmark stored"):
        benchmark.main([str(path), "--output", str(tmp_path / "out.json")])
