/* The live canvas: the notebook's DrawingPad and canvas cell in the browser. After every stroke (mouse, pen or finger:
pointer events) the page reads the drawing as predict_digit does and shows the digit, the probabilities' bars and the
28 x 28 field. Positions are scaled from CSS pixels to canvas pixels, as the canvas may be shown smaller. */
var LiveCanvas = (function () {
  "use strict";

  const root = document.getElementById("live-digit");
  const [pad, field_canvas, answer, timing] = ["pad", "field", "answer", "time"].map(
    part => root.querySelector(`.live-digit-${part}`));
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

  function show_field(field) {
    const picture = new ImageData(28, 28);
    for (let i = 0; i < 28 * 28; i++) {
      const grey = field ? Math.round(255 * field.data[i]) : 0;
      picture.data.set([grey, grey, grey, 255], 4 * i);
    }
    field_canvas.getContext("2d").putImageData(picture, 0, 0);
  }

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
    state.last = {...result, milliseconds: performance.now() - started};
    show_field(result.field);
    timing.textContent = `read in ${state.last.milliseconds.toFixed(0)} ms by your browser`;
  }

  function clear() {
    context.fillStyle = "black";
    context.fillRect(0, 0, pad.width, pad.height);
    state.last = null;
    answer.innerHTML = "<i>draw a digit</i>";
    timing.textContent = "";
    show_field(null);
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

  return {state, clear, read_drawing};
})();
