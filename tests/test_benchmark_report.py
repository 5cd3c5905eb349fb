"""bench/report.py's verdicts: the floors it derives from measured rates and FLOPs, and how it judges the goals."""

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# GFLOP/s as measure_rates reports them, and one step's FLOPs as count_step_flops does.
RATES = {
    "float32": {"matmul": 200.0, "conv": 220.0, "matmul_onednn": 250.0, "attention": 125.0},
    "bfloat16": {"matmul": 400.0, "conv": 440.0, "attention": 160.0},
}
FLOPS = {"total": 1000e9, "conv": 440e9, "attention": 200e9, "other": 560e9}


def test_the_flop_floor_runs_convolutions_at_the_conv_rate_and_the_rest_at_the_best_matmul_rate(bench):
    floors = bench.floors(FLOPS, RATES)
    # oneDNN's matmul is faster than MKL's in float32 here, so that is the rate the floor takes
    assert floors["float32"] == pytest.approx(440 / 220 + 560 / 250)
    assert floors["bfloat16"] == pytest.approx(440 / 440 + 560 / 400)


def test_the_kernel_floor_runs_attention_at_the_attention_rate(bench):
    kernel = bench.kernel_floors(FLOPS, RATES)
    assert kernel["bfloat16"] == pytest.approx(440 / 440 + 360 / 400 + 200 / 160)
    # attention slower than the matmuls it is made of makes the kernel floor the higher of the two
    assert kernel["bfloat16"] > bench.floors(FLOPS, RATES)["bfloat16"]


def test_no_kernel_floor_for_rates_measured_without_attention(bench):
    rates = {"float32": {"matmul": 200.0, "conv": 220.0}}
    assert bench.kernel_floors(FLOPS, rates) == {}


def run(seconds, rss=None):
    return {"seconds_per_step": seconds, "peak_rss_bytes": rss}


def test_each_goal_is_a_ratio_of_figures_from_the_same_run(bench):
    # Given a default step a little under a third of the example's, in under half its memory, above the
    # float32 floor, and a ComfyUI step 1.25x the core's
    entry = {"runs": {"example": run(18.3, 8e9), "default": run(6.0, 3.5e9), "comfyui": run(7.5, 7e9)},
             "floor_seconds": {"float32": 8.4, "bfloat16": 4.0}}
    judged = bench.goals(entry)
    # Then each goal carries its value, its bound and the verdict
    assert judged["step vs diffusers' example"] == {"value": pytest.approx(6.0 / 18.3), "bound": 1 / 3, "met": True}
    assert judged["peak RSS vs diffusers' example"]["met"]
    assert judged["share of the float32 FLOP floor"]["value"] == pytest.approx(8.4 / 6.0)
    assert judged["share of the float32 FLOP floor"]["met"]
    assert judged["ComfyUI step vs the core's"]["value"] == pytest.approx(1.25)
    assert not judged["ComfyUI step vs the core's"]["met"]
    # and the summary line says so
    (line,) = bench.goal_lines({"sizes": {512: {**entry, "goals": judged}}})
    assert line.startswith("goals at 512 px:") and "ComfyUI step vs the core's 1.25 (at most 1.20: NOT met)" in line


def test_comfyuis_step_is_held_to_the_cores_on_the_same_torch_when_comfyui_has_its_own_python(bench):
    # Given ComfyUI's step, the core's default in this Python and the core's default again in ComfyUI's Python
    # (another torch build, slower on this machine)
    entry = {"runs": {"default": run(4.2), "comfyui": run(5.2), "comfyui-core": run(5.0)}, "floor_seconds": {}}
    # Then ComfyUI's step is compared with the core's in ComfyUI's Python
    assert bench.goals(entry)["ComfyUI step vs the core's"]["value"] == pytest.approx(5.2 / 5.0)
    # and with the default run when no such run was made (ComfyUI shares this Python)
    del entry["runs"]["comfyui-core"]
    assert bench.goals(entry)["ComfyUI step vs the core's"]["value"] == pytest.approx(5.2 / 4.2)


def test_the_kernel_floor_goal_is_in_the_dtype_the_default_computes_in(bench):
    # Given a machine whose default trains in float32 (bfloat16 would be emulated) and its kernel floors
    entry = {"runs": {"default": {**run(6.0, 3.5e9), "dtype": "float32"}},
             "kernel_floor_seconds": {"float32": 4.5, "bfloat16": 2.0}}
    # Then the default is held to its float32 kernel floor, not to a bfloat16 one it never runs in
    judged = bench.goals(entry)["share of the default dtype's kernel floor"]
    assert judged == {"value": pytest.approx(4.5 / 6.0), "bound": 0.70, "met": True}
    entry["runs"]["default"]["dtype"] = "bfloat16"
    assert not bench.goals(entry)["share of the default dtype's kernel floor"]["met"]


def test_a_goal_whose_runs_were_not_made_is_left_out_rather_than_failed(bench):
    judged = bench.goals({"runs": {"default": run(6.0, 3.5e9)}, "floor_seconds": {}})
    assert judged == {}


def test_compiling_is_paid_back_after_the_steps_its_seconds_take_to_save(bench):
    # Given a compiled run whose first step took 62 s (2 s of it the step itself) and whose steps take 2 s, against
    # the default's 3 s
    runs = {"default": run(3.0), "compiled": {**run(2.0), "first_step_seconds": 62.0}}
    # Then compiling cost 60 s, and 60 steps of 1 s saved each pay it back
    assert bench.compile_payback(runs) == {"compile_seconds": 60.0, "step_ratio": pytest.approx(2 / 3),
                                           "steps": pytest.approx(60.0)}
    # And compiled steps no faster than the default's never pay it back
    runs["compiled"]["seconds_per_step"] = 3.1
    assert bench.compile_payback(runs)["steps"] is None
    # And without both runs there is nothing to say
    assert bench.compile_payback({"default": run(3.0)}) is None
