"""Files that ship with the package: the bundled policies and the JSON Schemas.

In a wheel they are the packages ``engine.policies`` and ``engine.schemas`` (mapped from the repository's
top-level ``policies/`` and ``schemas/`` folders by pyproject.toml); in a source checkout they are those
folders themselves.
"""

from __future__ import annotations

from pathlib import Path


def _folder(name: str) -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parent / name):  # an installed wheel; a source checkout
        if candidate.is_dir():
            return candidate
    from importlib.resources import files  # anything more exotic (a zip import)

    return Path(str(files("engine").joinpath(name)))


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
