"""The core install is the library: a fresh venv with `pip install .` (no extras) loads the bundled
model, processor and pipeline, answers a question about a video file and generates a clip; before the
install, the same venv loads the bundled folder by its own code (trust_remote_code=True). The
optional packages stay out of it, and what needs them says which extra to install."""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "checkpoints" / "vtok-tiny-shapes"
OPTIONAL_PACKAGES = ("peft", "datasets", "evaluate", "accelerate", "imageio")

# Runs inside the fresh venv, from an empty folder (so the installed package is imported, not the
# source tree), on the clip `clip.mp4` there. "remote": only the folder's own code, loaded with
# trust_remote_code=True, the vtok package not imported (not installed, in the fresh venv). Prints one JSON line.
CORE_SCRIPT = r"""
import importlib.util, json, sys
from pathlib import Path
import numpy as np, torch
from transformers import AutoModelForImageTextToText, AutoProcessor

checkpoint, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "remote":
    from diffusers import DiffusionPipeline as Pipeline
    load = {"trust_remote_code": True}
else:
    import modeling_vtok  # registers everything
    from modeling_vtok import VTokTextToVideoPipeline as Pipeline
    load = {}
model = AutoModelForImageTextToText.from_pretrained(checkpoint / "model", **load).eval()
processor = AutoProcessor.from_pretrained(checkpoint / "processor", **load)
messages = [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}, {"type": "text", "text": "which way does the red square move?"}]}]
inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=8)
with torch.no_grad():
    logits = model(**inputs).logits
answer = model.generate(**inputs, max_new_tokens=4, do_sample=False)
pipe = Pipeline.from_pretrained(checkpoint, **load)
pipe.set_progress_bar_config(disable=True)
video = pipe("a red circle moving right", num_frames=8, num_inference_steps=4, generator=torch.Generator().manual_seed(0)).frames
result = {
    "answer": processor.batch_decode(answer[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0],
    "logits": logits[0, -4:].tolist(),
    "video": video.tolist(),
    "classes": [type(x).__module__.split(".")[0] for x in (model, processor, pipe, pipe.model, pipe.decoder)],
}
if mode != "remote":
    try:
        import vtok_shapes
        shapes_error = None
    except ImportError as error:
        shapes_error = str(error)
    result.update(
        installed={name: importlib.util.find_spec(name) is not None for name in sys.argv[3:]},
        modeling_vtok=modeling_vtok.__file__,
        shapes_error=shapes_error,
    )
print(json.dumps(result))
"""


def link_torch_into(venv: Path) -> None:
    """Places this environment's torch and torchvision, with every distribution they require, into `venv`'s
    site-packages as hard links (copies across file systems): a venv that already has torch, as most users'
    have. Unpacking torch's wheels (a 5.5 GB CUDA build here) was most of the fresh-venv test's three minutes
    of CI; what the test is about, which packages `pip install .` resolves and installs, pip still does."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    site_packages = next(venv.glob("lib/python3*/site-packages"))
    seen, wanted = set(), [(Requirement("torch"), ""), (Requirement("torchvision"), "")]
    while wanted:
        requirement, extra = wanted.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:  # pip installs what is not here
            continue
        name = dist.metadata["Name"].lower()
        first_time = not any(name == seen_name for seen_name, _ in seen)
        for asked in sorted(requirement.extras) or [""]:
            if (name, asked) not in seen:
                seen.add((name, asked))
                wanted += [(Requirement(text), asked) for text in dist.requires or []]
        for file in (dist.files or []) if first_time else []:  # no RECORD (not installed by pip): pip installs it
            source = Path(dist.locate_file(file)).resolve()
            if file.parts[0] == ".." or not source.is_file():  # console scripts live outside site-packages
                continue
            target = site_packages / file
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def run_core_script(python: Path, workdir: Path, mode: str = "package") -> dict:
    result = subprocess.run(
        [str(python), "-c", CORE_SCRIPT, str(CHECKPOINT), mode, *OPTIONAL_PACKAGES],
        cwd=workdir, capture_output=True, text=True, env={**os.environ, "HF_MODULES_CACHE": str(workdir / "hf_modules")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_same_outputs(result: dict, expected: dict) -> None:
    assert result["answer"].strip() and result["answer"] == expected["answer"]
    np.testing.assert_allclose(np.array(result["logits"]), np.array(expected["logits"]), atol=1e-4)
    video = np.array(result["video"])
    assert video.shape == (1, 8, 32, 32, 3) and np.isfinite(video).all() and video.min() >= 0 and video.max() <= 1
    np.testing.assert_allclose(video, np.array(expected["video"]), atol=1e-4)


@pytest.mark.slow
def test_core_install_in_a_fresh_venv_answers_and_generates(tmp_path):
    """First the bundled folder alone, by its own code (trust_remote_code=True), in a venv with torch,
    transformers, diffusers and PyAV but no vtok; then the same venv with `pip install .` (no extras). The venv
    starts with torch and torchvision linked in from this environment (`link_torch_into`)."""
    from processing_vtok import write_video

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # this pip installs into it
    python = venv / "bin" / "python"
    link_torch_into(venv)
    # The releases of the environment running this test (the lock, or the newest ones) as constraints:
    # the fresh venv gets the same versions, only fewer packages.
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(line for line in freeze.stdout.splitlines() if "==" in line and not line.startswith("vtok")))

    def pip_install(*requirements):
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "-c", str(constraints), *requirements],
            capture_output=True, text=True,
        )
        assert install.returncode == 0, install.stderr[-3000:]

    workdir = tmp_path / "work"
    workdir.mkdir()
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    for t in range(8):
        frames[t, 12:20, 2 + 3 * t : 10 + 3 * t] = (230, 30, 30)
    write_video(workdir / "clip.mp4", frames, fps=8)
    here = run_core_script(Path(sys.executable), workdir)
    assert here["classes"] == ["modeling_vtok", "processing_vtok", "modeling_vtok", "modeling_vtok", "modeling_vtok"]

    pip_install("torch", "torchvision", "transformers", "diffusers", "av", "jinja2")
    remote = run_core_script(python, workdir, mode="remote")
    assert remote["classes"] == ["transformers_modules", "transformers_modules"] + ["diffusers_modules"] * 3
    assert_same_outputs(remote, here)

    pip_install(str(REPO))
    core = run_core_script(python, workdir)
    assert core["modeling_vtok"].startswith(str(venv)), "the fresh venv must import its installed copy"
    assert core["installed"] == {name: False for name in OPTIONAL_PACKAGES}
    assert 'pip install "vtok[train]"' in core["shapes_error"]
    assert_same_outputs(core, here)


@pytest.mark.parametrize(
    "module, missing, needed_by",
    [
        ("modeling_vtok.peft_vtok", "peft", "LoRA presets"),
        ("modeling_vtok.trainer_vtok", "accelerate", "VTokTrainer"),
        ("vtok_shapes", "datasets", "VTok-Shapes dataset"),
        ("modeling_vtok.metrics_vtok", "evaluate", "QA metric"),
    ],
)
def test_a_missing_extra_names_the_extra_to_install(monkeypatch, module, missing, needed_by):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `missing` unimportable
    for name in [name for name in sys.modules if name == module or name.split(".")[0] == "vtok_shapes"]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh below, restored afterwards
    with pytest.raises(ImportError, match=rf'{needed_by}.*needs `{missing}`.*pip install "vtok\[train\]"'):
        importlib.import_module(module)


def test_export_without_imageio_names_the_video_extra(monkeypatch, tmp_path):
    from modeling_vtok import export_video

    monkeypatch.setitem(sys.modules, "imageio", None)
    with pytest.raises(ImportError, match=r'pip install "vtok\[video\]"'):
        export_video(np.zeros((2, 8, 8, 3), np.float32), str(tmp_path / "clip.mp4"))


def test_either_import_registers_every_auto_class():
    code = f"""
import {{first}}
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor, AutoVideoProcessor
config = AutoConfig.from_pretrained("{CHECKPOINT}/model")
loaded = [config, AutoModel.from_config(config), AutoModelForImageTextToText.from_pretrained("{CHECKPOINT}/model"),
          AutoProcessor.from_pretrained("{CHECKPOINT}/processor"), AutoVideoProcessor.from_pretrained("{CHECKPOINT}/processor")]
print(",".join(type(item).__name__ for item in loaded))
"""
    for first in ("modeling_vtok", "processing_vtok"):
        result = subprocess.run([sys.executable, "-c", code.format(first=first)], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split() == ["VTokConfig,VTokModel,VTokForConditionalGeneration,VTokProcessor,VTokVideoProcessor"]
