"""The code of HandWrittenDigitsRecognition.ipynb, importable by the tests, the benchmarks and the scripts
(docs/package.md).

- `recipe`: the notebook's teaching code, written by `make export` from its cells marked `#| export` (never edited
  by hand; a test fails while it differs from the notebook).
- The plumbing, written by hand: `checks` (what the set-up cell checks), `mnist_data` (MNIST fetched and verified),
  `files` (whole files only, clear errors), `checkpoints` (the tools' hardened save and load), `data` (the
  notebook's data and training for the scripts), `weights` (the static page's network), `cli` (the bench scripts'
  command lines), `samples` (a photo shared by a test and a benchmark), `export` (the exporter itself).
"""
