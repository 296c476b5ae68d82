"""`benchmarks/colour_binding.py`: each answer to a colour question is sorted by what it names, and the
--quick run on the bundled model counts every colour question once."""

import json
from pathlib import Path

import pytest

from conftest import load_script
from vtok_cli.checkpoint import BUNDLED_MODEL


def _load_benchmark():
    return load_script("benchmarks/colour_binding.py")


def test_answer_kinds():
    benchmark = _load_benchmark()
    question = {"answer": "red", "shapes": [{"color": "red", "shape": "triangle"}, {"color": "blue", "shape": "square"}]}
    assert benchmark.answer_kind("Red.", question) == "right"
    assert benchmark.answer_kind("blue", question) == "another shape's colour in the clip"
    assert benchmark.answer_kind("green", question) == "a colour absent from the clip"
    assert benchmark.answer_kind("left", question) == "not a colour"
    alone = {"answer": "red", "shapes": [{"color": "red", "shape": "triangle"}]}
    assert benchmark.answer_kind("blue", alone) == "a colour absent from the clip"


def test_quick_run_counts_every_colour_question(tmp_path):
    benchmark = _load_benchmark()
    output = tmp_path / "colour_binding.json"
    results = benchmark.main(["--quick", "--output", str(output)])
    assert json.loads(output.read_text()) == results
    assert not Path(results["model"]).is_absolute() and Path(results["model"]).resolve() == BUNDLED_MODEL
    assert results["num_colour_questions"] == {"test": 10, "heldout": 10}  # 70 questions, 7 categories
    for split, answers in results["answers"].items():
        assert list(answers) == ["shape alone", "with other shapes"]
        assert sum(sum(kinds.values()) for kinds in answers.values()) == results["num_colour_questions"][split]
        for kinds in answers.values():
            assert list(kinds) == list(benchmark.KINDS)


def test_arguments_are_checked():
    benchmark = _load_benchmark()
    with pytest.raises(SystemExit):
        benchmark.main(["--num-questions", "3"])
    with pytest.raises(SystemExit):
        benchmark.main(["--splits", "nope"])
