"""Optional dependencies. The core install (`pip install vtok`) runs the models, the processor and the
pipeline; training, LoRA, the VTok-Shapes world and video export need extras, and a missing one
raises an ImportError that says which extra installs it."""

import importlib.util

# The setup.cfg extra that installs each optional package.
EXTRA_OF_PACKAGE = {
    "peft": "train",
    "accelerate": "train",
    "datasets": "train",
    "evaluate": "train",
    "imageio": "video",
}


def missing_extra_error(package: str, needed_by: str) -> ImportError:
    """The ImportError for `needed_by` when `package` (an optional dependency) is not installed."""
    extra = EXTRA_OF_PACKAGE[package]
    return ImportError(
        f"{needed_by} needs `{package}`, which the core install of vtok does not include. "
        f'Install the extra: pip install "vtok[{extra}]"'
    )


def require(package: str, needed_by: str) -> None:
    """Raise [`missing_extra_error`] now unless `package` is importable."""
    if importlib.util.find_spec(package) is None:
        raise missing_extra_error(package, needed_by)


__all__ = ["EXTRA_OF_PACKAGE", "missing_extra_error", "require"]
