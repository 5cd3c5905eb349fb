"""The demo: small random-weight models, pictures of a made-up concept, and a complete training run on them.

None of it is needed to train a real word; the demo, the tests and the benchmarks build on it because no real
Stable Diffusion weights can be downloaded where they run.
"""
