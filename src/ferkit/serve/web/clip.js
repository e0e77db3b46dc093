// ferkit video mode: upload a video to /v1/jobs, poll its progress, then play the annotated
// video and show the timeline and the per-frame CSV.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 500;

  const say = (text, error = false) => {
    $("clip-status").textContent = text;
    $("clip-status").className = error ? "error" : "";
  };

  async function submit(file) {
    $("clip-result").hidden = true;
    $("clip-progress").hidden = false;
    $("clip-progress").value = 0;
    say(`Uploading ${file.name}…`);
    const form = new FormData();
    form.append("file", file, file.name);
    let job;
    try {
      const response = await fetch("/v1/jobs", { method: "POST", body: form });
      job = await response.json();
      if (!response.ok) throw new Error(job.detail || response.statusText);
    } catch (err) {
      $("clip-progress").hidden = true;
      say(`Could not analyse ${file.name}: ${err.message}`, true);
      return;
    }
    poll(job);
  }

  async function poll(job) {
    while (job.status === "queued" || job.status === "running") {
      $("clip-progress").value = job.progress;
      say(`Analysing ${job.file}: frame ${job.frames} of ${job.total}…`);
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        const response = await fetch(`/v1/jobs/${job.id}`);
        const next = await response.json();
        if (!response.ok) throw new Error(next.detail || response.statusText);
        job = next;
      } catch (err) {
        say(`Lost the job: ${err.message}`, true);
        return;
      }
    }
    $("clip-progress").hidden = true;
    if (job.status === "failed") {
      say(`Could not analyse ${job.file}: ${job.error}`, true);
      return;
    }
    const s = job.summary;
    say(`${job.file}: ${s.frames} frames, ${s.tracks} face${s.tracks === 1 ? "" : "s"} ` +
      `tracked, analysed at ${s.fps.toFixed(1)} frames/s. The results are kept for ` +
      `${Math.round(job.expires_in_s / 60)} min.`);
    $("clip-video").src = job.files.video;
    $("clip-timeline").src = job.files.timeline;
    $("clip-csv").href = job.files.csv;
    $("clip-download").href = job.files.video;
    $("clip-result").hidden = false;
  }

  $("clip-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) submit(file);
  });
})();
