"""Files that ship with the package: the bundled policies and the JSON Schemas.

In a wheel they are the packages ``engine.policies`` and ``engine.schemas`` (mapped from the repository's
top-level ``policies/`` and ``schemas/`` folders by pyproject.toml); in a source checkout they are those
folders themselves.
"""

from __future__ import annotations

from pathlib import Path


def _folder(name: str) -> Path:
    try:
        from importlib.resources import files

        found = Path(str(files(f"engine.{name}")))
        if found.is_dir():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / name  # a source checkout


def policies_dir() -> Path:
    return _folder("policies")


def schemas_dir() -> Path:
    return _folder("schemas")


def bundled_policy(name: str) -> Path | None:
    """The bundled policy called ``name`` (``default``), or None."""
    if not name.replace("-", "").replace("_", "").isalnum():
        return None
    path = policies_dir() / f"{name}.yaml"
    return path if path.is_file() else None


def schema_path(name: str = "policy") -> Path:
    return schemas_dir() / f"{name}.schema.json"
