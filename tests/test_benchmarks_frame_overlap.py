"""`benchmarks/frame_overlap.py` scores kept clips per frame: a clip that is right only at its key frame
scores 1 there and 0 after; an arm of 2 frames is scored at the 2 frames it shows."""

import json

import numpy as np
import pytest

from conftest import load_script
from vtok_shapes.dataset import text_to_video_clips


def _result_with_clips(tmp_path) -> dict:
    """A tv_align_shapes result of 2 prompts per split: VTok's generated clips right at frame 0 only (later
    frames black), its reconstructions the true clips drawn 2 pixels lower; frames_budget's both the true
    clips at frames 0 and 7; frames_all kept no clips."""
    true = {split: np.stack([np.asarray(p["video"]) for p in list(text_to_video_clips(split))[:2]]) for split in ("test", "heldout")}
    key_only = {split: np.concatenate([clips[:, :1], np.zeros_like(clips[:, 1:])], axis=1) for split, clips in true.items()}
    lower = {split: np.roll(clips, 2, axis=2) for split, clips in true.items()}  # (the canonical shapes stay clear of the border)
    vtok = {split: {"generated": key_only[split], "reconstructed": lower[split]} for split in true}
    budget = {split: {"generated": true[split][:, [0, 7]], "reconstructed": true[split][:, [0, 7]]} for split in true}
    tv_align = load_script("benchmarks/tv_align_shapes.py")
    return {"command": "x", "settings": {"num_prompts": 2}, "arms": {
        "vtok": {"seeds": [{"seed": 0, "clips": tv_align.save_clips(vtok, tmp_path / "vtok" / "clips.npz")}]},
        "frames_budget": {"seeds": [{"seed": 0, "clips": tv_align.save_clips(budget, tmp_path / "budget" / "clips.npz")}]},
        "frames_all": {"seeds": [{"seed": 0}]},
    }}  # fmt: skip


def test_overlap_per_frame_of_kept_clips(tmp_path, capsys):
    benchmark = load_script("benchmarks/frame_overlap.py")
    source = tmp_path / "result.json"
    source.write_text(json.dumps(_result_with_clips(tmp_path)))
    output = tmp_path / "overlap.json"
    arms = benchmark.main([str(source), "--bootstrap", "100", "--output", str(output)])["arms"]
    assert "frames_all: seeds [0] kept no clips" in capsys.readouterr().out and set(arms) == {"vtok", "frames_budget"}
    assert "vtok_minus_this" not in arms["vtok"]
    assert arms["vtok"]["frames"] == list(range(8)) and arms["frames_budget"]["frames"] == [0, 7]
    for split in ("test", "heldout"):
        generated = arms["vtok"][f"{split}_generated"]
        assert [cell["mean"] for cell in generated["per_frame"]] == [1.0] + [0.0] * 7
        assert generated["later_minus_first"] == {"mean": -1.0, "interval95": [-1.0, -1.0], "per_seed": [-1.0]}
        assert [cell["mean"] for cell in generated["per_frame_aligned"]] == [1.0] + [0.0] * 7  # nothing to align
        reconstructed = arms["vtok"][f"{split}_reconstructed"]
        assert all(cell["mean"] < 0.9 for cell in reconstructed["per_frame"])  # position off...
        assert [cell["mean"] for cell in reconstructed["per_frame_aligned"]] == [1.0] * 8  # ...shape right
        assert [cell["mean"] for cell in arms["frames_budget"][f"{split}_generated"]["per_frame"]] == [1.0, 1.0]
        # VTok minus frames_budget, paired at the 2 frames both show: equal at the key frame, a whole frame lost at 7
        paired = arms["frames_budget"]["vtok_minus_this"]
        assert (paired["seeds"], paired["frames"]) == ([0], [0, 7])
        assert [cell["mean"] for cell in paired[f"{split}_generated"]["per_frame"]] == [0.0, -1.0]
        assert paired[f"{split}_generated"]["later_minus_first"] == {"mean": -1.0, "interval95": [-1.0, -1.0], "per_seed": [-1.0]}
        assert all(cell["mean"] < -0.1 for cell in paired[f"{split}_reconstructed"]["per_frame"])  # 2 px lower than the truth
        assert [cell["mean"] for cell in paired[f"{split}_reconstructed"]["per_frame_aligned"]] == [0.0, 0.0]
    assert output.with_suffix(".png").stat().st_size > 10_000
    assert json.loads(output.read_text())["arms"] == arms


def test_a_result_without_kept_clips_is_refused(tmp_path):
    benchmark = load_script("benchmarks/frame_overlap.py")
    source = tmp_path / "old.json"
    source.write_text(json.dumps({"command": "x", "settings": {"num_prompts": 2}, "arms": {"vtok": {"seeds": [{"seed": 0}]}}}))
    with pytest.raises(ValueError, match="No run of this result kept its clips"):
        benchmark.main([str(source), "--output", str(tmp_path / "x.json")])


def test_vtok_minus_an_arm_pairs_only_the_seeds_both_kept(tmp_path):
    """VTok seed 0 loses every later frame, seed 1 draws the true clips; frames_budget kept seed 1 only: the
    paired difference is seed 1's alone (no loss), not VTok's two-seed mean against it."""
    benchmark = load_script("benchmarks/frame_overlap.py")
    tv_align = load_script("benchmarks/tv_align_shapes.py")
    result = _result_with_clips(tmp_path)
    true = {split: np.stack([np.asarray(p["video"]) for p in list(text_to_video_clips(split))[:2]]) for split in ("test", "heldout")}
    perfect = {split: {"generated": clips, "reconstructed": clips} for split, clips in true.items()}
    result["arms"]["vtok"]["seeds"].append({"seed": 1, "clips": tv_align.save_clips(perfect, tmp_path / "vtok1" / "clips.npz")})
    result["arms"]["frames_budget"]["seeds"][0]["seed"] = 1
    source = tmp_path / "result.json"
    source.write_text(json.dumps(result))
    arms = benchmark.main([str(source), "--bootstrap", "100", "--output", str(tmp_path / "overlap.json")])["arms"]
    assert arms["vtok"]["test_generated"]["later_minus_first"]["per_seed"] == [-1.0, 0.0]
    paired = arms["frames_budget"]["vtok_minus_this"]
    assert paired["seeds"] == [1]
    assert [cell["mean"] for cell in paired["test_generated"]["per_frame"]] == [0.0, 0.0]
