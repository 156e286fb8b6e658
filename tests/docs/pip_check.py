"""``pip`` as the docs' recipes call it, checked instead of run (the recipe harness puts it on PATH).

``pip install [-e] SPEC...`` where SPEC is irv2 (``.``, ``/src``, ``irv2``) with or without extras: each extra
must exist in pyproject.toml and each of its requirements must be installed here at a version that fits.
The recipes then run on what is installed, so a doc that names a missing or misspelt extra fails its test.
Anything else is refused: the harness cannot tell whether installing it would work.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# Distributions that provide another's name: tensorflow-cpu is TensorFlow (see the Makefile's tf-keras note).
PROVIDED_BY = {"tensorflow": ("tensorflow", "tensorflow-cpu")}
_SPEC = re.compile(r"(?P<name>[^\[\]]+?)(?:\[(?P<extras>[^\]]*)\])?")
_FLAGS = {"-e", "--editable", "-q", "--quiet", "--no-cache-dir", "-U", "--upgrade"}


def _installed(requirement: Requirement) -> str:
    for distribution in PROVIDED_BY.get(requirement.name, (requirement.name,)):
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        if requirement.specifier.contains(version, prereleases=True):
            return f"{distribution} {version}"
        raise SystemExit(f"pip (recipe check): {distribution} {version} does not satisfy {requirement}")
    raise SystemExit(f"pip (recipe check): {requirement} is not installed")


def check(arguments: list[str]) -> list[str]:
    if not arguments or arguments[0] != "install":
        raise SystemExit(f"pip (recipe check): only `pip install` is checked, not `pip {' '.join(arguments)}`")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    found = []
    for argument in arguments[1:]:
        if argument in _FLAGS:
            continue
        spec = _SPEC.fullmatch(argument)
        if spec is None or spec.group("name") not in (".", "/src", "irv2"):
            raise SystemExit(f"pip (recipe check): cannot check `pip install {argument}`; only irv2 and its extras")
        found += [_installed(Requirement(r)) for r in project["dependencies"]]
        for extra in filter(None, (spec.group("extras") or "").split(",")):
            if extra not in optional:
                raise SystemExit(f"pip (recipe check): irv2 has no extra {extra!r}; it has {sorted(optional)}")
            found += [_installed(Requirement(r)) for r in optional[extra]]
    return sorted(set(found))


if __name__ == "__main__":
    print("pip (recipe check): installed:", ", ".join(check(sys.argv[1:])))
