"""The loss plot a run writes, and its smoothed curve, which is the node's live chart's to the last digit."""

import json
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from textual_inversion_core.loss_plot import render_loss_plot, smooth

TRAINING_RUN_JS = Path(__file__).resolve().parents[1] / "web" / "training_run.js"


def chart_smoothing(losses: list[float], total: int) -> list[float | None]:
    """The smoothed losses the browser's TrainingRun computes from the node's progress messages."""
    script = f"""
        import {{ TrainingRun }} from {json.dumps(TRAINING_RUN_JS.as_uri())};
        const run = new TrainingRun("prompt");
        const losses = {json.dumps([loss if math.isfinite(loss) else None for loss in losses])};
        losses.forEach((loss, i) => run.addStep({{ step: i + 1, total: {total}, loss: loss ?? NaN, lr: 0.005,
                                                   elapsed: i, eta: 0 }}));
        console.log(JSON.stringify(run.points.map(point => point[2])));
    """
    finished = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True,
                              timeout=60)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed, so the web chart's code cannot run")
@pytest.mark.parametrize("total", [30, 300, 5000])
def test_the_plot_smooths_exactly_as_the_live_chart(total):
    # Given a run's noisy losses, one of them not finite
    rng = random.Random(total)
    losses = [0.2 + 0.1 * math.exp(-i / 50) + rng.gauss(0, 0.05) for i in range(min(total, 400))]
    losses[7] = float("nan")
    # When the plot and the browser's chart each smooth them for a run of that many steps
    ours, theirs = smooth(losses, total), chart_smoothing(losses, total)
    # Then they are the same numbers, step by step, the non-finite step left out by both
    assert theirs[7] is None and ours[7] is None
    assert [o for o in ours if o is not None] == pytest.approx([t for t in theirs if t is not None], rel=1e-12)


def test_the_smoothed_curve_starts_at_the_first_loss_and_follows_a_short_run():
    assert smooth([0.5], 1) == [0.5]
    assert smooth([1.0, 1.0, 1.0], 3) == pytest.approx([1.0, 1.0, 1.0])


def test_a_plot_is_drawn_for_a_resumed_run_and_for_one_with_no_steps():
    assert render_loss_plot([0.3, 0.2, float("inf"), 0.25], first_step=501, total_steps=1000).size == (768, 384)
    assert render_loss_plot([]).size == (768, 384)
