"""bfloat16 on the CPU the suite runs on: it runs where the CPU has bfloat16 instructions (AVX512-BF16, AMX), and
is refused with an irv2 error naming float32 and int8 where it has none (AVX2-only CPUs). The bfloat16 tests check
whichever of the two this CPU gets, never skipping; tests/torch_free/test_bfloat16_refusal.py checks the refusal
on every CPU (``IRV2_CPU_BFLOAT16=0``)."""

from __future__ import annotations

import re

import pytest

from irv2.engine.precision import cpu_has_fast_bfloat16
from irv2.errors import OptionError

BFLOAT16_HERE = cpu_has_fast_bfloat16()


def assert_refusal_message(text: str) -> None:
    """The refusal names the CPU's lack and both ways out."""
    assert "no bfloat16 instructions" in text and "float32" in text and "int8" in text, text
    assert "Traceback" not in text and "mkldnn" not in text, text
    assert not re.search(r"dtype \S+: dtype ", text), f"the dtype is named twice: {text}"


def assert_refused(call, *args, **kwargs) -> None:
    """``call(*args, **kwargs)`` raises irv2's OptionError for bfloat16, with the message users need."""
    with pytest.raises(OptionError) as refused:
        call(*args, **kwargs)
    assert_refusal_message(str(refused.value))


def assert_cli_refused(run) -> None:
    """A command run with ``--dtype bfloat16`` was refused as a usage error (status 2), in one line."""
    assert run.returncode == 2, run.stderr
    assert_refusal_message(run.stderr)
    assert run.stderr.count("\n") == 1, run.stderr
