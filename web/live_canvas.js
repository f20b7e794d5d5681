/* The live canvas: the notebook's DrawingPad and canvas cell in the browser. After every stroke (mouse, pen or finger:
pointer events) the page reads the drawing as predict_digit does and shows the digit, the probabilities' bars, the
28 x 28 field and each block's feature maps, as the notebook's feature_maps_html lays them out. Positions are scaled
from CSS pixels to canvas pixels, as the canvas may be shown smaller. */
var LiveCanvas = (function () {
  "use strict";

  const root = document.getElementById("live-digit");
  const [pad, field_canvas, answer, timing, maps_root, map_info] = ["pad", "field", "answer", "time", "maps", "map-info"]
    .map(part => root.querySelector(`.live-digit-${part}`));
  const drawing_pad = DIGIT_CNN.constants.defaults.DrawingPad;  // the notebook's canvas: its size and line width
  const context = pad.getContext("2d", {willReadFrequently: true});
  const state = {pointer: null, last_point: null, last: null};

  pad.width = pad.height = drawing_pad.size;

  // The probabilities as percentages, as Python's f"{p:.0%}" writes them.
  function percent(p) {
    return `${Math.round(100 * p)}%`;
  }

  // The prediction and ten probability bars, as the notebook's probabilities_html writes them.
  function probabilities_html(digit, probabilities) {
    const bars = Array.from(probabilities, (p, d) =>
      `<div style='display:flex;align-items:center;gap:6px;font-family:monospace'>${d}<div style='background:` +
      `${d === digit ? "#ff7f0e" : "#1f77b4"};height:12px;width:${Math.round(200 * p)}px'></div>${percent(p)}</div>`
    ).join("");
    return `<div class='digit-prediction'><b>prediction: ${digit}</b> (${percent(probabilities[digit])})${bars}</div>`;
  }

  // 256 greys, and the notebook's 256 colours of feature_maps_html (matplotlib's viridis, through the weights file),
  // as the red, green, blue and opacity of a pixel.
  const GREYS = Array.from({length: 256}, (_, grey) => [grey, grey, grey, 255]);
  const VIRIDIS = Array.from({length: 256}, (_, i) => [0, 2, 4].map(
    at => parseInt(DIGIT_CNN.constants.VIRIDIS.slice(6 * i + at, 6 * i + at + 2), 16)).concat(255));

  // A canvas's pixels, each the colour of its value.
  function paint(canvas, values, colour) {
    const picture = new ImageData(canvas.width, canvas.height);
    values.forEach((value, i) => picture.data.set(colour(value), 4 * i));
    canvas.getContext("2d").putImageData(picture, 0, 0);
  }

  function show_field(field) {
    paint(field_canvas, field ? field.data : new Float32Array(28 * 28), value => GREYS[Math.round(255 * value)]);
  }

  // One figure per block: a caption and a grid of small canvases, one per feature map (8 columns of 14 x 14 maps,
  // 16 of smaller ones), as many as the network's blocks have channels, so that a wider network shows all of them.
  const blocks = DigitCNN.block_shapes.map(({name, channels, side}) => {
    const figure = maps_root.appendChild(document.createElement("figure"));
    const caption = figure.appendChild(document.createElement("figcaption"));
    const grid = figure.appendChild(document.createElement("div"));
    grid.className = "live-digit-grid";
    grid.style.gridTemplateColumns = `repeat(${side > 7 ? 8 : 16}, 1fr)`;
    const canvases = Array.from({length: channels}, () => grid.appendChild(document.createElement("canvas")));
    for (const canvas of canvases) canvas.width = canvas.height = side;
    return {name, channels, side, figure, caption, canvases};
  });

  // Each block's maps on the block's own colour scale, from 0 (dark purple) to its largest value (yellow); each
  // map's title (a hover, or a tap through map_info) names its channel and its largest value. Hidden without maps.
  function show_maps(maps) {
    blocks.forEach(({name, channels, side, figure, caption, canvases}, block) => {
      figure.hidden = !maps;
      if (!maps) return;
      const output = maps[block].data, largest = output.reduce((a, b) => Math.max(a, b)), size = side * side;
      caption.textContent = `${name}: ${channels} × ${side} × ${side}, largest ${largest.toFixed(2)}`;
      canvases.forEach((canvas, channel) => {
        const values = output.subarray(channel * size, (channel + 1) * size);  // as matplotlib picks a colour:
        paint(canvas, values, value => VIRIDIS[Math.min(Math.floor(256 * value / (largest || 1)), 255)]);
        canvas.title = `${name}, channel ${channel}: largest ${values.reduce((a, b) => Math.max(a, b)).toFixed(2)}`;
      });
    });
  }
  maps_root.addEventListener("pointerover", event => {  // a mouse over a map, or a finger's tap on it
    if (event.target.title) map_info.textContent = event.target.title;
  });

  // Read the canvas as the notebook reads its drawing: predict_digit on the canvas's pixels.
  function read_drawing() {
    const started = performance.now(), pixels = context.getImageData(0, 0, pad.width, pad.height);
    let result;
    try {
      result = DigitCNN.predict_digit({height: pixels.height, width: pixels.width, channels: 4, bytes: pixels.data});
      answer.innerHTML = probabilities_html(result.digit, result.probabilities);
    } catch (error) {  // not a digit yet (a dot, a tiny scribble): say what mnist_style objected to
      result = {error: error.message};
      answer.innerHTML = "<div class='digit-error'><i></i></div>";
      answer.querySelector("i").textContent = error.message;
    }
    show_field(result.field);
    show_maps(result.maps);
    map_info.textContent = "";  // the maps it named are gone
    state.last = {...result, milliseconds: performance.now() - started};
    timing.textContent = `read and drawn in ${state.last.milliseconds.toFixed(0)} ms by your browser`;
  }

  function clear() {
    context.fillStyle = "black";
    context.fillRect(0, 0, pad.width, pad.height);
    state.last = null;
    answer.innerHTML = "<i>draw a digit</i>";
    timing.textContent = map_info.textContent = "";
    show_field(null);
    show_maps(null);
  }

  // A pointer's position in canvas pixels: CSS pixels inside the border, scaled to the canvas's own size.
  function canvas_point(event) {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left - pad.clientLeft) * pad.width / pad.clientWidth,
            (event.clientY - box.top - pad.clientTop) * pad.height / pad.clientHeight];
  }

  // A white line with round ends, as DrawingPad._line draws into its image (a dot when start and end are one point).
  function line(start, end) {
    context.strokeStyle = context.fillStyle = "white";
    context.lineWidth = drawing_pad.line_width;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    if (start[0] === end[0] && start[1] === end[1]) {
      context.arc(start[0], start[1], drawing_pad.line_width / 2, 0, 2 * Math.PI);
      context.fill();
      return;
    }
    context.moveTo(...start);
    context.lineTo(...end);
    context.stroke();
  }

  function mouse_down(event) {
    if (state.pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);  // the stroke goes on when the pointer leaves the square
    state.pointer = event.pointerId;
    state.last_point = canvas_point(event);
    line(state.last_point, state.last_point);
  }

  function mouse_move(event) {
    if (event.pointerId !== state.pointer) return;
    const point = canvas_point(event);
    line(state.last_point, point);
    state.last_point = point;
  }

  function mouse_up(event) {
    if (event.pointerId !== state.pointer) return;
    if (event.type === "pointerup") mouse_move(event);
    state.pointer = state.last_point = null;
    read_drawing();
  }

  for (const [type, handler] of [["down", mouse_down], ["move", mouse_move], ["up", mouse_up], ["cancel", mouse_up]]) {
    pad.addEventListener(`pointer${type}`, handler);
  }
  root.querySelector(".live-digit-clear").addEventListener("click", clear);

  const smoothing = DIGIT_CNN.constants.LABEL_SMOOTHING;
  const target = 1 - smoothing + smoothing / 10;  // the training target of the right digit
  root.querySelector(".live-digit-smoothing").textContent =
    `The top probability stays near ${percent(target)}, never 100%, because the network was trained with label ` +
    `smoothing (LABEL_SMOOTHING = ${smoothing}, Part II (B)), towards ${percent(target)} for the right digit and ` +
    `${percent(smoothing / 10)} for each of the others.`;
  clear();
  // Speed only, not needed to understand the page: once it has loaded, a stroke read six times and wiped, so that
  // the browser has compiled the code before the reader's first stroke, which would otherwise take two to four times
  // as long (docs/static-page.md); not once the reader has begun.
  window.addEventListener("load", () => setTimeout(() => {
    if (state.pointer !== null || state.last !== null) return;
    line([pad.width / 2, pad.height / 5], [pad.width / 2, 4 * pad.height / 5]);
    for (let warm_up = 0; warm_up < 6; warm_up++) read_drawing();
    clear();
  }));

  return {state, clear, read_drawing};
})();
