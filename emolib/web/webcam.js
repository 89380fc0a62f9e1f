// The Jupyter webcam widget (emolib.widgets.WebcamWidget), an anywidget ES module. emolib/widgets/camera.py
// sends this file appended to emolib/web/draw.js (anywidget loads one module, with no relative imports), so
// drawFaces below is draw.js's, the same drawing as the book's live page. The protocol with the kernel:
// {type: "frame"|"snapshot", view, id, width, height, region?} + one JPEG buffer (base64 text on Colab) up;
// {type: "result"|"error"|"snapshot_done"|"take_snapshot", ...} down.
// With engine="browser" no frame goes up: the view asks once for the engine's files ({type: "engine_request"}),
// receives them ({type: "engine_file", name, offset, size} + one buffer, or base64 text, per part; then
// {type: "engine_ready", manifest, modules}), imports onnxruntime-web and emolib/web/engine.js from them (blob
// URLs) and runs each camera frame through engine.analyze, as the book's live page does; once a second it
// sends {type: "engine_stats", frames, fps, faces, ...} so that the kernel's counters follow. The widget's
// root element carries data-engine, data-frames, data-fps, data-faces, data-emotion, data-status (as the live
// page's #emolib-live) for tests.
const TIMEOUT_MS = 15000;
const REPORT_MS = 1000;

function fromBase64(text) {
  const s = atob(text), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// The engine's ES modules as blob URLs, each module's `from "./x.js"` pointing at the blob of x.js
// (`modules`: [name, source] pairs in import order); then onnxruntime-web and createEngine from them.
async function buildEngine(modules, manifest, files, options = {}) {
  const urls = {};
  for (const [name, text] of modules) {
    const code = name.endsWith(".mjs") ? text
      : text.replace(/from\s*"\.\/([\w.]+)"/g, (m, dep) => `from "${urls[dep]}"`);
    urls[name] = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  }
  const ortUrl = modules.find(([name]) => name.endsWith(".mjs"))[0];
  const ort = await import(urls[ortUrl]);
  ort.env.wasm.numThreads = 1;  // no COOP/COEP headers in Jupyter or Colab: no WebAssembly threads
  ort.env.wasm.wasmBinary = files[Object.keys(files).find((f) => f.endsWith(".wasm"))];
  const { createEngine } = await import(urls["engine.js"]);
  return createEngine(ort, manifest, (file) => {
    if (!files[file]) throw new Error(`the kernel did not send ${file}`);
    return files[file];
  }, options);  // the widget's track / detect_every (detectEvery), or engine.js's defaults
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function cameraError(err) {
  if (!err) return "unknown error";
  return `${err.name || "Error"}: ${err.message || String(err)}`;
}

function advice(text) {
  if (text.includes("NotAllowedError")) return "Camera access was refused. Allow the camera for this page (the camera icon next to the address) and press Start.";
  if (text.includes("NotFoundError") || text.includes("OverconstrainedError")) return "No camera was found. Connect one and press Start.";
  if (text.includes("NotReadableError")) return "The camera is busy (another program or tab uses it). Close that and press Start.";
  if (text.includes("secure context")) return "Browsers give the camera only to https pages and to localhost.";
  return "The camera could not be opened.";
}

function render({ model, el }) {
  const view = Math.random().toString(36).slice(2, 10);
  const root = document.createElement("div");
  root.className = "emolib-webcam";
  root.innerHTML = `
    <div class="emolib-webcam-stage">
      <video class="emolib-webcam-video" muted playsinline autoplay></video>
      <canvas class="emolib-webcam-overlay"></canvas>
      <div class="emolib-webcam-message" hidden></div>
    </div>
    <div class="emolib-webcam-bar">
      <button class="emolib-webcam-toggle" type="button">Start</button>
      <button class="emolib-webcam-snap" type="button" disabled>Snapshot</button>
      <span class="emolib-webcam-stats">starting</span>
      <img class="emolib-webcam-thumb" hidden alt="last snapshot">
    </div>`;
  el.appendChild(root);
  const video = root.querySelector("video");
  const overlay = root.querySelector("canvas");
  const message = root.querySelector(".emolib-webcam-message");
  const toggle = root.querySelector(".emolib-webcam-toggle");
  const snapButton = root.querySelector(".emolib-webcam-snap");
  const stats = root.querySelector(".emolib-webcam-stats");
  const thumb = root.querySelector(".emolib-webcam-thumb");
  const grab = document.createElement("canvas");
  const browser = model.get("engine") === "browser";
  root.dataset.engine = model.get("engine");

  let stream = null, inflight = new Map(), frameId = 0, camFrames = 0, lastCamTime = -1;
  let sentSerial = -1, sent = 0, lastSend = 0, rtt = 0, encodeMs = 0, alive = true, waiting = null;
  let lastFaces = [], lastSize = [0, 0], results = [], region = null, regionOf = [0, 0], lastStats = 0;
  // the browser engine
  let engine = null, engineWaiter = null, engineFailed = null, busy = false;
  let frames = 0, frameMs = 0, loadMs = 0, lastReport = 0;
  const received = {}, shownAt = performance.now();

  function setStatus(text) {
    root.dataset.status = text;
    if (model.get("status") !== text) { model.set("status", text); model.save_changes(); }
  }
  function showMessage(text) { message.textContent = text; message.hidden = !text; }

  async function start() {
    if (stream) return;
    showMessage("");
    toggle.textContent = "Stop";
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const text = "no camera: this page is not a secure context (https or localhost), so the browser gives it no camera";
      setStatus(text); showMessage(text + ". " + advice(text)); toggle.textContent = "Start"; return;
    }
    setStatus("starting camera");
    const w = model.get("width");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false, video: { width: { ideal: w }, height: { ideal: Math.round(w * 3 / 4) }, facingMode: "user" } });
    } catch (err) {
      const text = "no camera: " + cameraError(err);
      setStatus(text); showMessage(text + ". " + advice(text)); toggle.textContent = "Start"; stream = null; return;
    }
    if (!alive) { stream.getTracks().forEach((tr) => tr.stop()); stream = null; return; }
    video.srcObject = stream;
    try { await video.play(); } catch (err) { /* autoplay of a muted video is allowed */ }
    snapButton.disabled = false;
    if (browser && !engine) {
      if (!engineFailed) { setStatus("loading the browser engine"); await engineLoaded; }
      if (!engine || !stream) return;  // it failed (its error is shown), or the camera was stopped meanwhile
    }
    setStatus("running");
    watchFrames();
    if (!browser) maybeSend();
  }

  function stop(status) {
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null; inflight.clear(); region = null;
    if (engine) engine.reset();
    video.srcObject = null;
    snapButton.disabled = true;
    toggle.textContent = "Start";
    clearOverlay();
    if (status) setStatus(status);
  }

  function watchFrames() {
    // Count camera frames; a new one is sent only when nothing is in flight.
    if (!stream) return;
    const onFrame = () => {
      if (!stream) return;
      camFrames += 1;
      if (browser) engineStep(); else maybeSend();
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
    };
    if (video.requestVideoFrameCallback) {
      video.requestVideoFrameCallback(onFrame);
    } else {
      const poll = () => {
        if (!stream) return;
        if (video.currentTime !== lastCamTime) { lastCamTime = video.currentTime; onFrame(); }
        setTimeout(poll, 10);
      };
      poll();
    }
  }

  function encode(width, quality, part, partOf) {
    // The frame is w x h (the camera scaled to at most `width` wide). With `part`
    // ([x, y, pw, ph] in the pixels of a partOf[0] x partOf[1] frame, from the kernel),
    // only that region is encoded, if it belongs to a frame of this size.
    const vw = video.videoWidth, vh = video.videoHeight;
    const w = Math.min(width, vw), h = Math.round(vh * w / vw);
    if (part && (partOf[0] !== w || partOf[1] !== h || part[0] < 0 || part[1] < 0 ||
                 part[0] + part[2] > w || part[1] + part[3] > h)) part = null;
    const s = vw / w;
    if (part) {
      const [x, y, pw, ph] = part;
      grab.width = pw; grab.height = ph;
      grab.getContext("2d").drawImage(video, x * s, y * s, pw * s, ph * s, 0, 0, pw, ph);
    } else {
      grab.width = w; grab.height = h;
      grab.getContext("2d").drawImage(video, 0, 0, w, h);
    }
    return new Promise((resolve) => grab.toBlob((blob) => resolve([blob, w, h, part]), "image/jpeg", quality));
  }

  async function post(content, blob) {
    const buffer = await blob.arrayBuffer();
    if (model.get("transport") === "base64") {
      content.jpeg_b64 = base64(buffer);
      model.send(content);
    } else {
      model.send(content, undefined, [buffer]);
    }
  }

  function maybeSend() {
    if (!stream || !model.get("active") || inflight.size >= Math.max(1, model.get("max_inflight")) ||
        video.readyState < 2 || !video.videoWidth) return;
    if (camFrames === sentSerial) return;  // no new camera frame since the last one sent
    const now = performance.now();
    const maxFps = model.get("max_fps");
    if (maxFps > 0 && now - lastSend < 1000 / maxFps) {
      if (!waiting) waiting = setTimeout(() => { waiting = null; maybeSend(); }, 1000 / maxFps - (now - lastSend));
      return;
    }
    const id = ++frameId;
    inflight.set(id, now);
    sentSerial = camFrames; lastSend = now; sent += 1;
    encode(model.get("width"), model.get("quality"), region, regionOf).then(([blob, w, h, used]) => {
      if (!blob) { inflight.delete(id); return; }
      encodeMs = performance.now() - now;
      const content = { type: "frame", view, id, width: w, height: h, camera_frames: camFrames, sent, rtt_ms: rtt,
                        encode_ms: encodeMs };
      if (used) content.region = used;
      post(content, blob);
    });
  }

  // ------------------------------------------------------------- the browser engine: no frame to the kernel

  const engineLoaded = !browser ? null : new Promise((resolve, reject) => {
    engineWaiter = { resolve, reject };
    model.send({ type: "engine_request", view });
  }).then((e) => {
    engine = e; loadMs = performance.now() - shownAt;
    root.dataset.loadMs = loadMs.toFixed(0);
    if (!stream) setStatus(model.get("active") ? "starting camera" : "stopped");
  }).catch((err) => {
    engineFailed = String(err && err.message || err);
    const text = `error: the browser engine could not load: ${engineFailed}`;
    setStatus(text); showMessage(text + ". webcam(engine='kernel') runs the models in the kernel instead.");
  });

  function onEngineMessage(msg, buffers) {
    if (msg.type === "engine_file") {
      const file = received[msg.name] || (received[msg.name] = new Uint8Array(msg.size));
      const b = msg.b64 !== undefined ? fromBase64(msg.b64) : buffers[0];  // a DataView, or an ArrayBuffer
      file.set(b instanceof ArrayBuffer ? new Uint8Array(b)
        : new Uint8Array(b.buffer, b.byteOffset, b.byteLength), msg.offset);
    } else if (msg.type === "engine_ready" && engineWaiter) {
      buildEngine(msg.modules, msg.manifest, received, msg.options || {}).then(engineWaiter.resolve, engineWaiter.reject);
      engineWaiter = null;
    }
  }

  function engineStep() {
    if (busy || !engine || !model.get("active") || video.readyState < 2 || !video.videoWidth) return;
    busy = true;
    const vw = video.videoWidth, vh = video.videoHeight;
    const w = Math.min(model.get("width"), vw), h = Math.round(vh * w / vw);
    const t0 = performance.now();
    engine.analyze(video, w, h).then(({ faces }) => {
      if (!stream) return;
      frameMs = performance.now() - t0;
      frames += 1;
      lastFaces = faces; lastSize = [w, h];
      drawOverlay(faces, w, h);
      showEngineStats(faces);
    }).catch((err) => {
      const text = `error: ${err && err.message || err}`;
      setStatus(text); showMessage(text);
    }).finally(() => { busy = false; });
  }

  function showEngineStats(faces) {
    const now = performance.now();
    results.push(now);
    while (results.length > 2 && now - results[0] > 2000) results.shift();
    const fps = results.length > 1 ? (results.length - 1) * 1000 / (results[results.length - 1] - results[0]) : 0;
    if (now - lastStats >= 250) {
      lastStats = now;
      const n = faces.length;
      Object.assign(root.dataset, { frames: String(frames), fps: fps.toFixed(1), faces: String(n),
                                    emotion: n ? faces[0].emotion : "" });
      stats.textContent = `${fps.toFixed(1)} fps · ${n} face${n === 1 ? "" : "s"} · in this page ` +
        `(browser engine, ${frameMs.toFixed(0)} ms a frame) · ${frames} frames, none sent to the kernel`;
    }
    if (now - lastReport >= REPORT_MS) {
      lastReport = now;
      const round = (v) => Math.round(v * 1000) / 1000;
      const summary = faces.map((f) => ({ box: f.box.map((v) => Math.round(v * 10) / 10), emotion: f.emotion,
                                          p: round(f.p), score: round(f.score),
                                          probabilities: Object.fromEntries(Object.entries(f.probabilities)
                                            .map(([k, v]) => [k, round(v)])) }));
      try {  // the kernel may be gone: the camera goes on
        model.send({ type: "engine_stats", view, frames, fps, camera_frames: camFrames, frame_ms: frameMs,
                     load_ms: loadMs, faces: summary, size: lastSize });
      } catch (err) { /* nothing to tell */ }
    }
  }

  function clearOverlay() {
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  }

  function drawOverlay(faces, w, h) {  // drawFaces: emolib/web/draw.js, shared with the book's live page
    drawFaces(overlay, faces, w, h, { mirror: model.get("mirror"), bars: model.get("bars") });
  }

  function showStats(msg) {
    const now = performance.now();
    results.push(now);
    while (results.length > 30 || (results.length && now - results[0] > 5000)) results.shift();
    const fps = results.length > 1 ? (results.length - 1) * 1000 / (results[results.length - 1] - results[0]) : 0;
    if (now - lastStats < 250) return;  // a text change per frame costs the page layout work
    lastStats = now;
    const n = msg.faces.length;
    stats.textContent = `${fps.toFixed(1)} fps · ${n} face${n === 1 ? "" : "s"} · ` +
      `encode ${encodeMs.toFixed(0)} ms · kernel ${msg.ms.toFixed(0)} ms · round trip ${rtt.toFixed(0)} ms · ` +
      `${msg.processed} processed, ${msg.dropped} dropped`;
  }

  async function snapshot() {
    if (!stream || !video.videoWidth) return;
    const [blob, w, h] = await encode(video.videoWidth, 0.92);
    if (!blob) return;
    thumb.src = grab.toDataURL("image/jpeg", 0.6);
    post({ type: "snapshot", view, width: w, height: h }, blob);
  }

  function onMessage(msg, buffers) {
    if (!msg || (msg.view && msg.view !== view)) return;
    if (msg.type === "engine_file" || msg.type === "engine_ready") {
      onEngineMessage(msg, buffers);
    } else if (msg.type === "result") {
      if (inflight.has(msg.id)) { rtt = performance.now() - inflight.get(msg.id); inflight.delete(msg.id); }
      if (msg.id < frameId - 1) return;
      region = msg.next_region || null; regionOf = [msg.width, msg.height];
      lastFaces = msg.faces; lastSize = [msg.width, msg.height];
      if (stream) drawOverlay(msg.faces, msg.width, msg.height);
      showStats(msg);
      maybeSend();
    } else if (msg.type === "error") {
      inflight.delete(msg.id);
      showMessage(msg.message);
      maybeSend();
    } else if (msg.type === "snapshot_done") {
      thumb.hidden = false;
      thumb.title = `snapshot ${msg.count}: ${msg.faces.length} face(s); in Python: widget.snapshot`;
    } else if (msg.type === "take_snapshot") {
      snapshot();
    }
  }

  const watchdog = setInterval(() => {
    const now = performance.now();
    const late = [...inflight].filter(([, t]) => now - t > TIMEOUT_MS);
    if (late.length) {
      late.forEach(([id]) => inflight.delete(id));  // the kernel is busy (a running cell) or gone: try a newer frame
      stats.textContent = "waiting for the kernel (is another cell running?)";
      maybeSend();
    }
  }, 1000);

  const onActive = () => (model.get("active") ? start() : stop("stopped"));
  toggle.addEventListener("click", () => {
    const active = !stream;
    if (active === model.get("active")) onActive();  // e.g. Start again after a refused permission
    model.set("active", active); model.save_changes();
  });
  snapButton.addEventListener("click", snapshot);
  model.on("change:active", onActive);
  model.on("msg:custom", onMessage);
  model.on("change:mirror", () => {
    video.style.transform = model.get("mirror") ? "scaleX(-1)" : "";
    if (stream) drawOverlay(lastFaces, lastSize[0], lastSize[1]);
  });
  video.style.transform = model.get("mirror") ? "scaleX(-1)" : "";
  if (model.get("active")) start(); else { toggle.textContent = "Start"; setStatus("stopped"); }

  return () => {
    alive = false;
    clearInterval(watchdog);
    if (waiting) clearTimeout(waiting);
    model.off("change:active", onActive);
    model.off("msg:custom", onMessage);
    stop(null);
  };
}

export default { render };
