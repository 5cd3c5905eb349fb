"""ComfyUI's loaded MODEL, CLIP and VAE as the frozen model the trainer optimises a pseudo-word against.

Nothing is copied or reloaded: prompts go through the CLIP's own text encoders (with the word's vectors inserted
as ComfyUI inserts ``embedding:`` files), the UNet is called as ComfyUI's sampler calls it, and the VAE encodes
the pictures; ``comfy.model_management`` moves each part to its device as for any other node, so ``--lowvram``,
``--novram`` and ``--cpu`` apply.

- ``frozen_model``    the trainer's view of MODEL/CLIP/VAE, with the checks that they belong together
- ``session``         what lets gradients through ComfyUI's models for the duration of a training
- ``prompt_encoder``  the CLIP's text encoders with the word's vectors injected
- ``denoiser``        the MODEL's diffusion network in DDPM terms
- ``half_weights``    half-precision weight copies for a float32 UNet on a CPU that computes half natively
- ``latent_encoder``  the VAE, for the concept pictures
- ``pseudo_words``    a CLIP whose tokenizer resolves a bare pseudo-word in any prompt
- ``preview``         a picture of the word, sampled as a KSampler would
- ``images``          ComfyUI's IMAGE batches to and from the trainer's pictures
- ``embedding_folders`` ComfyUI's embeddings folders: listing, finding, and saving without overwriting
- ``inspection``      the CLIP's vocabularies, and where a prompt puts the word, for inspecting an embedding
"""

from .frozen_model import frozen_model
from .session import training_session

__all__ = ["frozen_model", "training_session"]
