"""`benchmarks/efficiency.py --quick` runs end to end (worker processes included), and its JSON keeps
the benchmark's invariants: exact token counts, KV-cache bytes from the layout, per-layer scaling,
ratios computed from the same run's rows, upstream processors' own token counts."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "efficiency.py"


@pytest.mark.slow  # the four workers fork from one server that imports the library: 54 s at load 8 (138 s when each imported it)
def test_quick_run_json(tmp_path):
    subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--output-dir", str(tmp_path)], check=True, timeout=1800)
    report = json.loads((tmp_path / "efficiency.json").read_text())
    assert (tmp_path / "efficiency.png").stat().st_size > 10_000
    assert report["complete"] and report["scaled_to_full_depth"]

    shapes, arms = report["shapes"], report["arms"]
    assert set(arms) == {"vtok", "frames", "vtok_chunk2", "vtok_res16"}
    tokens_per_frame = (32 // 8) ** 2  # the quick encoder: 32 px frames, patch 8
    head_dim = shapes["text_hidden_size"] // shapes["text_heads"]
    for name, rows in arms.items():
        assert [row["num_frames"] for row in rows] == [2, 5]
        for row in rows:
            t = row["num_frames"]
            expected = tokens_per_frame * t if name == "frames" else tokens_per_frame + t - 1
            assert row["video_tokens"] == expected
            assert row["sequence_length"] == expected + 3 + 16  # bos, start, end + the 16-token question
            per_layer_kv = 2 * shapes["text_kv_heads"] * head_dim * row["sequence_length"] * 4
            assert row["kv_cache_bytes_measured"] == shapes["text_layers"] * per_layer_kv
            assert row["kv_cache_bytes"] == shapes["full_text_layers"] * per_layer_kv
            # one encoder layer of two built: the scaled vision time adds the measured layer time once more
            module = row["module_s_measured"]
            assert row["vision_s"] == pytest.approx(module["video_tokenizer"] + module["vision_layers"])
            assert row["prefill_s"] == pytest.approx(module["llm"] + module["llm_layers"])
            assert row["end_to_end_s"] >= row["vision_s"] + row["prefill_s"] - 1e-9
            assert math.isclose(sum(row["profile_share"].values()), 1.0)
            assert row["peak_memory_bytes"] >= 0 and row["repeats"] == 1

    by_frames = {name: {row["num_frames"]: row for row in rows} for name, rows in arms.items()}
    for ratio in report["frames_over_vtok"]:
        frames_row, vtok_row = by_frames["frames"][ratio["num_frames"]], by_frames["vtok"][ratio["num_frames"]]
        for key in ("video_tokens", "vision_s", "prefill_s", "end_to_end_s", "kv_cache_bytes"):
            assert ratio[key] == frames_row[key] / vtok_row[key]
    assert [r["video_tokens"] for r in report["frames_over_vtok"]] == [32 / 17, 80 / 20]

    # same weights in every arm; their size is counted at full depth
    assert len(set(report["weights_bytes_full_size"].values())) == 1
    # the processors' own counts: LLaVA-NeXT-Video resizes to 224 px, 16x16 patches of 14 px pooled
    # 2x2 = 64 a frame; Qwen2.5-VL resizes to its 336-px pixel floor, 24x24 patches merged 2x2 = 144
    # per pair of frames (an odd count is padded to even)
    upstream = report["upstream_processor_video_tokens"]
    assert upstream == {"llava_next_video": {"2": 128, "5": 320}, "qwen2_5_vl": {"2": 144, "5": 432}}


def test_a_residual_size_the_encoder_cannot_take_fails_before_any_worker_starts():
    result = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--residual-image-sizes", "20"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "residual_image_size must be a multiple of the vision encoder's patch_size=8" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # three workers; about a minute under load
def test_arms_picks_the_arms_beside_vtok_and_frames(tmp_path):
    """`--arms` runs fewer arms (at full depth every arm holds a full-size model): vtok and frames always,
    for the ratios; the resolution panel draws the resolutions that ran."""
    subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--frames", "2", "--arms", "vtok_res16", "--output-dir", str(tmp_path)],
                   check=True, timeout=1800)  # fmt: skip
    report = json.loads((tmp_path / "efficiency.json").read_text())
    assert set(report["arms"]) == {"vtok", "frames", "vtok_res16"} and report["complete"]
    assert [r["num_frames"] for r in report["frames_over_vtok"]] == [2]
    assert (tmp_path / "efficiency.png").stat().st_size > 10_000


def test_an_unknown_arm_is_named_before_any_worker_starts():
    result = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--arms", "vtok_res20"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "unknown arms ['vtok_res20']; with these shapes the arms are ['vtok', 'frames', 'vtok_chunk2', 'vtok_res16']" in result.stderr
    assert "Traceback" not in result.stderr
