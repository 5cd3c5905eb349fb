"""The trainer's advice: a warning, with the figure and what to change, when the vectors run away or the loss
has stopped falling; silence otherwise."""

import random

from textual_inversion_core.training.advice import TrainingAdvisor


def noisy(mean, count, rng):
    return [mean * (1 + rng.uniform(-0.3, 0.3)) for _ in range(count)]


def feed(advisor, losses, ratio=1.0):
    said = []
    for step, loss in enumerate(losses, 1):
        said += [(step, w) for w in advisor.after_step(step, loss, ratio, 5e-3, "off")]
    return said


def test_a_loss_that_fell_and_then_stopped_falling_is_reported_once_with_the_step_it_stopped():
    # Given a loss that falls for 300 steps and is then flat for 700, with per-step noise
    rng = random.Random(0)
    losses = [x for k in range(6) for x in noisy(0.2 - 0.02 * k, 50, rng)] + noisy(0.1, 700, rng)
    # When the advisor watches it in windows of 50 steps
    said = feed(TrainingAdvisor(1000, window=50), losses)
    # Then it says so once, soon after the fall ended, naming about where it ended
    assert len(said) == 1
    step, message = said[0]
    assert 300 < step <= 500
    assert "has not fallen since about step" in message and "lower the learning rate" in message


def test_pure_noise_is_not_called_a_plateau():
    # Given a loss that never falls (nothing seen to learn: no evidence of a plateau either)
    rng = random.Random(1)
    assert feed(TrainingAdvisor(1000, window=50), noisy(0.15, 1000, rng)) == []


def test_a_steadily_falling_loss_gets_no_warning():
    rng = random.Random(2)
    losses = [x for k in range(20) for x in noisy(0.3 - 0.01 * k, 50, rng)]
    assert feed(TrainingAdvisor(1000, window=50), losses) == []


def test_vectors_that_run_away_are_reported_once_with_their_size_and_the_learning_rate():
    # Given vectors at 3.5x a typical word's norm from the 10th step
    advisor = TrainingAdvisor(100)
    said = [w for step in range(1, 30)
            for w in advisor.after_step(step, 0.1, 3.5 if step >= 10 else 1.2, 5e-3, "off")]
    # Then one warning names the step, the ratio, the learning rate and both remedies
    assert len(said) == 1
    assert "By step 10" in said[0] and "3.5x" in said[0] and "0.005" in said[0] and "norm_control" in said[0]
