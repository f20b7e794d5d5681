"""The code of HandWrittenDigitsRecognition.ipynb, importable by the tests, the benchmarks and the scripts
(docs/package.md).

- `notebook`: the notebook's teaching code, copied from its cells marked `#| export` by `make export` (never
  edited by hand; a test fails while it differs from the notebook).
- Written by hand: `checks` (what the set-up cell checks), `mnist_data` (MNIST fetched and verified), `files`
  (whole files only), `checkpoints` (the tools' hardened save and load), `images` (image files read safely),
  `weights` (the static page's network), `export` (the exporter itself).
"""
