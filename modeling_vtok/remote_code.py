"""Self-contained checkpoint folders: the code files that let a saved folder load with
`trust_remote_code=True` where the vtok package is not installed (the Hub convention for models that
transformers and diffusers do not ship).

transformers and diffusers import remote code as flat files of one folder that import each other
relatively (`from .x import y`). Our source lives in two packages that import each other
(`modeling_vtok` <-> `processing_vtok`), so `save_pretrained` writes every file a class needs into the
folder, flat, with each `from modeling_vtok.x import` / `from processing_vtok.x import` turned into
`from .x import`. The repository keeps one copy of each file; the copies in a folder are generated.
Files that are already flat (a folder loaded by remote code, saved again) are copied unchanged.

A pipeline folder follows diffusers' custom-pipeline layout: `model_index.json` names the entry file and
class in `_class_name` (`["vtok_pipeline", "VTokTextToVideoPipeline"]`) and each custom component as
`[file, class]`, with `file.py` in the component's folder. diffusers 0.42 copies only the files a module
imports directly (`get_cached_module_file`), so the generated entry file imports every code file.

Uploads: `push_to_hub(repo)` saves through our `save_pretrained` into a temporary folder and uploads it, so the
code files go too. `save_pretrained(folder, push_to_hub=True)` needs [`pop_hub_arguments`].
"""

import importlib
import inspect
import json
import os
import re
import sys
from pathlib import Path


PACKAGES = ("modeling_vtok", "processing_vtok")

# `from modeling_vtok.x import` / `from processing_vtok.x import`, at any indentation.
_PACKAGE_IMPORT = re.compile(rf"^(\s*)from ({'|'.join(PACKAGES)})\.(\w+) import", re.MULTILINE)
_RELATIVE_IMPORT = re.compile(r"^\s*from \.(\w+) import", re.MULTILINE)


def code_reference(cls: type) -> str:
    """`"file.Class"`, how an `auto_map` (and a diffusers `model_index.json`) names a class in the folder."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def _source_file(module_name: str) -> Path:
    return Path(sys.modules[module_name].__file__)


def _imported_files(source: Path, text: str) -> list[Path]:
    """The files `source` imports from our packages, by relative or by package import."""
    files = [source.parent / f"{name}.py" for name in _RELATIVE_IMPORT.findall(text)]
    files += [_source_file(package).parent / f"{name}.py" for _, package, name in _PACKAGE_IMPORT.findall(text)]
    return files


def code_files(*classes: type) -> dict[str, str]:
    """The flat source files (name -> text) that define `classes`, with everything they import from our
    packages, package imports rewritten as relative ones."""
    pending = [_source_file(cls.__module__) for cls in classes]
    files: dict[str, str] = {}
    while pending:
        source = pending.pop()
        if source.name in files:
            continue
        text = source.read_text(encoding="utf-8")
        pending.extend(_imported_files(source, text))
        files[source.name] = _PACKAGE_IMPORT.sub(r"\1from .\3 import", text)
    return files


def save_code_files(save_directory: str | os.PathLike, *classes: type) -> list[Path]:
    """Write [`code_files`] of `classes` into `save_directory`; returns the paths written."""
    written = []
    for name, text in sorted(code_files(*classes).items()):
        path = Path(save_directory) / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# Keywords of `save_pretrained` that `push_to_hub` takes as well and that shape the files saved: both saves get them.
_SAVING_KEYWORDS = ("max_shard_size", "safe_serialization", "variant")


def pop_hub_arguments(obj, save_directory: str | os.PathLike, kwargs: dict) -> dict:
    """The keywords for `obj.push_to_hub` in `obj.save_pretrained(save_directory, push_to_hub=True, **kwargs)`:
    popped from `kwargs` when only the upload reads them (`repo_id`, `commit_message`, `token`, `private`,
    `create_pr`, ...), copied when they shape the saved files too; `repo_id` defaults to the folder's name, as upstream.

    Upstream's `save_pretrained(push_to_hub=True)` uploads before it returns, so before our code files are
    written. Our `save_pretrained` therefore saves without pushing, writes the code, then calls
    `obj.push_to_hub(**these)`, which saves again (code included) into a temporary folder and uploads that."""
    accepted = inspect.signature(obj.push_to_hub).parameters
    hub_arguments = {name: kwargs[name] for name in _SAVING_KEYWORDS if name in kwargs and name in accepted}
    hub_arguments |= {name: kwargs.pop(name) for name in list(kwargs) if name in accepted and name not in _SAVING_KEYWORDS}
    hub_arguments.setdefault("repo_id", Path(save_directory).name)
    return hub_arguments


PIPELINE_ENTRY = "vtok_pipeline"
_LIBRARIES = ("diffusers", "transformers")  # components diffusers loads by itself


def _is_ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] not in _LIBRARIES


def save_pipeline_code(save_directory: str | os.PathLike, pipeline_class: type, components: dict[str, type]) -> None:
    """After `DiffusionPipeline.save_pretrained`: write the code of `pipeline_class` and of its custom
    `components` (name -> class), the entry file, and the `model_index.json` entries that name them."""
    folder = Path(save_directory)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    custom = {name: cls for name, cls in components.items() if _is_ours(cls)}
    for name, cls in custom.items():
        save_code_files(folder / name, cls)
        index[name] = code_reference(cls).split(".")
    written = save_code_files(folder, pipeline_class, *custom.values())
    imports = "".join(f"from .{path.stem} import *  # noqa: F401,F403\n" for path in written)
    (folder / f"{PIPELINE_ENTRY}.py").write_text(
        '"""Written by VTokTextToVideoPipeline.save_pretrained: the file diffusers loads for\n'
        "`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`. It imports every code file, because\n"
        'diffusers copies only the files that the module it loads imports directly."""\n\n' + imports,
        encoding="utf-8",
    )
    index["_class_name"] = [PIPELINE_ENTRY, pipeline_class.__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def with_installed_code(model_index: dict, pipeline_class: type) -> dict:
    """`model_index` with the folder's code files swapped for the modules already imported beside
    `pipeline_class` (the installed package, or the remote copy it came from), so that
    `pipeline_class.from_pretrained` runs that code and needs no `trust_remote_code`."""
    model_index = dict(model_index)
    if isinstance(model_index.get("_class_name"), list):
        model_index["_class_name"] = pipeline_class.__name__
    near = [pipeline_class.__module__.rpartition(".")[0], *PACKAGES]
    for name, entry in model_index.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None or "." in entry[0]:
            continue
        loaded = [f"{package}.{entry[0]}" for package in near if f"{package}.{entry[0]}" in sys.modules]
        if loaded and entry[0] not in _LIBRARIES:
            model_index[name] = [loaded[0], entry[1]]
    return model_index


def refresh_pipeline_code(folder: str | os.PathLike) -> None:
    """Rewrite the code files of a saved pipeline folder from the installed package, weights untouched
    (for a folder kept in a repository, such as the bundled checkpoint, after the source changed)."""
    # By name, not by an import statement: transformers would list the package as a requirement of the
    # copy of this file in a folder (`check_imports` reads import statements).
    pipeline_class = importlib.import_module(PACKAGES[0]).VTokTextToVideoPipeline
    index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    components = {
        name: getattr(sys.modules[entry[0]], entry[1])
        for name, entry in with_installed_code(index, pipeline_class).items()
        if not name.startswith("_") and isinstance(entry, list) and entry[0] in sys.modules
    }
    save_pipeline_code(folder, pipeline_class, components)


__all__ = [
    "PACKAGES",
    "PIPELINE_ENTRY",
    "code_reference",
    "code_files",
    "save_code_files",
    "pop_hub_arguments",
    "save_pipeline_code",
    "with_installed_code",
    "refresh_pipeline_code",
]

