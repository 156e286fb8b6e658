"""``irv2 bench``'s report as text for people (``--json`` prints the dict itself)."""

from __future__ import annotations

from typing import Any


def format_report(report: dict[str, Any]) -> str:
    machine = report["machine"]
    where = machine.get("gpu") or f"{machine['cpu']}, {machine['cores']} cores, {machine['torch_threads']} threads"
    bf16 = ", AVX512-BF16/AMX" if machine.get("cpu_bfloat16") and "gpu" not in machine else ""
    lines = [
        f"irv2 {report['irv2']} bench on {machine['device']} ({where}{bf16}), torch {machine['torch']}",
        f"weights: {report['weights']}; load in this process: {report['load_s']:.2f} s",
    ]
    cold = report.get("cold_start")
    if cold:
        lines.append(
            f"cold start, new process to first prediction: {cold['total_s']:.2f} s (interpreter "
            f"{cold['interpreter_s']:.2f}, import irv2 {cold['import_s']:.2f}, load {cold['load_s']:.2f}, "
            f"first prediction {cold['first_prediction_s']:.2f})"
        )
    lines += ["", f"{'dtype':<9} {'engine':<11} {'batch':>5} {'img/s':>9} {'p50 ms':>9} {'p90 ms':>9} {'peak MiB':>9}"]
    for row in report["results"]:
        lines.append(
            f"{row['dtype']:<9} {row['engine']:<11} {row['batch_size']:>5} {row['images_per_s']:>9.2f} "
            f"{row['latency_ms_p50']:>9.1f} {row['latency_ms_p90']:>9.1f} {row['peak_memory_mib']:>9.0f}"
        )
    for row in report.get("skipped", []):
        lines.append(f"{row['dtype']:<9} {row['engine']:<11} skipped: {row['reason']}")
    for row in report.get("end_to_end", []):
        ratio = f", {row['ratio_to_model']:.2f}x the network alone" if row["ratio_to_model"] else ""
        lines.append(
            f"end to end ({row['images']} photos, {row['mean_megapixels']:.1f} MP mean, {row['dtype']}, batch "
            f"{row['batch_size']}): {row['images_per_s']:.2f} img/s{ratio}"
        )
    return "\n".join(lines)
