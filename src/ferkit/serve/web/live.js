// ferkit live mode: webcam frames over the /v1/stream WebSocket, one at a time; each face's
// box, track id, label and seven probabilities drawn over the video, and a 30 s timeline.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LONG_SIDE = 640; // px: frames are downscaled to this before they are sent
  const WINDOW_MS = 30000; // the timeline's span
  const STRIP = 90; // px: the timeline's height per face
  const MAX_STRIPS = 4; // faces shown on the timeline, the most recently seen first
  const video = $("live-video");
  const overlay = $("live-overlay");
  const timeline = $("live-timeline");
  const grab = document.createElement("canvas");
  let ws = null;
  let camera = null;
  let paused = false;
  let limits = null;
  let sentAt = 0;
  const history = new Map(); // track id -> [{ t, probs }] of the last WINDOW_MS
  // What the page achieved, for the stats line, the benchmark and the browser test.
  const live = (window.ferkitLive = { drawn: 0, rtts: [], encodes: [], times: [] });

  const say = (text, error = false) => {
    $("live-status").textContent = text;
    $("live-status").className = error ? "error" : "";
  };

  async function start() {
    try {
      camera = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (err) {
      say(`No webcam: ${err.message}`, true);
      return;
    }
    video.srcObject = camera;
    await video.play();
    $("live-view").hidden = false;
    $("live-start").hidden = true;
    for (const id of ["live-pause", "live-stop", "live-snap"]) $(id).hidden = false;
    connect();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = (ws = new WebSocket(`${scheme}://${location.host}/v1/stream`));
    say("Connecting…");
    socket.onmessage = (event) => answer(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (ws === socket) ws = null;
      const why = `${event.code}${event.reason ? `: ${event.reason}` : ""}`;
      say(`Stream closed (${why}).`, event.code !== 1000);
    };
  }

  // Send the next frame no sooner than the server's frame-rate limit allows (with a 10%
  // margin) and only once the previous answer is in, so nothing queues.
  function next() {
    if (!ws || ws.readyState !== WebSocket.OPEN || paused) return;
    const gap = 1000 / (0.9 * limits.max_fps);
    setTimeout(send, Math.max(0, sentAt + gap - performance.now()));
  }

  function send() {
    if (!ws || ws.readyState !== WebSocket.OPEN || paused) return;
    if (!video.videoWidth) {
      setTimeout(send, 50);
      return;
    }
    const scale = Math.min(1, LONG_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const grabbed = performance.now();
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    grab.toBlob((blob) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      sentAt = performance.now();
      live.encodes.push(sentAt - grabbed); // ms: grab, downscale and JPEG-encode
      ws.send(blob);
    }, "image/jpeg", 0.8);
  }

  function answer(message) {
    if (message.type === "ready") {
      limits = message.limits;
      say("Live.");
      next();
      return;
    }
    const now = performance.now();
    live.rtts.push(now - sentAt);
    live.times.push(now);
    if (message.type === "faces") {
      drawFaces(message);
      remember(message.faces, now);
      drawTimeline(now);
      live.drawn += 1;
    } else {
      say(`Frame ${message.frame}: ${message.detail}`, true);
    }
    showStats(now);
    next();
  }

  function drawFaces(message) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
    const ctx = overlay.getContext("2d");
    const k = overlay.width / message.image.width; // frame px -> video px
    const unit = Math.max(overlay.width, overlay.height) / 640;
    ctx.lineWidth = Math.max(2, 3 * unit);
    ctx.font = `${Math.round(15 * unit)}px system-ui, sans-serif`;
    for (const face of message.faces) {
      const [x, y, w, h] = face.box.map((v) => v * k);
      const colour = COLOURS[face.label] || "#fff";
      ctx.strokeStyle = colour;
      ctx.strokeRect(x, y, w, h);
      const text = `#${face.track} ${face.label} ${Math.round(100 * face.confidence)}%`;
      const th = Math.round(20 * unit);
      ctx.fillStyle = colour;
      ctx.fillRect(x, Math.max(0, y - th), ctx.measureText(text).width + 8, th);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x + 4, Math.max(th, y) - 5 * unit);
      // seven small bars under the box, one per emotion, as tall as its probability
      const bw = w / 7;
      const bh = 30 * unit;
      Object.entries(face.probs).forEach(([label, p], i) => {
        ctx.fillStyle = "rgba(0, 0, 0, 0.45)";
        ctx.fillRect(x + i * bw, y + h + 2, bw - 1, bh);
        ctx.fillStyle = COLOURS[label] || "#888";
        ctx.fillRect(x + i * bw, y + h + 2 + bh * (1 - p), bw - 1, bh * p);
      });
    }
  }

  function remember(faces, now) {
    for (const face of faces) {
      if (!history.has(face.track)) history.set(face.track, []);
      history.get(face.track).push({ t: now, probs: face.probs });
    }
    for (const [track, points] of history) {
      while (points.length && now - points[0].t > WINDOW_MS) points.shift();
      if (!points.length) history.delete(track);
    }
  }

  // One strip per face: the seven probabilities over the last 30 s, newest on the right.
  function drawTimeline(now) {
    const tracks = [...history.entries()]
      .sort((a, b) => b[1].at(-1).t - a[1].at(-1).t)
      .slice(0, MAX_STRIPS);
    timeline.width = timeline.clientWidth || 640;
    timeline.height = Math.max(1, tracks.length) * STRIP;
    const ctx = timeline.getContext("2d");
    ctx.font = "12px system-ui, sans-serif";
    const x = (t) => timeline.width * (1 - (now - t) / WINDOW_MS);
    tracks.forEach(([track, points], row) => {
      const top = row * STRIP;
      const y = (p) => top + STRIP - 4 - p * (STRIP - 20);
      ctx.fillStyle = "#f6f6f6";
      ctx.fillRect(0, top + 1, timeline.width, STRIP - 2);
      ctx.lineWidth = 2;
      for (const label of Object.keys(COLOURS)) {
        ctx.strokeStyle = COLOURS[label];
        ctx.beginPath();
        points.forEach((pt, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(pt.t), y(pt.probs[label])));
        ctx.stroke();
      }
      ctx.fillStyle = "#222";
      ctx.fillText(`face #${track} (last 30 s)`, 6, top + 14);
    });
  }

  function showStats(now) {
    while (live.times.length && now - live.times[0] > 2000) live.times.shift();
    const fps = live.times.length > 1
      ? (1000 * (live.times.length - 1)) / (now - live.times[0]) : 0;
    const recent = live.rtts.slice(-60).sort((a, b) => a - b);
    const p95 = recent[Math.min(recent.length - 1, Math.floor(0.95 * recent.length))];
    $("live-stats").textContent = `${fps.toFixed(1)} frames/s, round trip ` +
      `${Math.round(live.rtts.at(-1))} ms (p95 ${Math.round(p95)} ms over the last 60)`;
  }

  function pause() {
    paused = !paused;
    $("live-pause").textContent = paused ? "Resume" : "Pause";
    if (paused) {
      video.pause();
      say("Paused.");
    } else {
      video.play();
      if (ws) {
        say("Live.");
        next();
      } else {
        connect(); // the server closed it while paused (idle timeout): a new stream
      }
    }
  }

  function stop() {
    paused = false;
    if (ws) ws.close(1000, "stopped");
    if (camera) camera.getTracks().forEach((t) => t.stop());
    camera = null;
    video.srcObject = null;
    history.clear();
    $("live-view").hidden = true;
    $("live-start").hidden = false;
    for (const id of ["live-pause", "live-stop", "live-snap"]) $(id).hidden = true;
    $("live-pause").textContent = "Pause";
  }

  // A snapshot of the live video goes through the photo path, for full-size results.
  function snapshot() {
    const snap = document.createElement("canvas");
    snap.width = video.videoWidth;
    snap.height = video.videoHeight;
    snap.getContext("2d").drawImage(video, 0, 0);
    snap.toBlob((blob) => analyse(blob, "snapshot.png"), "image/png");
  }

  $("live-start").addEventListener("click", start);
  $("live-pause").addEventListener("click", pause);
  $("live-stop").addEventListener("click", stop);
  $("live-snap").addEventListener("click", snapshot);
})();
