"""Measure the local device's roofline and check rooflm's predictions against a clock (`rooflm measure`,
`rooflm validate`).

Modules: timing (warm-up, repeats, sync), machine (what was measured), bench and kernels (microbenchmarks),
decoder and hf (eager decoders run with PyTorch / transformers), calibrate (fit the roofs and efficiency
factors), hwfile (write the catalog-schema hardware file), runner and validate (run the test models, compare),
render (tables). PyTorch is imported inside functions only: ``import rooflm`` never needs it.
"""
