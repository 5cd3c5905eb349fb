"""The benchmark's verdicts and its table: the floors drawn from the measured rates and a step's FLOPs, the
goals the project's speed work is held to, and the report as printed."""

from __future__ import annotations

GIB = 1 << 30


def best_matmul_rate(rate: dict) -> float:
    return max(v for k, v in rate.items() if k.startswith("matmul"))


def floors(flops: dict, rates: dict) -> dict:
    """Seconds the step's FLOPs take at each precision's measured rates (convolutions at the convolution
    rate, everything else at the best matmul rate)."""
    return {precision: (flops["conv"] / rate["conv"] + flops["other"] / best_matmul_rate(rate)) / 1e9
            for precision, rate in rates.items()}


def kernel_floors(flops: dict, rates: dict) -> dict:
    """Seconds the step would take if every kernel ran as fast as PyTorch's own does on this machine: the FLOP
    floor with the attention FLOPs at the measured attention rate instead of the matmul rate. What lies between
    this and the measured step is the project's to win; what lies between it and the FLOP floor is the
    attention kernel's."""
    flop_floors, attention = floors(flops, rates), flops.get("attention", 0)
    return {precision: flop_floors[precision] + attention * (1 / rate["attention"] - 1 / best_matmul_rate(rate)) / 1e9
            for precision, rate in rates.items() if "attention" in rate}


# What the project's speed work is held to: each a ratio of two figures from the same run, and its bound.
GOALS = (
    ("step vs diffusers' example", "at most", 1 / 3),
    ("share of the float32 FLOP floor", "at least", 0.70),
    ("peak RSS vs diffusers' example", "at most", 0.5),
    ("ComfyUI step vs the core's", "at most", 1.2),
    # In the dtype the default computes in on this machine (float32 where bfloat16 would be emulated), so that
    # machines of every kind are held to what their own kernels reach.
    ("share of the default dtype's kernel floor", "at least", 0.70),
    # The LoRA stage's training RSS over the word's plus the adapter's weights, gradients and moments.
    ("LoRA stage's memory vs the word's + the adapter's", "at most", 1.0),
)


def comfyui_ratio(runs: dict) -> float | None:
    """ComfyUI's step over the core's default on the same torch (``comfyui-core``, run in ComfyUI's Python when
    that is another interpreter, whose torch build may differ), else over the default run; None without both."""
    comfyui, core = runs.get("comfyui"), runs.get("comfyui-core") or runs.get("default")
    return comfyui["seconds_per_step"] / core["seconds_per_step"] if comfyui and core else None


def compile_payback(runs: dict) -> dict | None:
    """What compiling costs and gives: the seconds it adds to the first step, the compiled step over the default's,
    and the steps after which the faster steps have made up for it (None: they never do); None without both runs."""
    compiled, default = runs.get("compiled"), runs.get("default")
    if not (compiled and default and compiled.get("first_step_seconds") is not None):
        return None
    compile_seconds = compiled["first_step_seconds"] - compiled["seconds_per_step"]
    saved = default["seconds_per_step"] - compiled["seconds_per_step"]
    return {"compile_seconds": compile_seconds, "step_ratio": compiled["seconds_per_step"] / default["seconds_per_step"],
            "steps": compile_seconds / saved if saved > 0 else None}


def goals(entry: dict) -> dict:
    """The goals one resolution's runs can be judged on: {name: {"value", "bound", "met"}}."""
    runs, floor, kernel_floor = entry["runs"], entry.get("floor_seconds", {}), entry.get("kernel_floor_seconds", {})
    default, example = runs.get("default"), runs.get("example")
    measured = {}
    if default and example:
        measured[GOALS[0][0]] = default["seconds_per_step"] / example["seconds_per_step"]
        measured[GOALS[2][0]] = default["peak_rss_bytes"] / example["peak_rss_bytes"]
    if default and "float32" in floor:
        measured[GOALS[1][0]] = floor["float32"] / default["seconds_per_step"]
    if (ratio := comfyui_ratio(runs)) is not None:
        measured[GOALS[3][0]] = ratio
    if default and default.get("dtype") in kernel_floor:
        measured[GOALS[4][0]] = kernel_floor[default["dtype"]] / default["seconds_per_step"]
    lora = runs.get("lora")
    if default and lora and default.get("train_rss_bytes") and lora.get("train_rss_bytes"):
        measured[GOALS[5][0]] = lora["train_rss_bytes"] / (default["train_rss_bytes"] + lora["adapter_training_bytes"])
    result = {}
    for name, sense, bound in GOALS:
        if name in measured:
            value = measured[name]
            result[name] = {"value": value, "bound": bound,
                            "met": value <= bound if sense == "at most" else value >= bound}
    return result


def goal_lines(report: dict) -> list[str]:
    lines = []
    for size, entry in report["sizes"].items():
        judged = entry.get("goals", {})
        if judged:
            senses = {name: sense for name, sense, _ in GOALS}
            lines.append(f"goals at {size} px: " + "; ".join(
                f"{name} {goal['value']:.2f} ({senses[name]} {goal['bound']:.2f}: {'met' if goal['met'] else 'NOT met'})"
                for name, goal in judged.items()))
    return lines


def gib(value) -> str:
    return f"{value / GIB:.2f}G" if value else "-"


def print_table(report: dict) -> None:
    machine = report["machine"]
    print(f"machine: {machine['name']} ({machine['device']}, {machine['capability']}, {machine['threads']} threads), "
          f"torch {machine['torch']}, "
          f"native compute dtype {report['native_dtype'].removeprefix('torch.')}; load average "
          f"{report['load_start']} at the start, {report['load_end']} at the end")
    print("rates, GFLOP/s (best of the start and the end): " + "; ".join(
        f"{precision} " + ", ".join(f"{kind} {value:.0f}" for kind, value in rate.items())
        for precision, rate in report["rates"].items()))
    precisions = list(report["rates"])
    print(f"{'px':>4} {'run':<12} {'weights':<9} {'autocast':<9} {'s/step':>7} {'min-max':>11} {'cache s':>7} "
          f"{'peak RSS':>8} {'train RSS':>9} {'VRAM':>7} " + " ".join(f"{'of ' + p + ' floor':>15}" for p in precisions)
          + f" {'load':>9}")
    for size, entry in report["sizes"].items():
        floor = entry.get("floor_seconds", {})
        for kind, run in entry["runs"].items():
            step = run["seconds_per_step"]
            shares = " ".join(f"{floor[p] / step:>15.0%}" if floor else f"{'-':>15}" for p in precisions)
            cache = f"{run['cache_seconds']:.1f}" if run.get("cache_seconds") is not None else "-"
            print(f"{size:>4} {kind:<12} {run['dtype']:<9} {run['autocast'] or '-':<9} {step:>7.2f} "
                  f"{run['step_min']:>5.2f}-{run['step_max']:<5.2f} {cache:>7} {gib(run['peak_rss_bytes']):>8} "
                  f"{gib(run.get('train_rss_bytes')):>9} {gib(run.get('peak_vram_bytes')):>7} {shares} "
                  f"{run['load_before']:>4}/{run['load_after']:<4}" + (f" (best of {run['attempts']})"
                                                                        if run.get("attempts", 1) > 1 else "")
                  + (f" torch {run['torch']}" if run.get("torch", machine["torch"]) != machine["torch"] else ""))
        if "flops" in entry:
            flops = entry["flops"]
            print(f"{'':>4} one step: {flops['total'] / 1e9:.0f} GFLOP ({flops['conv'] / flops['total']:.0%} in "
                  f"convolutions, {flops.get('attention', 0) / flops['total']:.0%} in attention); FLOP floor "
                  + ", ".join(f"{p} {s:.2f} s" for p, s in floor.items()))
        runs = entry["runs"]
        kernel_floor = entry.get("kernel_floor_seconds", {})
        native = report["native_dtype"].removeprefix("torch.")
        if kernel_floor:
            line = (f"{'':>4} kernel floor (attention at PyTorch's attention rate): "
                    + ", ".join(f"{p} {s:.2f} s" for p, s in kernel_floor.items()))
            if "default" in runs and native in kernel_floor:
                line += (f"; the default step reaches {kernel_floor[native] / runs['default']['seconds_per_step']:.0%}"
                         f" of its {native} kernel floor")
                if "example" in runs:
                    line += (f"; at that floor it would take {kernel_floor[native] / runs['example']['seconds_per_step']:.2f}x"
                             " the example's time")
            print(line)
        if "default" in runs and "example" in runs:
            d, e = runs["default"], runs["example"]
            print(f"{'':>4} default vs diffusers' example: {d['seconds_per_step'] / e['seconds_per_step']:.2f}x the "
                  f"time per step, {d['peak_rss_bytes'] / e['peak_rss_bytes']:.2f}x the peak RSS")
        if (paid := entry.get("compile_payback")) is not None:
            print(f"{'':>4} compiled: {paid['compile_seconds']:.0f} s of compiling in the first step, then "
                  f"{paid['step_ratio']:.2f}x the default's step; "
                  + (f"paid back after {paid['steps']:.0f} steps" if paid["steps"] is not None else "never paid back"))
        if (ratio := comfyui_ratio(runs)) is not None:
            which = "in ComfyUI's Python" if "comfyui-core" in runs else "in this Python"
            print(f"{'':>4} ComfyUI vs the core's default {which}: {ratio:.2f}x the time per step")
    for line in goal_lines(report):
        print(line)
    print("s/step: median after warm-up (min-max); cache s: the one-off latent cache before the first step; peak RSS: "
          "the whole run, loading included; train RSS: the peak from the first step's start (the latent cache "
          "included); of <dtype> floor: the step's FLOPs at that precision's measured rates (attention at the matmul "
          "rate), over the measured step; "
          "load: 1-minute load average before/after the run.")
