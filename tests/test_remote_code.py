"""Self-contained folders: `save_pretrained` writes the code files and the `auto_map`, and the folder loads
by remote code (`trust_remote_code=True`) through the Auto classes and the generic
`DiffusionPipeline.from_pretrained`, with the same outputs as the installed package. The load in a venv
without the package is `test_install.py`'s slow test."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_stack
from diffusers import DiffusionPipeline
from test_pipeline import get_dummy_inputs, make_pipe

from modeling_vtok import VTokForConditionalGeneration, VTokTextToVideoPipeline, VTokVideoDecoder
from modeling_vtok.remote_code import PIPELINE_ENTRY, code_files
from processing_vtok import VTokProcessor
from test_install import CHECKPOINT

# Makes our packages unimportable, as in a venv where vtok is not installed.
WITHOUT_PACKAGE = """
import importlib.abc, sys
class WithoutVTok(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("modeling_vtok", "processing_vtok", "vtok_shapes"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, WithoutVTok())
"""

REMOTE_LOAD = """
from pathlib import Path
import numpy as np, torch
from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor, AutoVideoProcessor
folder = Path(sys.argv[1])
model = AutoModelForImageTextToText.from_pretrained(folder / "model", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder / "processor", trust_remote_code=True)
video_processor = AutoVideoProcessor.from_pretrained(folder / "processor", trust_remote_code=True)
base = AutoModel.from_pretrained(folder / "model", trust_remote_code=True)
inputs = processor(text=["<video> describe the video"], videos=[np.load(folder / "video.npy")])
with torch.no_grad():
    torch.save({**inputs, "logits": model(**inputs).logits}, folder / "remote.pt")
print(",".join([type(x).__module__.split(".")[0] for x in (model, processor, video_processor)] + [type(base).__name__]))
"""

PACKAGE_IMPORT = re.compile(r"^\s*(from|import) (modeling_vtok|processing_vtok)\b", re.MULTILINE)


def assert_flat_code(folder, expected_files):
    """`folder` holds exactly `expected_files` as code, none importing our packages by name."""
    assert sorted(path.name for path in folder.glob("*.py")) == sorted(expected_files)
    for path in folder.glob("*.py"):
        assert not PACKAGE_IMPORT.search(path.read_text()), f"{path.name} imports the vtok packages"


def test_saved_model_and_processor_load_by_remote_code_with_the_same_outputs(tmp_path):
    model, processor = tiny_stack()
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "processor")

    assert json.loads((tmp_path / "model" / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_vtok.VTokConfig",
        "AutoModel": "modeling_vtok.VTokModel",
        "AutoModelForImageTextToText": "modeling_vtok.VTokForConditionalGeneration",
    }
    processor_config = json.loads((tmp_path / "processor" / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_vtok.VTokProcessor"}
    assert processor_config["video_processor"]["auto_map"] == {"AutoVideoProcessor": "video_processing_vtok.VTokVideoProcessor"}
    assert_flat_code(tmp_path / "model", code_files(VTokForConditionalGeneration))
    assert_flat_code(tmp_path / "processor", code_files(VTokProcessor))

    video = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "video.npy", video)
    inputs = processor(text=["<video> describe the video"], videos=[video])
    with torch.no_grad():
        logits = model.eval()(**inputs).logits

    # transformers prefers a class registered in this process even with trust_remote_code=True, so the
    # remote code runs in a process where our packages cannot be imported.
    result = subprocess.run([sys.executable, "-c", WITHOUT_PACKAGE + REMOTE_LOAD, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "transformers_modules,transformers_modules,transformers_modules,VTokModel"
    remote = torch.load(tmp_path / "remote.pt")
    for key in inputs:
        torch.testing.assert_close(remote[key], inputs[key], rtol=0, atol=0)
    torch.testing.assert_close(remote["logits"], logits)


def test_saved_pipeline_loads_through_diffusers_generic_entry_point(tmp_path):
    pipe = make_pipe()
    pipe.save_pretrained(tmp_path)

    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == [PIPELINE_ENTRY, "VTokTextToVideoPipeline"]
    assert index["model"] == ["modeling_vtok", "VTokForConditionalGeneration"]
    assert index["processor"] == ["processing_vtok", "VTokProcessor"]
    assert index["decoder"] == ["decoder_vtok", "VTokVideoDecoder"]
    assert index["scheduler"] == ["diffusers", "FlowMatchEulerDiscreteScheduler"]
    for component, entry in index.items():
        if not component.startswith("_") and entry[0] not in (None, "diffusers"):
            assert (tmp_path / component / f"{entry[0]}.py").is_file()

    # The installed class runs its own code: no trust_remote_code needed.
    installed = VTokTextToVideoPipeline.from_pretrained(tmp_path)
    assert type(installed) is VTokTextToVideoPipeline and type(installed.model) is VTokForConditionalGeneration

    # The generic entry point runs the folder's code, which diffusers allows only when asked to.
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        DiffusionPipeline.from_pretrained(tmp_path)
    generic = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(generic).__name__ == "VTokTextToVideoPipeline" and type(generic).__module__.startswith("diffusers_modules.")
    assert type(generic.model).__module__.startswith("diffusers_modules.")

    expected = pipe(**get_dummy_inputs()).frames
    for loaded in (installed, generic):
        loaded.set_progress_bar_config(disable=True)
        torch.testing.assert_close(loaded(**get_dummy_inputs()).frames, expected, atol=1e-5, rtol=1e-5)


def test_bundled_checkpoint_ships_the_current_code():
    """The bundled folder's code files are generated copies of the source; they must not go stale."""
    index = json.loads((CHECKPOINT / "model_index.json").read_text())
    expected = {
        ".": code_files(VTokTextToVideoPipeline, VTokForConditionalGeneration, VTokProcessor, VTokVideoDecoder),
        "model": code_files(VTokForConditionalGeneration),
        "processor": code_files(VTokProcessor),
        "decoder": code_files(VTokVideoDecoder),
    }
    assert index["_class_name"] == [PIPELINE_ENTRY, "VTokTextToVideoPipeline"]
    for folder, files in expected.items():
        for name, text in files.items():
            assert (CHECKPOINT / folder / name).read_text() == text, (
                f"{folder}/{name} in the bundled checkpoint differs from the source; refresh it with "
                "`python -c 'from modeling_vtok.remote_code import refresh_pipeline_code; "
                "refresh_pipeline_code(\"checkpoints/vtok-tiny-shapes\")'`"
            )
