"""The concept world: procedural pictures with captions, a small Stable-Diffusion-1 model trained on them, and a
judge that reads the pictures' attributes. Some shapes, one patterned object and one style are drawn in the world
but never named in its captions, so a learned word can be judged on whether it makes the model draw them."""
