"""What changing one training setting does to the accuracy benchmark's arms, seed by seed (issue 13).

`tv_align_shapes.py` keeps each arm's per-question correctness and per-prompt judge verdicts for every
training seed. This reads two of its JSONs whose settings differ (e.g. `--decoder-steps 700` and `2100`)
and, for every arm and seed both trained, gives the changed run minus the base run: question accuracy per
split, and every judge check of the generated and of the reconstructed clips per split, with paired
bootstrap intervals over the questions or prompts (the same ones in both runs, which is what makes one
seed enough to see a change). It trains nothing. The settings that differ are written down; what pairing
needs (the questions drawn, the prompts judged) must agree. `questions_answered_differently` tells whether
the part of training that was not changed came out the same.

    python benchmarks/tv_align_setting_change.py benchmarks/results/tv_align_shapes_small_3000_steps.json \\
        benchmarks/results/tv_align_shapes_small_decoder_2100_steps.json --output benchmarks/results/decoder_2100_vs_700_steps.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import recorded_command  # noqa: E402
from tv_align_shapes import RESULTS, bootstrap_interval  # noqa: E402


def paired_change(base: list[float], changed: list[float], num_resamples: int) -> dict:
    """Means of both runs and the mean of changed - base, with a bootstrap interval over the paired items."""
    base, changed = np.asarray(base, dtype=float), np.asarray(changed, dtype=float)
    return {"base": round(float(base.mean()), 4), "changed": round(float(changed.mean()), 4),
            "changed_minus_base": round(float((changed - base).mean()), 4),
            "interval95": bootstrap_interval(changed - base, num_resamples)}  # fmt: skip


def verdict_changes(base: list[dict], changed: list[dict], num_resamples: int) -> dict:
    """`paired_change` of every judge check both runs have (a run judged before a check was added lacks
    it) over the prompts both runs judged."""
    if len(base) != len(changed):
        raise ValueError(f"The runs judged different prompts ({len(base)} and {len(changed)}): nothing to pair.")
    return {check: paired_change([v[check] for v in base], [v[check] for v in changed], num_resamples) for check in base[0] if check in changed[0]}


def seed_change(base: dict, changed: dict, num_resamples: int) -> dict:
    """One seed of one arm: changed run minus base run, per split, for understanding, generation and reconstruction."""
    result = {"seed": base["seed"], "understanding": {}, "questions_answered_differently": {}, "generation": {}, "reconstruction": {}}
    for split, hits in base["hits"].items():
        result["understanding"][split] = paired_change(hits, changed["hits"][split], num_resamples)
        result["questions_answered_differently"][split] = int(sum(a != b for a, b in zip(hits, changed["hits"][split], strict=True)))
        for section, key in (("generation", "verdicts"), ("reconstruction", "reconstruction_verdicts")):
            if (key in base) != (key in changed):
                raise ValueError(f"Seed {base['seed']}: only the {'base' if key in base else 'changed'} run has {key!r}: nothing to pair.")
            if key in base:  # runs before the decoder's ceiling was measured have no reconstruction_verdicts
                result[section][split] = verdict_changes(base[key][split], changed[key][split], num_resamples)
    return result


def compare(base: dict, changed: dict, num_resamples: int) -> dict:
    """Every arm and seed the two results share, changed minus base; refuses runs that cannot be paired."""
    if base.get("question_categories") is None or changed.get("question_categories") is None:
        raise ValueError("Both results need per-question results (written before they were kept?): nothing to pair.")
    if base["question_categories"] != changed["question_categories"]:
        raise ValueError("The runs asked different questions (--num-questions or the dataset differ): nothing to pair.")
    arms = {}
    for arm, record in changed["arms"].items():
        base_runs = {run["seed"]: run for run in base["arms"].get(arm, {"seeds": []})["seeds"]}
        shared = [run for run in record["seeds"] if run["seed"] in base_runs]
        if shared:
            arms[arm] = [seed_change(base_runs[run["seed"]], run, num_resamples) for run in shared]
    if not arms:
        raise ValueError("The runs share no arm and seed: nothing to pair.")
    return arms


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="a JSON written by benchmarks/tv_align_shapes.py")
    parser.add_argument("changed", help="another, of the same arms and seeds with some settings changed")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples per interval")
    parser.add_argument("--output", default=str(RESULTS / "tv_align_setting_change.json"))
    args = parser.parse_args(argv)
    base, changed = (json.loads(Path(path).read_text()) for path in (args.base, args.changed))
    settings = sorted(set(base["settings"]) | set(changed["settings"]))
    results = {
        "benchmark": "The accuracy benchmark's arms with one training setting changed, paired per question and prompt (issue 13)",
        "command": recorded_command(__file__, sys.argv[1:] if argv is None else argv),
        "base": os.path.relpath(args.base),  # relative, so the JSON names no folder of this machine
        "changed": os.path.relpath(args.changed),
        "settings_changed": {key: {"base": base["settings"].get(key), "changed": changed["settings"].get(key)}
                             for key in settings if key != "seeds" and base["settings"].get(key) != changed["settings"].get(key)},  # fmt: skip
        "machine": {"base": base["machine"], "changed": changed["machine"]},
        "arms": compare(base, changed, args.bootstrap),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))
    print("settings changed:", results["settings_changed"])
    for arm, runs in results["arms"].items():
        for run in runs:
            for section in ("understanding", "generation", "reconstruction"):
                for split, cell in run[section].items():
                    cell = cell.get("all_right", cell)
                    print(f"{arm} seed {run['seed']} {section} {split}: {cell['base']:.3f} -> {cell['changed']:.3f} "
                          f"({cell['changed_minus_base']:+.3f} {cell['interval95']})")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
