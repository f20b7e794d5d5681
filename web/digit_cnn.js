/* DigitCNN's forward pass in plain JavaScript (Part I, section 5), from the weights file of scripts/export_weights.py
(DIGIT_CNN), batch norm folded into each convolution: a block is a 3 x 3 convolution with a bias, ReLU and 2 x 2
max-pooling. A tensor is {channels, height, width, data}, data a Float64Array in PyTorch's order. */
var DigitCNN = (function () {
  "use strict";

  // The weights file's numbers: float32, little-endian, base64, layer after layer (weight, then bias).
  function read_layers(exported) {
    const bytes = Uint8Array.from(atob(exported.weights), character => character.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const numbers = Float64Array.from({length: bytes.length >> 2}, (_, i) => view.getFloat32(4 * i, true));
    let offset = 0;
    function take(shape) {  // the next numbers, as many as the shape holds
      const start = offset;
      offset += shape.reduce((a, b) => a * b, 1);
      return numbers.subarray(start, offset);
    }
    const layers = {};
    for (const layer of exported.layers) {
      layers[layer.name] = {shape: layer.weight, weight: take(layer.weight), bias: take(layer.bias)};
    }
    if (4 * offset !== bytes.length) throw new Error("the weights file is damaged: its numbers do not fit its layers");
    return layers;
  }

  const LAYERS = read_layers(DIGIT_CNN);

  // 3 x 3 convolution (padding 1) with the folded bias, ReLU, then 2 x 2 max-pooling: one of DigitCNN's blocks.
  function conv_block(input, layer) {
    const [out_channels, in_channels] = layer.shape, {height, width} = input;
    const padded_width = width + 2, plane = (height + 2) * padded_width;
    const padded = new Float64Array(in_channels * plane);  // padding=1: a border of zeros around every channel
    for (let c = 0; c < in_channels; c++) {
      for (let y = 0; y < height; y++) {
        padded.set(input.data.subarray((c * height + y) * width, (c * height + y + 1) * width),
                   c * plane + (y + 1) * padded_width + 1);
      }
    }
    const convolved = new Float64Array(out_channels * height * width);
    for (let o = 0; o < out_channels; o++) {
      const out = convolved.subarray(o * height * width, (o + 1) * height * width).fill(layer.bias[o]);
      for (let c = 0; c < in_channels; c++) {
        for (let dy = 0; dy < 3; dy++) {
          for (let dx = 0; dx < 3; dx++) {  // one weight at a time, over the whole image
            const weight = layer.weight[((o * in_channels + c) * 3 + dy) * 3 + dx];
            for (let y = 0; y < height; y++) {
              const from = c * plane + (y + dy) * padded_width + dx;
              for (let x = 0; x < width; x++) out[y * width + x] += weight * padded[from + x];
            }
          }
        }
      }
      for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i], 0);  // ReLU
    }
    const pooled = {channels: out_channels, height: height >> 1, width: width >> 1,  // 7 -> 3: the last row drops
                    data: new Float64Array(out_channels * (height >> 1) * (width >> 1))};
    for (let o = 0; o < out_channels; o++) {
      const at = (row, column) => convolved[(o * height + row) * width + column];
      for (let y = 0; y < pooled.height; y++) {
        for (let x = 0; x < pooled.width; x++) {
          pooled.data[(o * pooled.height + y) * pooled.width + x] = Math.max(
            at(2 * y, 2 * x), at(2 * y, 2 * x + 1), at(2 * y + 1, 2 * x), at(2 * y + 1, 2 * x + 1));
        }
      }
    }
    return pooled;
  }

  // A fully connected layer: every output is its bias plus the weighted sum of all the inputs.
  function linear(input, layer) {
    const [out_features, in_features] = layer.shape;
    const output = new Float64Array(out_features);
    for (let o = 0; o < out_features; o++) {
      let sum = layer.bias[o];
      for (let i = 0; i < in_features; i++) sum += layer.weight[o * in_features + i] * input[i];
      output[o] = sum;
    }
    return output;
  }

  const BLOCKS = ["conv1", "conv2", "conv3"];

  // For a 28 x 28 field of grey levels from 0 to 1, normalised as the notebook's predict_digit does: the ten
  // probabilities, and each block's output on the way (its feature maps, as Part II (C)'s forward hooks record them).
  function forward(field) {
    const data = Float64Array.from(field, value => (value - DIGIT_CNN.mean) / DIGIT_CNN.std);
    const maps = [];
    let features = {channels: 1, height: 28, width: 28, data: data};
    for (const name of BLOCKS) maps.push(features = conv_block(features, LAYERS[name]));
    const hidden = linear(features.data, LAYERS.fc1).map(value => Math.max(value, 0));  // ReLU; no dropout in eval
    const logits = linear(hidden, LAYERS.fc2);
    const largest = Math.max(...logits);  // softmax, shifted by the largest first so that exp never overflows
    const exps = logits.map(logit => Math.exp(logit - largest)), total = exps.reduce((a, b) => a + b, 0);
    return {probabilities: exps.map(value => value / total), maps: maps};
  }

  // The digit, the ten probabilities, the field read and the feature maps, for a canvas's RGBA pixels; throws
  // mnist_style's refusals.
  function predict_digit(pixels) {
    const field = MnistStyle.mnist_style(pixels), {probabilities, maps} = forward(field.data);
    return {digit: probabilities.indexOf(Math.max(...probabilities)), probabilities, field, maps};
  }

  // Each block's name, number of feature maps (from the weights) and their side (28 -> 14 -> 7 -> 3, as each
  // conv_block halves it), to lay out the page's figures.
  const block_shapes = BLOCKS.map((name, block) => ({name, channels: LAYERS[name].shape[0], side: 28 >> (block + 1)}));

  return {forward, predict_digit, block_shapes};
})();
