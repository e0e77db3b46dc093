// ferkit web page: send a photo to /v1/predict, draw boxes and per-face probability bars.
"use strict";

// One colour per emotion, as the annotated images use (Okabe-Ito, colour-blind safe).
const COLOURS = {
  angry: "#d55e00", disgust: "#009e73", fear: "#cc79a7", happy: "#f0e442",
  sad: "#0072b2", surprise: "#e69f00", neutral: "#b4b4b4",
};

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
};

async function analyse(blob, name) {
  status(`Analysing ${name}…`);
  const form = new FormData();
  form.append("file", blob, name);
  let reply;
  try {
    const response = await fetch("/v1/predict", { method: "POST", body: form });
    reply = await response.json();
    if (!response.ok) throw new Error(reply.detail || response.statusText);
  } catch (err) {
    status(`Could not analyse ${name}: ${err.message}`, true);
    return;
  }
  await show(blob, reply);
}

async function show(blob, reply) {
  // Draw the upright image the server measured boxes on: createImageBitmap applies EXIF
  // orientation the same way.
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const canvas = $("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const unit = Math.max(canvas.width, canvas.height) / 640;
  ctx.lineWidth = Math.max(2, 3 * unit);
  ctx.font = `${Math.round(16 * unit)}px system-ui, sans-serif`;
  const list = $("faces");
  list.replaceChildren();
  reply.faces.forEach((face, i) => {
    const [x, y, w, h] = face.box;
    const colour = COLOURS[face.label] || "#fff";
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const text = `${i + 1}: ${face.label} ${Math.round(100 * face.confidence)}%`;
    const tw = ctx.measureText(text).width + 8;
    const th = Math.round(20 * unit);
    ctx.fillStyle = colour;
    ctx.fillRect(x, Math.max(0, y - th), tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 4, Math.max(th, y) - 5 * unit);
    list.append(faceCard(face, i));
  });
  canvas.hidden = false;
  const n = reply.faces.length;
  status(n ? `${n} face${n > 1 ? "s" : ""} found.` : reply.message || "No face found.");
}

function faceCard(face, i) {
  const card = document.createElement("div");
  card.className = "face";
  const title = document.createElement("h3");
  title.textContent = `Face ${i + 1}: ${face.label} (${(100 * face.confidence).toFixed(1)}%)`;
  card.append(title);
  for (const [label, p] of Object.entries(face.probs)) {
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.textContent = label;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.label = label;
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    bar.style.background = COLOURS[label] || "#888";
    track.append(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(name, track, value);
    card.append(row);
  }
  return card;
}

// File choice and drag and drop.
$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) analyse(file, file.name);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (file) analyse(file, file.name);
});

// Which model answers, from /v1/model.
fetch("/v1/model").then((r) => r.json()).then((m) => {
  const acc = m.accuracy && m.accuracy.PrivateTest;
  $("model").textContent = `Model ${m.file} (sha256 ${m.sha256.slice(0, 12)}), ` +
    `ferkit ${m.ferkit_version}, detector ${m.detector}` +
    (acc ? `, FER-2013 PrivateTest accuracy ${(100 * acc).toFixed(2)}%` : "");
}).catch(() => {});
