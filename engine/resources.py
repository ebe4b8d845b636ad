"""Files that ship with the package: the bundled policies and the JSON Schemas.

In a wheel they are ``engine/policies`` and ``engine/schemas`` (mapped from the repository's top-level
``policies/`` and ``schemas/`` folders by pyproject.toml); in a source checkout they are those folders
themselves. Plain ``os.path`` keeps this off the start-up bill (pathlib costs milliseconds to import).
"""

from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _folder(name: str) -> str:
    for candidate in (os.path.join(_HERE, name), os.path.join(os.path.dirname(_HERE), name)):
        if os.path.isdir(candidate):  # an installed wheel; a source checkout
            return candidate
    from importlib.resources import files  # anything more exotic (a zip import)

    return str(files("engine").joinpath(name))


def sample_memory_dir() -> str:
    """The sample memory store (examples/memory in a checkout, engine/examples/memory in a wheel)."""
    return os.path.join(_folder("examples"), "memory")


def policies_dir() -> str:
    return _folder("policies")


def schemas_dir() -> str:
    return _folder("schemas")


def bundled_policy(name: str) -> str | None:
    """The path of the bundled policy called ``name`` (``default``), or None."""
    if not name.replace("-", "").replace("_", "").isalnum():
        return None
    path = os.path.join(policies_dir(), f"{name}.yaml")
    return path if os.path.isfile(path) else None


def schema_path(name: str = "policy") -> str:
    return os.path.join(schemas_dir(), f"{name}.schema.json")
