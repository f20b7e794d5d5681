/* mnist_style in the browser, for the page's drawings: the notebook's functions of Part II (E) that a drawing on the
canvas reaches, with their names, arguments and checks; the constants come from the notebook (DIGIT_CNN.constants).
A photo's paths (downsized, the paper-contrast check) are not ported: a drawing is at most PHOTO_SIZE pixels and its
paper is even. An image is {height, width, data}, data a Float32Array of grey levels, row after row; f32 rounds a
result to float32 where NumPy or PyTorch compute in float32, so that every threshold decides as in the notebook.
*/
var MnistStyle = (function () {
  "use strict";

  const f32 = Math.fround;  // round to the nearest float32, as each NumPy or PyTorch float32 operation does
  const NOTEBOOK = DIGIT_CNN.constants;  // from the notebook, by scripts/export_weights.py
  const DEFAULTS = NOTEBOOK.defaults;  // the default arguments of the notebook's functions

  function zeros(height, width) {
    return {height: height, width: width, data: new Float32Array(height * width)};
  }

  // A new image, each pixel changed by `change` (a Float32Array stores every result rounded to float32).
  function each_pixel(image, change) {
    const changed = zeros(image.height, image.width);
    for (let i = 0; i < image.data.length; i++) changed.data[i] = change(image.data[i]);
    return changed;
  }

  // A canvas's RGBA bytes (getImageData) -> grey levels from 0 (black) to 1 (white), as to_grayscale does.
  function to_grayscale(pixels) {
    const grey = zeros(pixels.height, pixels.width), bytes = pixels.bytes, [red, green, blue] = NOTEBOOK.LUMA;
    for (let i = 0; i < grey.data.length; i++) {  // one pixel's red, green, blue and opacity: bytes 4i to 4i + 3
      const alpha = bytes[4 * i + 3] / 255;
      grey.data[i] = (bytes[4 * i] / 255 * red + bytes[4 * i + 1] / 255 * green + bytes[4 * i + 2] / 255 * blue) *
        alpha + 1 - alpha;  // alpha over white paper
    }
    return grey;
  }

  // Grey levels -> ink from 0 to 1, as white_on_black: paper is the border's median; light paper is inverted.
  function white_on_black(pixels) {
    const {height, width, data} = pixels, index = [];
    for (let c = 0; c < width; c++) index.push(c, (height - 1) * width + c);  // first and last rows
    for (let r = 0; r < height; r++) index.push(r * width, r * width + width - 1);  // first and last columns
    const border = Float32Array.from(index, i => data[i]).sort(), middle = border.length >> 1;
    let paper = border.length % 2 ? border[middle] : f32(border[middle - 1] + border[middle]) / 2;
    const lowest = data.reduce((a, b) => Math.min(a, b)), highest = data.reduce((a, b) => Math.max(a, b));
    const inverted = f32(paper - lowest) > f32(highest - paper);  // dark ink on lighter paper
    paper = inverted ? f32(1 - paper) : paper;
    const ink = each_pixel(pixels, inverted ? value => f32(1 - value) - paper : value => value - paper);
    const strongest = ink.data.reduce((a, b) => Math.max(a, b));
    if (strongest < f32(0.15)) {
      throw new Error("no ink found: the image is (almost) all one colour; expected a digit darker or " +
                      "lighter than its background");
    }
    return each_pixel(ink, value => Math.min(Math.max(value / strongest, 0), 1));
  }

  // Keep pixels in strokes (a 3 x 3 mean, F.avg_pool2d without padding, above threshold) or very bright: ink, mask.
  function strokes_only(ink, threshold = DEFAULTS.strokes_only.threshold) {
    const {height, width} = ink, cleaned = zeros(height, width), strokes = new Uint8Array(height * width);
    for (let row = 0; row < height; row++) {
      for (let column = 0; column < width; column++) {
        const top = Math.max(row - 1, 0), bottom = Math.min(row + 2, height);
        const left = Math.max(column - 1, 0), right = Math.min(column + 2, width);
        let sum = 0;
        for (let r = top; r < bottom; r++) {
          for (let c = left; c < right; c++) sum = f32(sum + ink.data[r * width + c]);
        }
        const smoothed = f32(sum / ((bottom - top) * (right - left)));
        const i = row * width + column;
        strokes[i] = smoothed > f32(threshold) ? 1 : 0;
        cleaned.data[i] = strokes[i] || ink.data[i] > f32(2 * threshold) ? ink.data[i] : 0;
      }
    }
    if (!strokes.includes(1)) {
      throw new Error("no ink found: only isolated specks, no strokes; expected a digit drawn with lines");
    }
    return {ink: cleaned, strokes: strokes};
  }

  // The smallest rectangle of `ink` that holds every pixel where `mask` is true.
  function crop_to(ink, mask) {
    let top = ink.height, bottom = -1, left = ink.width, right = -1;
    mask.forEach((on, i) => {
      const row = Math.floor(i / ink.width), column = i % ink.width;
      if (on) [top, bottom, left, right] = [Math.min(top, row), row, Math.min(left, column), Math.max(right, column)];
    });
    const cropped = zeros(bottom - top + 1, right - left + 1);
    for (let row = 0; row < cropped.height; row++) {
      const start = (top + row) * ink.width + left;
      cropped.data.set(ink.data.subarray(start, start + cropped.width), row * cropped.width);
    }
    return cropped;
  }

  /* Average stroke width of an image's ink (its pixels above 0.5): twice the ink area over the ink pixels with paper
     (or the edge) among their 8 neighbours. */
  function stroke_width(ink) {
    const {height, width} = ink, mask = new Uint8Array(height * width);
    for (let i = 0; i < mask.length; i++) mask[i] = ink.data[i] > 0.5 ? 1 : 0;
    let area = 0, inner = 0;
    for (let row = 0; row < height; row++) {
      for (let column = 0; column < width; column++) {
        if (!mask[row * width + column]) continue;
        area += 1;
        let all_ink = row > 0 && row < height - 1 && column > 0 && column < width - 1;
        for (let r = row - 1; all_ink && r <= row + 1; r++) {
          for (let c = column - 1; all_ink && c <= column + 1; c++) all_ink = mask[r * width + c] === 1;
        }
        if (all_ink) inner += 1;
      }
    }
    return f32(2 * area / Math.max(area - inner, 1));
  }

  // The nearest whole pixel, halves rounded up, as the notebook's nearest_pixel (not Python's round()).
  function nearest_pixel(position) {
    return Math.floor(position + 0.5 + 1e-3);
  }

  /* The maximum over each stretch of `size` pixels along the rows (horizontal) or the columns, the image padded with
     size - 1 zeros (F.pad, then F.max_pool2d): it grows by size - 1 pixels. */
  function max_along(image, size, horizontal) {
    const grow = size - 1, length = horizontal ? image.width : image.height;
    const out = horizontal ? zeros(image.height, image.width + grow) : zeros(image.height + grow, image.width);
    for (let row = 0; row < out.height; row++) {
      for (let column = 0; column < out.width; column++) {
        const at = horizontal ? column : row;
        let highest = 0;  // the padding is 0, and ink is never below it
        for (let k = Math.max(at - grow, 0); k <= Math.min(at, length - 1); k++) {
          highest = Math.max(highest, image.data[horizontal ? row * image.width + k : k * image.width + column]);
        }
        out.data[row * out.width + column] = highest;
      }
    }
    return out;
  }

  // Thicken strokes narrower than `least` times MNIST's, once the image is scaled to the box: a size x size maximum.
  function thickened(ink, box = DEFAULTS.thickened.box, least = DEFAULTS.thickened.least) {
    const target = NOTEBOOK.MNIST_STROKE * Math.max(ink.height, ink.width) / box;  // MNIST's width in these pixels
    const width = stroke_width(ink);
    if (width >= least * target) return ink;
    const size = 2 * nearest_pixel((target - width) / 2) + 1;
    return max_along(max_along(ink, size, true), size, false);
  }

  /* The weights of PyTorch's antialiased bilinear resize (F.interpolate(..., mode="bilinear", antialias=True,
     align_corners=False)) for one axis, in float32 as PyTorch computes them: each output pixel averages the input
     pixels under a triangle as wide as one output pixel (at least one input pixel), centred on it. */
  function resize_weights(input_size, output_size) {
    const scale = f32(input_size / output_size);
    const support = Math.max(scale, 1), invscale = scale >= 1 ? f32(1 / scale) : 1;
    const max_size = Math.ceil(support) * 2 + 1;
    const weights = [];
    for (let i = 0; i < output_size; i++) {
      const centre = f32(scale * (i + 0.5));
      const first = Math.max(Math.trunc(f32(centre - support) + 0.5), 0);
      const count = Math.min(Math.max(Math.min(Math.trunc(f32(centre + support) + 0.5), input_size) - first, 0),
                             max_size);
      const w = new Float32Array(count);
      let total = 0;
      for (let j = 0; j < count; j++) {
        const x = Math.abs(f32((f32(j + first - centre) + 0.5) * invscale));  // float32, as PyTorch's
        w[j] = x < 1 ? 1 - x : 0;
        total = f32(total + w[j]);
      }
      if (total !== 0) for (let j = 0; j < count; j++) w[j] = w[j] / total;
      weights.push({first: first, w: w});
    }
    return weights;
  }

  // One axis of the resize: along each row (horizontal) or each column; the sums in float32, as PyTorch's.
  function resized_along(image, size, horizontal) {
    const weights = resize_weights(horizontal ? image.width : image.height, size);
    const out = horizontal ? zeros(image.height, size) : zeros(size, image.width);
    const step = horizontal ? 1 : image.width;
    for (let row = 0; row < out.height; row++) {
      for (let column = 0; column < out.width; column++) {
        const {first, w} = weights[horizontal ? column : row];
        let start = horizontal ? row * image.width + first : first * image.width + column;
        let sum = f32(image.data[start] * w[0]);
        for (let j = 1; j < w.length; j++) sum = f32(sum + f32(image.data[start + j * step] * w[j]));
        out.data[row * out.width + column] = sum;
      }
    }
    return out;
  }

  // Scale the longer side to `box` pixels; paste with the centre of mass at pixel (centre, centre).
  function centred_in_field(ink, box = DEFAULTS.centred_in_field.box, field_size = DEFAULTS.centred_in_field.field_size,
                            centre = DEFAULTS.centred_in_field.centre) {
    const scale = box / Math.max(ink.height, ink.width);
    const [height, width] = [ink.height, ink.width].map(side => Math.max(1, nearest_pixel(side * scale)));
    const across = width !== ink.width ? resized_along(ink, width, true) : ink;  // F.interpolate: the width first
    const resized = height !== ink.height ? resized_along(across, height, false) : across;
    const digit = each_pixel(resized, value => Math.min(Math.max(value, 0), 1));  // .clamp(0, 1)
    let mass = 0, rows = 0, columns = 0;  // the centre of mass, its sums in float64 as the notebook's
    for (let row = 0; row < height; row++) {
      for (let column = 0; column < width; column++) {
        const value = digit.data[row * width + column];
        mass += value;
        rows += row * value;
        columns += column * value;
      }
    }
    const centre_row = rows / mass, centre_column = columns / mass;
    const top = Math.min(Math.max(nearest_pixel(centre - centre_row), 0), field_size - height);
    const left = Math.min(Math.max(nearest_pixel(centre - centre_column), 0), field_size - width);
    const field = zeros(field_size, field_size);
    for (let row = 0; row < height; row++) {
      field.data.set(digit.data.subarray(row * width, (row + 1) * width), (top + row) * field_size + left);
    }
    return field;
  }

  // Any digit image (as bytes: see to_grayscale) -> 28 x 28 field, white ink on black, scaled and centred as MNIST.
  function mnist_style(pixels, ink_threshold = DEFAULTS.mnist_style.ink_threshold,
                       thicken = DEFAULTS.mnist_style.thicken) {
    const cleaned = strokes_only(white_on_black(to_grayscale(pixels)), ink_threshold);
    const ink = crop_to(cleaned.ink, cleaned.strokes);
    if (Math.max(ink.height, ink.width) < NOTEBOOK.MIN_DIGIT) {
      throw new Error(`the digit is only ${ink.height} x ${ink.width} pixels: too small to read; expected at ` +
                      `least ${NOTEBOOK.MIN_DIGIT} pixels for its height or width`);
    }
    if (Math.max(ink.height, ink.width) < NOTEBOOK.DOT * stroke_width(ink)) {
      throw new Error(`a dot, not a digit: the ink (${ink.height} x ${ink.width} pixels) is hardly longer than ` +
                      "its stroke is wide; draw the whole digit, large");
    }
    return centred_in_field(thicken ? thickened(ink) : ink);
  }

  return {mnist_style};
})();
