"""``irv2 bench``: how fast irv2 runs here (latency, throughput, load time, cold start, end to end)."""

from .report import format_report
from .runner import BenchConfig, default_dtypes, machine_info, run_bench

__all__ = ["BenchConfig", "default_dtypes", "format_report", "machine_info", "run_bench"]
