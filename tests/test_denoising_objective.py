"""The denoising loss: what the vectors are optimised against."""

import torch

from textual_inversion_core.interfaces import Conditioning
from textual_inversion_core.objective import add_noise, denoising_loss, min_snr_weights, prediction_target

ALPHAS = torch.linspace(0.999, 0.01, 1000)


class Oracle:
    """A denoiser that knows the answer: it returns exactly what the objective asks of it."""

    def __init__(self, prediction_type, latents, noise):
        self.prediction_type, self.alphas_cumprod = prediction_type, ALPHAS
        self.latents, self.noise = latents, noise

    def __call__(self, noisy, timesteps, cond):
        return prediction_target(self.latents, self.noise, timesteps, ALPHAS, self.prediction_type)


def test_noising_mixes_signal_and_noise_by_the_schedule():
    latents, noise = torch.ones(2, 4, 8, 8), torch.zeros(2, 4, 8, 8)
    noisy = add_noise(latents, noise, torch.tensor([0, 999]), ALPHAS)
    assert torch.allclose(noisy[0], torch.full_like(noisy[0], ALPHAS[0].sqrt()))
    assert torch.allclose(noisy[1], torch.full_like(noisy[1], ALPHAS[999].sqrt()))


def test_v_target_is_the_velocity():
    latents, noise, t = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2), torch.tensor([500])
    a = ALPHAS[500]
    expected = a.sqrt() * noise - (1 - a).sqrt() * latents
    assert torch.allclose(prediction_target(latents, noise, t, ALPHAS, "v_prediction"), expected)
    assert torch.equal(prediction_target(latents, noise, t, ALPHAS, "epsilon"), noise)


def test_a_perfect_denoiser_has_zero_loss_for_both_prediction_types():
    latents, noise, t = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.tensor([1, 400, 990])
    cond = Conditioning(torch.zeros(3, 77, 8))
    for kind in ("epsilon", "v_prediction"):
        assert denoising_loss(Oracle(kind, latents, noise), latents, cond, t, noise).item() == 0.0


def test_min_snr_damps_only_the_low_noise_steps():
    t = torch.tensor([0, 999])
    weights = min_snr_weights(t, ALPHAS, gamma=5.0, prediction_type="epsilon")
    snr0 = ALPHAS[0] / (1 - ALPHAS[0])
    assert torch.allclose(weights[0], 5.0 / snr0) and weights[0] < 0.01
    assert weights[1] == 1.0
    v_weights = min_snr_weights(t, ALPHAS, gamma=5.0, prediction_type="v_prediction")
    assert torch.allclose(v_weights[1], (ALPHAS[999] / (1 - ALPHAS[999])) / (ALPHAS[999] / (1 - ALPHAS[999]) + 1))


class Guess:
    """A denoiser whose prediction is a tensor the test holds, to read the loss's gradient on each pixel."""

    def __init__(self, prediction):
        self.prediction_type, self.alphas_cumprod, self.prediction = "epsilon", ALPHAS, prediction

    def __call__(self, noisy, timesteps, cond):
        return self.prediction


def test_pixels_outside_the_mask_get_no_gradient_and_do_not_count():
    # Given a prediction, a target and a mask over the left half of the latent grid
    latents, noise, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([300, 600])
    prediction = torch.randn(2, 4, 8, 8, requires_grad=True)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1
    cond = Conditioning(torch.zeros(2, 77, 8))
    # When the masked loss is taken and differentiated
    loss = denoising_loss(Guess(prediction), latents, cond, t, noise, pixel_weights=mask)
    loss.backward()
    # Then the right half gets no gradient, the left half does, and the loss is the left half's mean error
    assert torch.count_nonzero(prediction.grad[..., 4:]) == 0
    assert torch.count_nonzero(prediction.grad[..., :4]) == prediction.grad[..., :4].numel()
    expected = (prediction.detach() - noise)[..., :4].pow(2).mean()
    assert torch.allclose(loss, expected)
    # And a mask of ones is the plain loss
    plain = denoising_loss(Guess(prediction), latents, cond, t, noise)
    assert torch.allclose(denoising_loss(Guess(prediction), latents, cond, t, noise,
                                         pixel_weights=torch.ones(2, 1, 8, 8)), plain)
