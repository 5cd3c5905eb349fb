"""The ComfyUI nodes: a thin layer over ``textual_inversion_core`` and ComfyUI's own model management."""
