// npnet serve: draw on the pad (mouse, touch or pen), and the page asks POST /api/predict
// for the network's answer while you draw. Plain JavaScript, no build step, no libraries.
"use strict";

const INK_WIDTH = 22; // px on the 280 px pad: about 2 px once the digit is scaled to 20×20
const RESEND_LIMIT = 1024; // px: a larger dropped image is scaled down before it is sent

const pad = document.getElementById("pad");
const context = pad.getContext("2d");
const undoButton = document.getElementById("undo");
const clearButton = document.getElementById("clear");
const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
const message = document.getElementById("message");
const answerPanel = document.getElementById("answer-panel");
const predictedClass = document.getElementById("predicted-class");
const predictedProbability = document.getElementById("predicted-probability");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen");
const mapsPanel = document.getElementById("maps-panel");
const maps = document.getElementById("maps");

let maxBodyBytes = 4 * 1024 * 1024; // replaced by the server's limit from /api/run
let strokes = []; // each stroke: a list of [x, y] points in pad pixels
let drawing = null; // the stroke under the pointer, while it is down
let upload = null; // the Blob of a dropped or chosen file, while it is what the pad shows
let generation = 0; // bumped by clear and by a new file: a late answer for older input is dropped
let inFlight = false; // one request at a time; changes meanwhile set `dirty` and send again
let dirty = false;

// --- the run ------------------------------------------------------------------------------

async function loadRun() {
  const response = await fetch("/api/run");
  const run = await response.json();
  document.getElementById("run-name").textContent = run.name + " (" + run.run + ")";
  document.getElementById("run-accuracy").textContent =
    run.test_accuracy == null ? "not measured" : percent(run.test_accuracy, 2);
  document.getElementById("run-params").textContent = run.num_params.toLocaleString("en");
  document.getElementById("run-architecture").textContent = run.layers.map(describeLayer).join(" → ");
  mapsPanel.hidden = !run.feature_maps;
  maxBodyBytes = run.max_body_bytes;
  buildBars(run.classes);
  document.body.dataset.run = "loaded";
}

function buildBars(classes) { // one row per class: its name, a bar, the probability
  bars.replaceChildren(...classes.map((name, index) => {
    const row = document.createElement("li");
    row.innerHTML = '<span class="digit"></span><div class="track"><div class="fill"></div></div><span class="pct"></span>';
    row.querySelector(".digit").textContent = name;
    row.dataset.digit = String(index);
    return row;
  }));
}

function describeLayer(layer) {
  const args = Object.entries(layer.args).map(([key, value]) => key + "=" + value);
  const shape = layer.output_shape.join("×");
  return layer.layer + (args.length ? "(" + args.join(", ") + ")" : "") + " " + shape;
}

// --- the pad ------------------------------------------------------------------------------

function blankPad() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, pad.width, pad.height);
}

function drawStroke(points) {
  context.strokeStyle = context.fillStyle = "#000";
  context.lineWidth = INK_WIDTH;
  context.lineCap = context.lineJoin = "round";
  if (points.length === 1) { // a tap is a dot
    context.beginPath();
    context.arc(points[0][0], points[0][1], INK_WIDTH / 2, 0, 2 * Math.PI);
    context.fill();
    return;
  }
  context.beginPath();
  context.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) context.lineTo(x, y);
  context.stroke();
}

function redraw() {
  blankPad();
  strokes.forEach(drawStroke);
}

function padPoint(event) {
  const box = pad.getBoundingClientRect(); // the pad may be shown larger or smaller than 280 px
  return [
    (event.clientX - box.left) * (pad.width / box.width),
    (event.clientY - box.top) * (pad.height / box.height),
  ];
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  if (upload) { // drawing after a file starts a fresh drawing
    upload = null;
    generation += 1;
  }
  pad.setPointerCapture(event.pointerId);
  drawing = [padPoint(event)];
  strokes.push(drawing);
  redraw();
  updateButtons();
  requestPrediction();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  drawing.push(padPoint(event));
  redraw(); // the whole drawing again, so the pad is always exactly what undo would redraw
  requestPrediction();
});

function endStroke() {
  if (!drawing) return;
  drawing = null;
  requestPrediction();
}

pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

undoButton.addEventListener("click", () => {
  strokes.pop();
  if (!strokes.length) return clear();
  redraw();
  updateButtons();
  requestPrediction();
});

clearButton.addEventListener("click", clear);

function clear() {
  strokes = [];
  upload = null;
  generation += 1;
  blankPad();
  fileInput.value = "";
  showMessage("");
  resetAnswer();
  updateButtons();
}

function updateButtons() {
  undoButton.disabled = strokes.length === 0;
  clearButton.disabled = strokes.length === 0 && !upload;
}

// --- files --------------------------------------------------------------------------------

fileInput.addEventListener("change", () => {
  if (fileInput.files.length) useFile(fileInput.files[0]);
});

drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) useFile(event.dataTransfer.files[0]);
});

async function useFile(file) {
  document.body.dataset.busy = "true";
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (error) {
    showMessage(file.name + " is not an image this browser can read");
    document.body.dataset.busy = "false";
    return;
  }
  strokes = [];
  generation += 1;
  showMessage("");
  blankPad();
  const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  const [w, h] = [bitmap.width * scale, bitmap.height * scale];
  context.imageSmoothingEnabled = scale < 1; // a small image (MNIST's 28×28) shows its pixels
  context.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  context.imageSmoothingEnabled = true;
  // PNG and JPEG go as they are; other formats and large files go as a PNG the browser
  // re-encodes (scaled to at most RESEND_LIMIT px), which the server's limits accept.
  const direct = (file.type === "image/png" || file.type === "image/jpeg") && file.size <= maxBodyBytes;
  upload = direct ? file : await reencode(bitmap);
  updateButtons();
  requestPrediction();
}

function reencode(bitmap) {
  const scale = Math.min(1, RESEND_LIMIT / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// --- predictions --------------------------------------------------------------------------

function requestPrediction() {
  dirty = true;
  document.body.dataset.busy = "true"; // "false" once the answer for the latest input is in
  if (!inFlight) send();
}

async function send() {
  dirty = false;
  if (!strokes.length && !upload) {
    document.body.dataset.busy = "false";
    return;
  }
  inFlight = true;
  const sent = generation;
  try {
    const body = upload || (await new Promise((resolve) => pad.toBlob(resolve, "image/png")));
    const response = await fetch("/api/predict", {
      method: "POST",
      headers: { "Content-Type": body.type || "image/png" },
      body,
    });
    const answer = await response.json();
    if (sent !== generation) return; // cleared, or another file, while this was on its way
    if (response.ok) {
      showAnswer(answer);
      showMessage("");
    } else {
      resetAnswer();
      answerPanel.dataset.state = "error";
      showMessage(answer.error);
    }
  } catch (error) {
    if (sent === generation) showMessage("the server did not answer (" + error.message + ")");
  } finally {
    inFlight = false;
    if (dirty) send();
    else document.body.dataset.busy = "false";
  }
}

function showAnswer(answer) {
  const p = answer.probabilities;
  predictedClass.textContent = String(answer.class);
  predictedProbability.textContent = percent(p[answer.class], 1);
  p.forEach((value, digit) => {
    const row = bars.children[digit];
    row.classList.toggle("top", digit === answer.class);
    row.querySelector(".fill").style.width = (100 * value).toFixed(1) + "%";
    row.querySelector(".pct").textContent = percent(value, 1);
  });
  paintGrey(seen, answer.image);
  if (answer.feature_maps) paintMaps(answer.feature_maps);
  answerPanel.dataset.state = "shown";
}

function resetAnswer() {
  answerPanel.dataset.state = "empty";
  predictedClass.textContent = "?";
  predictedProbability.textContent = "draw a digit to see what it thinks";
  for (const row of bars.children) {
    row.classList.remove("top");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".pct").textContent = "";
  }
  seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
  maps.replaceChildren();
}

// --- drawing arrays -----------------------------------------------------------------------

function paintGrey(canvas, rows) { // rows: H × W values in [0, 1], 1 is white
  paint(canvas, rows, (v) => [255 * v, 255 * v, 255 * v]);
}

function paintMaps(featureMaps) { // maps: F × H × W; each from its own minimum to maximum
  if (maps.children.length !== featureMaps.maps.length) {
    maps.replaceChildren(...featureMaps.maps.map((_, f) => {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      figure.append(canvas, "filter " + f);
      return figure;
    }));
  }
  featureMaps.maps.forEach((rows, f) => {
    const values = rows.flat();
    const low = Math.min(...values);
    const span = Math.max(1e-6, Math.max(...values) - low);
    paint(maps.children[f].querySelector("canvas"), rows, (v) => {
      const t = (v - low) / span; // black, through orange, to pale yellow
      return [255 * Math.min(1, 1.6 * t), 255 * t * t, 160 * t * t * t];
    });
  });
}

function paint(canvas, rows, colour) {
  const [h, w] = [rows.length, rows[0].length];
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  rows.forEach((row, y) => row.forEach((value, x) => {
    const [r, g, b] = colour(value);
    image.data.set([r, g, b, 255], 4 * (y * w + x));
  }));
  ctx.putImageData(image, 0, 0);
}

// --- start --------------------------------------------------------------------------------

function percent(value, digits) {
  return (100 * value).toFixed(digits) + " %";
}

function showMessage(text) {
  message.textContent = text;
}

blankPad();
resetAnswer();
document.body.dataset.busy = "false";
loadRun().catch((error) => showMessage("could not read the run (" + error.message + ")"));
