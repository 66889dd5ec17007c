"""The tiny trained test model's builder: a development tool (tests, benchmarks, `scripts/make_tiny_model.py`), not
part of the installed package. `build` trains and writes the model, `corpus` holds its chat template and synthetic
transcripts, `fim` its fill-in-the-middle examples, `training` its data-parallel training loop. Nothing is imported
here, so `corpus` and `fim` load without MLX."""
