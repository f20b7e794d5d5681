"""The code of HandWrittenDigitsRecognition.ipynb, importable by the tests, the benchmarks and the scripts.

- `recipe`: the notebook's teaching code, written by `make export` from its cells marked `#| export` (never edited
  by hand; a test fails while it differs from the notebook).
- The plumbing, written by hand: `checks` (what the set-up cell checks), `mnist_data` (MNIST fetched and verified),
  `files` (whole files only, clear errors), `checkpoints` (the tools' hardened save and load), `data` (the
  notebook's data and training for the scripts), `export` (the exporter itself).
"""
