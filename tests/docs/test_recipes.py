"""Every recipe in the user docs runs: each fenced shell or Python block of README.md and docs/*.md.

A shell recipe runs in bash (``set -euo pipefail``) with ``irv2``, ``python`` and ``pip`` of this virtualenv on
PATH and the stand-ins of prelude.sh (``pip`` checks instead of installing, ``irv2 serve`` goes to the
background); a Python recipe runs in a process of its own (as ``irv2`` does, a child of the warm Python of
tests/warm_python.py), its tracebacks naming the doc's own lines. Both run
in a folder prepared by conftest.py, offline, on random weights. A recipe passes when it exits 0, prints what
its ``# prints VALUE`` comments say, in order, and, where ``CHECKS`` has an entry, when its results agree with
irv2's command line. Blocks that cannot run here say why
in the doc (``<!-- recipe: skip (REASON) -->``), and pytest -rs lists them. A recipe that asks for bfloat16
runs where the CPU has bfloat16 instructions; elsewhere it must stop at irv2's refusal (what users of such a CPU
see), so the docs put that request last in its block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from givens import GIVENS, PLACES
from recipes import all_recipes

import warm_python
from bfloat16_support import BFLOAT16_HERE, assert_refusal_message
from cli_runner import run_irv2

TOOLS = Path(__file__).parent
TIMEOUT = 1200  # seconds for one recipe: the slowest, full fine-tuning for 10 epochs at 299 px, takes minutes
_TENSORFLOW = re.compile(r"\bimport tensorflow\b|tensorflow_hub|savedmodel|\[tensorflow\]")
# What no test machine has: a recipe that asks for it must say so with a skip comment, and is never started
# (an unskipped multi-node torchrun would look for its peers on the network).
_HARDWARE = re.compile(r"--device[ =]cuda|device=\"cuda|--nproc[-_]per[-_]node|--nnodes|--rdzv")
# A recipe that names bfloat16 as its dtype (`--dtype bf16`, `dtype="bfloat16"`, `dtypes=[..., "bfloat16"]`).
_BFLOAT16 = re.compile(r"""--dtype[ =](bfloat16|bf16)\b|["'](bfloat16|bf16)["']""")
RECIPES, PROBLEMS = all_recipes()


def _marks(recipe) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.slow]  # every recipe starts processes that use torch, and most load weights
    if recipe.skip:
        marks.append(pytest.mark.skip(reason=f"{recipe.doc}:{recipe.line}: {recipe.skip}"))
    known = [GIVENS[name] for name in recipe.given if name in GIVENS]
    if _TENSORFLOW.search(recipe.code) or any(given.tensorflow for given in known):
        marks.append(pytest.mark.tensorflow)
    return marks


def test_recipe_comments_are_understood():
    assert PROBLEMS == []
    unknown = [(r.id, name) for r in RECIPES for name in r.given if name not in GIVENS]
    assert unknown == [], f"no such given; conftest.GIVENS has {sorted(GIVENS)}"
    docs = {"README.md", "docs/batch.md", "docs/deploy.md", "docs/evaluate.md", "docs/finetune.md", "docs/migrating.md"}
    assert {r.doc for r in RECIPES} == docs
    unmarked = [f"{r.doc}:{r.line}" for r in RECIPES if not r.skip and _HARDWARE.search(r.code)]
    assert unmarked == [], "these ask for GPUs or several processes: mark them <!-- recipe: skip (REASON) -->"


def test_prints_comments_are_held_to_the_output():
    from recipes import parse

    text = "```python\nprint(1)  # prints 1\nprint(x)\nprint(2)  # prints (2, 5)\n```\n"
    (recipe,), problems = parse("doc.md", text)
    assert problems == [] and recipe.prints == ["1", "(2, 5)"]
    _assert_prints(recipe, "1\nanything\n(2, 5)\n")
    with pytest.raises(AssertionError, match=r"should print '\(2, 5\)'"):
        _assert_prints(recipe, "1\n(2, 6)\n")
    with pytest.raises(AssertionError, match=r"should print '\(2, 5\)'"):
        _assert_prints(recipe, "(2, 5)\n1\n")  # out of order


def _place(code: str, work: Path) -> str:
    for place, here in PLACES.items():
        code = code.replace(place, f"{work / here}" + ("/" if place.endswith("/") else ""))
    return code


def _script(recipe, work: Path) -> str:
    """The bash script that runs ``recipe`` in ``work``."""
    lines = ["set -euo pipefail", f'source "{TOOLS / "prelude.sh"}"']
    lines += [GIVENS[name].shell for name in recipe.given if GIVENS[name].shell]
    if recipe.language == "bash":
        return "\n".join([*lines, f"PS4='+ {recipe.doc}: '", "set -x", _place(recipe.code, work)])
    (work / ".recipe-prelude.py").write_text("".join(GIVENS[name].python for name in recipe.given))
    # Blank lines in front, so that a traceback names the doc and its own line numbers.
    (work / ".recipe-code.py").write_text("\n" * recipe.line + _place(recipe.code, work))
    runner = work / ".recipe.py"
    runner.write_text(
        "namespace = {'__name__': '__main__'}\n"
        "exec(compile(open('.recipe-prelude.py').read(), '<recipe harness>', 'exec'), namespace)\n"
        f"exec(compile(open('.recipe-code.py').read(), {recipe.doc!r}, 'exec'), namespace)\n"
    )
    return "\n".join([*lines, f'"${{RECIPE_RUN_PYTHON[@]}}" "{runner}"'])


def _environment(home: Path) -> dict[str, str]:
    # IRV2_CPU_BFLOAT16 stays: it says what this CPU is (tests/bfloat16_support.py reads it too).
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "IRV2_")) or key == "IRV2_CPU_BFLOAT16"
    }
    environment = {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "IRV2_HOME": str(home),
        "IRV2_OFFLINE": "1",
        "RECIPE_PYTHON": sys.executable,
        "RECIPE_TOOLS": str(TOOLS),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    warm = warm_python.warm_python_for(environment)
    return environment if warm is None else {**environment, "RECIPE_WARM_PYTHON": warm.socket_path}


def _check_spark(work: Path, env: dict[str, str]) -> None:
    """The Spark recipe's rows hold the features ``irv2 features`` gives for the same paths."""
    import pyarrow.parquet as pq

    result = run_irv2("features", "@paths.txt", "-w", "my-module", "-o", "expected.npz", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    expected = np.load(work / "expected.npz")
    rows = pq.read_table(work / "features").to_pydict()
    got = dict(zip(rows["path"], rows["features"], strict=True))
    assert sorted(got) == sorted(expected["paths"]) and len(got) == len(rows["path"])
    for path, features in zip(expected["paths"], expected["features"], strict=True):
        row = np.asarray(got[path], np.float32)
        assert row.shape == (1536,)
        np.testing.assert_allclose(row, features, rtol=0, atol=1e-4 * np.abs(features).max(), err_msg=path)


CHECKS = {"docs/batch.md::spark": _check_spark}


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=_marks(r), id=r.id) for r in RECIPES])
def test_recipe(recipe, request, recipe_folders):
    assert not _HARDWARE.search(recipe.code), "asks for GPUs or several processes: needs a skip comment"
    work, home = recipe_folders
    for name in recipe.given:
        if GIVENS[name].prepare:
            GIVENS[name].prepare(request, work, home)
    env = _environment(home)
    script = work / ".recipe.sh"
    script.write_text(_script(recipe, work))
    result = subprocess.run(["bash", script], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    if _BFLOAT16.search(recipe.code) and not BFLOAT16_HERE:
        _assert_stopped_at_the_refusal(recipe, result)
        return
    assert result.returncode == 0, f"{recipe.doc}:{recipe.line} ({recipe.section}) exited {result.returncode}\n{output}"
    _assert_prints(recipe, result.stdout)
    if recipe.id in CHECKS:
        CHECKS[recipe.id](work, env)


def _assert_prints(recipe, stdout: str) -> None:
    """Each ``# prints VALUE`` of the recipe is a line of its output, in the recipe's order."""
    lines = iter(stdout.splitlines())
    for value in recipe.prints:
        assert any(line.strip() == value for line in lines), (
            f"{recipe.doc}:{recipe.line} ({recipe.section}) should print {value!r}; it printed:\n{stdout[-4000:]}"
        )


def _assert_stopped_at_the_refusal(recipe, result) -> None:
    """On a CPU without bfloat16 instructions, the recipe ran up to its bfloat16 request and irv2 refused it."""
    where = f"{recipe.doc}:{recipe.line} ({recipe.section})"
    assert result.returncode != 0, f"{where} asks for bfloat16 on a CPU without it, yet exited 0"
    if recipe.language == "bash":  # the command line's usage error (status 2), after which only the harness traces
        assert result.returncode == 2, f"{where} exited {result.returncode}\n{result.stderr[-8000:]}"
        said = [line for line in result.stderr.splitlines() if not line.startswith("+")]
        assert said and said[-1].startswith("irv2: error: "), f"{where}\n{result.stderr[-8000:]}"
        assert_refusal_message(said[-1])
    else:  # the recipe does not catch irv2's error: its last line, under the recipe's own traceback
        last = result.stderr.rstrip().splitlines()[-1]
        assert last.startswith("irv2.errors.OptionError: "), f"{where}\n{result.stderr[-8000:]}"
        assert_refusal_message(last)
