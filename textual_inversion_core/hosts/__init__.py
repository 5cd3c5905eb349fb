"""Hosts: a model library's frozen Stable Diffusion seen through the trainer's interfaces (``interfaces.py``).

``diffusers/`` ships with the core; ComfyUI's host lives with the nodes (``nodes/comfy_host/``), since it needs
ComfyUI.
"""
