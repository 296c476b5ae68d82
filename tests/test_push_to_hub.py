"""`push_to_hub` of the model, processor and pipeline uploads what `save_pretrained` writes, the code files and
`auto_map` / `model_index.json` entries included, so the Hub repo loads with `trust_remote_code=True`. There is no
Hub here: the upload calls of transformers (`HfApi.create_commit`) and diffusers (`upload_folder`) are replaced by
a recorder of the files they would send."""

import json
from pathlib import Path

import diffusers.pipelines.pipeline_utils
import diffusers.utils.hub_utils
import pytest
from huggingface_hub import HfApi, ModelCard, RepoUrl
from huggingface_hub.errors import EntryNotFoundError
from test_pipeline import make_pipe


class StandInHub:
    """Records what each upload would send: `files[repo_id]` (`{path_in_repo: bytes}`), and the repo's
    `private` flag and commit message as the Hub would get them."""

    def __init__(self):
        self.files, self.private, self.commit_message = {}, {}, {}

    def create_repo(self, repo_id, private=None, **kwargs):  # a bare name lands in the user's namespace
        repo_id = repo_id if "/" in repo_id else f"me/{repo_id}"
        self.private[repo_id] = private
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, commit_message=None, **kwargs):  # transformers' upload
        self.files[repo_id] = {operation.path_in_repo: Path(operation.path_or_fileobj).read_bytes() for operation in operations}
        self.commit_message[repo_id] = commit_message

    def upload_folder(self, repo_id, folder_path, commit_message=None, **kwargs):  # diffusers' upload
        paths = (path for path in Path(folder_path).rglob("*") if path.is_file())
        self.files[repo_id] = {path.relative_to(folder_path).as_posix(): path.read_bytes() for path in paths}
        self.commit_message[repo_id] = commit_message


@pytest.fixture
def hub(monkeypatch):
    hub = StandInHub()

    def no_model_card(*args, **kwargs):
        raise EntryNotFoundError("no README.md in the repo yet")

    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kwargs: hub.create_repo(repo_id, **kwargs))
    monkeypatch.setattr(HfApi, "create_commit", lambda api, repo_id, operations, **kwargs: hub.create_commit(repo_id, operations, **kwargs))
    monkeypatch.setattr(diffusers.utils.hub_utils, "create_repo", hub.create_repo)
    monkeypatch.setattr(diffusers.pipelines.pipeline_utils, "create_repo", hub.create_repo)
    monkeypatch.setattr(diffusers.utils.hub_utils, "upload_folder", hub.upload_folder)
    monkeypatch.setattr(ModelCard, "load", classmethod(no_model_card))
    return hub


@pytest.fixture(scope="module")
def pipe():
    return make_pipe()


def saved_files(obj, folder: Path) -> dict[str, bytes]:
    obj.save_pretrained(str(folder))
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# (component, its file that must name the code, the entry there that does)
COMPONENTS = {"model": ("config.json", "auto_map"), "processor": ("processor_config.json", "auto_map"), "pipeline": ("model_index.json", "_class_name")}


@pytest.mark.parametrize(
    "component, how",
    [
        ("model", "push_to_hub"),
        ("model", "save_pretrained"),
        ("processor", "push_to_hub"),
        ("processor", "save_pretrained"),
        ("pipeline", "push_to_hub"),
        ("pipeline", "save_pretrained"),
    ],
)
def test_upload_holds_what_save_pretrained_writes(pipe, hub, tmp_path, component, how):
    obj = {"model": pipe.model, "processor": pipe.processor, "pipeline": pipe}[component]
    if how == "push_to_hub":
        obj.push_to_hub("me/vtok")
    else:
        obj.save_pretrained(str(tmp_path / "pushed"), push_to_hub=True, repo_id="me/vtok")
    uploaded = hub.files["me/vtok"]
    expected = saved_files(obj, tmp_path / "local")
    uploaded.pop("README.md", None)  # the model card upstream adds
    assert sorted(uploaded) == sorted(expected) and uploaded == expected
    config_file, code_entry = COMPONENTS[component]
    assert any(name.endswith(".py") for name in uploaded)
    assert code_entry in json.loads(uploaded[config_file])


def test_save_pretrained_push_passes_the_upload_keywords_on(pipe, hub, tmp_path):
    """Upstream's keywords reach the upload; the repo is named after the folder; saving keywords shape both saves."""
    folder = tmp_path / "vtok-tiny"
    pipe.model.save_pretrained(str(folder), push_to_hub=True, commit_message="tiny VTok", private=True, max_shard_size="100KB")
    assert hub.commit_message["me/vtok-tiny"] == "tiny VTok" and hub.private["me/vtok-tiny"] is True
    uploaded = hub.files["me/vtok-tiny"]
    shards = sorted(name for name in uploaded if name.endswith(".safetensors"))
    assert len(shards) > 1 and "model.safetensors.index.json" in uploaded
    assert sorted(path.name for path in folder.glob("*.safetensors")) == shards
    assert "modeling_vtok.py" in uploaded and (folder / "modeling_vtok.py").is_file()
