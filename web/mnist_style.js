/* mnist_style in the browser: the notebook's treatment of a digit image (Part II (E)), step for step.

Each function below has the name, the arguments and the checks of the notebook's function of the same name, so that
you can read them side by side: to_grayscale, downsized, ink_above_paper, white_on_black, strokes_only, crop_to,
stroke_width, thickened, centre_of_mass, nearest_pixel, centred_in_field and mnist_style. The constants
(PAPER_CONTRAST, MIN_DIGIT, DOT, PHOTO_SIZE, MNIST_STROKE, LUMA and every default argument) are not copied here: they
come from the notebook, through the file that scripts/export_weights.py writes (DIGIT_CNN.constants).

An image is {height, width, data}: data is a Float32Array of height * width grey levels, row after row, as NumPy
holds a float32 array. NumPy and PyTorch compute in float32; JavaScript computes in float64. Where the notebook's
result depends on it (a pixel just above or below a threshold), f32 rounds a result to float32 as they do, so the
page's 28 x 28 field equals the notebook's, and every threshold decides the same way.
*/
var MnistStyle = (function () {
  "use strict";

  const f32 = Math.fround;  // round to the nearest float32, as each NumPy or PyTorch float32 operation does
  const NOTEBOOK = DIGIT_CNN.constants;  // from the notebook, by scripts/export_weights.py
  const DEFAULTS = NOTEBOOK.defaults;  // the default arguments of the notebook's functions

  function zeros(height, width) {
    return {height: height, width: width, data: new Float32Array(height * width)};
  }

  function max_of(image) {
    let highest = -Infinity;
    for (let i = 0; i < image.data.length; i++) highest = Math.max(highest, image.data[i]);
    return highest;
  }

  // A new image, each pixel changed by `change` (a Float32Array stores every result rounded to float32).
  function each_pixel(image, change) {
    const changed = zeros(image.height, image.width);
    for (let i = 0; i < image.data.length; i++) changed.data[i] = change(image.data[i]);
    return changed;
  }

  /* A canvas's or image file's pixels as bytes -> grey levels from 0 (black) to 1 (white), as to_grayscale does for
     uint8 arrays: `pixels` is {height, width, channels, bytes}, with 1 channel (grey) or 4 (RGBA, as a canvas's
     getImageData gives them); colours are weighted by LUMA, and a transparent pixel shows white paper. */
  function to_grayscale(pixels) {
    const grey = zeros(pixels.height, pixels.width);
    const bytes = pixels.bytes;
    const [red, green, blue] = NOTEBOOK.LUMA.map(f32);
    for (let i = 0; i < grey.data.length; i++) {
      if (pixels.channels === 1) {
        grey.data[i] = bytes[i] / 255;  // stored in a Float32Array: rounded to float32 as NumPy's division is
        continue;
      }
      if (pixels.channels !== 4) throw new Error(`expected 1 or 4 channels, not ${pixels.channels}`);
      const r = f32(bytes[4 * i] / 255), g = f32(bytes[4 * i + 1] / 255), b = f32(bytes[4 * i + 2] / 255);
      const alpha = f32(bytes[4 * i + 3] / 255);
      const luma = f32(f32(f32(red * r) + f32(green * g)) + f32(blue * b));
      grey.data[i] = f32(luma * alpha) + f32(1 - alpha);  // alpha over white paper
    }
    return grey;
  }

  /* Shrink an image whose longer side exceeds `size` by a whole factor, each new pixel the average of its block
     (F.avg_pool2d with ceil_mode: the blocks at the right and bottom edges may be smaller). */
  function downsized(pixels, size = DEFAULTS.downsized.size) {
    const factor = Math.ceil(Math.max(pixels.height, pixels.width) / size);
    if (factor === 1) return pixels;
    const small = zeros(Math.ceil(pixels.height / factor), Math.ceil(pixels.width / factor));
    for (let row = 0; row < small.height; row++) {
      for (let column = 0; column < small.width; column++) {
        const bottom = Math.min((row + 1) * factor, pixels.height), right = Math.min((column + 1) * factor, pixels.width);
        let sum = 0;
        for (let r = row * factor; r < bottom; r++) {
          for (let c = column * factor; c < right; c++) sum = f32(sum + pixels.data[r * pixels.width + c]);
        }
        small.data[row * small.width + column] = sum / ((bottom - row * factor) * (right - column * factor));
      }
    }
    return small;
  }

  // NumPy's median of float32 values: the middle one, or the float32 mean of the two middle ones.
  function median(sorted) {
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : f32(sorted[middle - 1] + sorted[middle]) / 2;
  }

  // NumPy's percentile (its default, linear interpolation between the two nearest values) of float32 values.
  function percentile(sorted, percent) {
    const index = (sorted.length - 1) * (percent / 100);
    const below = Math.floor(index), gamma = index - below;
    const low = sorted[below], high = sorted[Math.min(below + 1, sorted.length - 1)];
    const difference = f32(high - low);
    return gamma >= 0.5 ? f32(high - f32(difference * f32(1 - gamma))) : f32(low + f32(difference * f32(gamma)));
  }

  /* Grey levels -> the ink as its distance from the paper's grey, and the paper's own unevenness. The paper's grey
     is the median of the image's border; the ink is on the side where the image strays furthest from it (dark ink is
     inverted to white on black); the unevenness is how far the border's 10th percentile strays to the other side. */
  function ink_above_paper(pixels) {
    const {height, width, data} = pixels;
    const border_index = [];
    for (let c = 0; c < width; c++) border_index.push(c, (height - 1) * width + c);  // first and last rows
    for (let r = 0; r < height; r++) border_index.push(r * width, r * width + width - 1);  // first and last columns
    let border = Float32Array.from(border_index, i => data[i]).sort();
    let paper = median(border);
    let lowest = Infinity, highest = -Infinity;
    for (let i = 0; i < data.length; i++) {
      lowest = Math.min(lowest, data[i]);
      highest = Math.max(highest, data[i]);
    }
    let inverted = false;
    if (f32(paper - lowest) > f32(highest - paper)) {  // dark ink on lighter paper: make it white on black
      inverted = true;
      border = border.map(value => 1 - value).sort();
      paper = f32(1 - paper);
    }
    const ink = each_pixel(pixels, inverted ? value => f32(1 - value) - paper : value => value - paper);
    return {ink: ink, unevenness: f32(paper - percentile(border, 10))};
  }

  /* Grey levels -> ink from 0 (paper) to 1 (strongest ink), inverting light paper; refuses an image with no ink or
     none that stands out from the paper's unevenness. */
  function white_on_black(pixels) {
    const {ink, unevenness} = ink_above_paper(pixels);
    const strongest = max_of(ink);
    if (strongest < f32(0.15)) {
      throw new Error("no ink found: the image is (almost) all one colour; expected a digit darker or " +
                      "lighter than its background");
    }
    if (strongest < f32(f32(NOTEBOOK.PAPER_CONTRAST) * unevenness)) {
      throw new Error(`no digit found: nothing stands out from the paper more than ${(strongest / unevenness).toFixed(1)} ` +
                      "times the paper's own unevenness (light, noise); expected a digit clearly darker or " +
                      "lighter than its background");
    }
    return each_pixel(ink, value => Math.min(Math.max(value / strongest, 0), 1));
  }

  /* Black out faint noise: keep pixels in strokes (bright on average with their 8 neighbours, F.avg_pool2d over 3 x 3
     counting only the pixels inside the image) or very bright ones. Returns the cleaned ink and the strokes' mask. */
  function strokes_only(ink, threshold = DEFAULTS.strokes_only.threshold) {
    const {height, width} = ink;
    const strokes = new Uint8Array(height * width);
    const cleaned = zeros(height, width);
    let any = false;
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
        any = any || strokes[i] === 1;
        cleaned.data[i] = strokes[i] || ink.data[i] > f32(2 * threshold) ? ink.data[i] : 0;
      }
    }
    if (!any) throw new Error("no ink found: only isolated specks, no strokes; expected a digit drawn with lines");
    return {ink: cleaned, strokes: strokes};
  }

  // The smallest rectangle of `ink` that holds every pixel where `mask` is true.
  function crop_to(ink, mask) {
    let top = Infinity, bottom = -1, left = Infinity, right = -1;
    for (let row = 0; row < ink.height; row++) {
      for (let column = 0; column < ink.width; column++) {
        if (!mask[row * ink.width + column]) continue;
        top = Math.min(top, row);
        bottom = Math.max(bottom, row);
        left = Math.min(left, column);
        right = Math.max(right, column);
      }
    }
    const cropped = zeros(bottom - top + 1, right - left + 1);
    for (let row = 0; row < cropped.height; row++) {
      for (let column = 0; column < cropped.width; column++) {
        cropped.data[row * cropped.width + column] = ink.data[(top + row) * ink.width + left + column];
      }
    }
    return cropped;
  }

  /* Average stroke width of a binary image (mask: 1 for ink): twice the ink area over the number of edge pixels, the
     ink pixels that have a pixel of paper (or the outside of the image) among their 8 neighbours. */
  function stroke_width(mask, height, width) {
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

  /* The nearest whole pixel, halves rounded up. The same rule as the notebook's nearest_pixel, which is not Python's
     round(): that one rounds halves to the even number, so a 33 x 40 crop scaled to 20 pixels would be 16 rows high
     in Python and 17 here. A value within a thousandth of a half counts as the half, so that the last bits of a sum,
     which differ between PyTorch and the browser, never decide where a symmetric digit goes. */
  function nearest_pixel(position) {
    return Math.floor(position + 0.5 + 1e-3);
  }

  /* Thicken strokes narrower than `least` times MNIST's, once the image is scaled to the box: a maximum filter,
     size x size, over each row's stretch and then each column's (F.max_pool2d), grows every stroke by size - 1. */
  function thickened(ink, box = DEFAULTS.thickened.box, least = DEFAULTS.thickened.least) {
    const target = NOTEBOOK.MNIST_STROKE * Math.max(ink.height, ink.width) / box;  // MNIST's width in these pixels
    const width = stroke_width(Uint8Array.from(ink.data, value => (value > 0.5 ? 1 : 0)), ink.height, ink.width);
    if (width >= least * target) return ink;
    const size = 2 * nearest_pixel((target - width) / 2) + 1;
    const grow = size - 1;  // the image grows by size - 1 pixels in each direction (F.pad, then the filter)
    const rows = zeros(ink.height, ink.width + grow);  // the maximum over each row's stretch of `size` pixels
    for (let row = 0; row < ink.height; row++) {
      for (let column = 0; column < rows.width; column++) {
        let highest = 0;  // the padding is 0, and ink is never below it
        for (let c = Math.max(column - grow, 0); c <= Math.min(column, ink.width - 1); c++) {
          highest = Math.max(highest, ink.data[row * ink.width + c]);
        }
        rows.data[row * rows.width + column] = highest;
      }
    }
    const grown = zeros(ink.height + grow, rows.width);  // then over each column's stretch
    for (let row = 0; row < grown.height; row++) {
      for (let column = 0; column < grown.width; column++) {
        let highest = 0;
        for (let r = Math.max(row - grow, 0); r <= Math.min(row, ink.height - 1); r++) {
          highest = Math.max(highest, rows.data[r * rows.width + column]);
        }
        grown.data[row * grown.width + column] = highest;
      }
    }
    return grown;
  }

  /* The weights of PyTorch's antialiased bilinear resize (F.interpolate(..., mode="bilinear", antialias=True,
     align_corners=False)) for one axis, in float32 as PyTorch computes them: each output pixel averages the input
     pixels under a triangle as wide as one output pixel (at least one input pixel), centred on it. */
  function resize_weights(input_size, output_size) {
    const scale = f32(input_size / output_size);
    const support = scale >= 1 ? scale : 1;
    const invscale = scale >= 1 ? f32(1 / scale) : 1;
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

  // F.interpolate(..., antialias=True): first along the rows (the width), then along the columns (the height).
  function resized(image, height, width) {
    let out = image;
    if (width !== image.width) out = resized_along(out, width, true);
    if (height !== image.height) out = resized_along(out, height, false);
    return out;
  }

  // (row, column) of the centre of mass of an image, in pixels counted from 0 (the sums in float64, as the notebook's).
  function centre_of_mass(image) {
    let mass = 0, rows = 0, columns = 0;
    for (let row = 0; row < image.height; row++) {
      for (let column = 0; column < image.width; column++) {
        const value = image.data[row * image.width + column];
        mass += value;
        rows += row * value;
        columns += column * value;
      }
    }
    return [rows / mass, columns / mass];
  }

  // Scale the longer side to `box` pixels; paste with the centre of mass at pixel (centre, centre).
  function centred_in_field(ink, box = DEFAULTS.centred_in_field.box,
                            field_size = DEFAULTS.centred_in_field.field_size,
                            centre = DEFAULTS.centred_in_field.centre) {
    const scale = box / Math.max(ink.height, ink.width);
    const height = Math.max(1, nearest_pixel(ink.height * scale)), width = Math.max(1, nearest_pixel(ink.width * scale));
    const digit = each_pixel(resized(ink, height, width), value => Math.min(Math.max(value, 0), 1));  // .clamp(0, 1)
    const [centre_row, centre_column] = centre_of_mass(digit);
    const top = Math.min(Math.max(nearest_pixel(centre - centre_row), 0), field_size - height);
    const left = Math.min(Math.max(nearest_pixel(centre - centre_column), 0), field_size - width);
    const field = zeros(field_size, field_size);
    for (let row = 0; row < height; row++) {
      for (let column = 0; column < width; column++) {
        field.data[(top + row) * field_size + left + column] = digit.data[row * width + column];
      }
    }
    return field;
  }

  // Any digit image (as bytes: see to_grayscale) -> 28 x 28 field, white ink on black, scaled and centred as MNIST.
  function mnist_style(pixels, ink_threshold = DEFAULTS.mnist_style.ink_threshold,
                       thicken = DEFAULTS.mnist_style.thicken) {
    const grey = downsized(to_grayscale(pixels));
    const cleaned = strokes_only(white_on_black(grey), ink_threshold);
    const ink = crop_to(cleaned.ink, cleaned.strokes);
    if (Math.max(ink.height, ink.width) < NOTEBOOK.MIN_DIGIT) {
      throw new Error(`the digit is only ${ink.height} x ${ink.width} pixels: too small to read; expected at ` +
                      `least ${NOTEBOOK.MIN_DIGIT} pixels for its height or width`);
    }
    const mask = Uint8Array.from(ink.data, value => (value > 0.5 ? 1 : 0));
    if (Math.max(ink.height, ink.width) < NOTEBOOK.DOT * stroke_width(mask, ink.height, ink.width)) {
      throw new Error(`a dot, not a digit: the ink (${ink.height} x ${ink.width} pixels) is hardly longer than ` +
                      "its stroke is wide; draw the whole digit, large");
    }
    return centred_in_field(thicken ? thickened(ink) : ink);
  }

  return {to_grayscale, downsized, ink_above_paper, white_on_black, strokes_only, crop_to, stroke_width,
          nearest_pixel, thickened, resized, centre_of_mass, centred_in_field, mnist_style};
})();
