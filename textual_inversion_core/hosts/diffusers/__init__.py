"""A local diffusers model folder (SD1, SD2, SDXL) as the frozen model the trainer optimises a word against.

- ``loading``         the folder: its family, its hash, the pipeline loaded offline in the compute dtype, and
                      its text encoders' vocabularies alone, for inspecting an embedding
- ``weights``         the UNet read tensor by tensor from its safetensors files, straight into that dtype
- ``model``           the loaded pipeline, frozen on its device, and the trainer's view of it
- ``text_encoders``   the prompt encoder: the word's vectors injected into the text encoders' forward pass
- ``denoiser``        the UNet in DDPM terms
- ``latent_encoder``  the VAE's encoder, for the concept pictures
- ``preview``         an image for a prompt with the word in it, through the pipeline's own sampler
"""

from .loading import detect_family, load_diffusers_model, load_vocabularies, model_hash
from .model import DiffusersModel

__all__ = ["DiffusersModel", "detect_family", "load_diffusers_model", "load_vocabularies", "model_hash"]
