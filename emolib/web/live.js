// The book's live page: emotions on the reader's camera (or a photo), computed in the browser with
// ONNX Runtime Web. Nothing leaves the page: the frames go from the <video> element to a canvas, to
// BlazeFace (face boxes), MTCNN and the emotion model (engine.js, shared with the notebook widget's browser
// engine), to the overlay canvas (draw.js).
//
// The page's HTML (book/08b_try_it.md) holds an element #emolib-live with a video, an overlay canvas, a
// "Start camera" button (#emolib-live-start) and a photo input; `ort` is the global of ort.wasm.min.js.
// State for tests and benchmarks: #emolib-live's data-fps, data-faces, data-frames, data-emotion (the first
// face's label), data-status and data-first-ms (Start to the first annotated frame), updated at least once a
// second; with ?log=1 in the URL, window.emolibLive.log holds one entry per processed frame (faces, a
// 16x12 gray thumbnail of the frame and the exact RGB of a grid of its pixels, so that a test can tell
// which camera frame it was).
// Faces on the camera are followed from frame to frame (engine.js); ?detectEvery=1 runs the full detection on
// every frame instead; so does the #emolib-live-every checkbox, while the camera runs.
// Hands (hands.js): data-hands (how many) and data-gesture (the first hand's, left to right), the hands with
// their landmarks in window.emolibLive.hands; ?hands=0 or the #emolib-live-hands checkbox turns them off.
// The hands are read in a module Web Worker (hands_worker.js), in parallel with the face steps: on a camera
// frame, once its faces are found, the frame's pixels go to the worker if it is idle; if it is busy, the
// newest such frame is kept and goes the moment the worker returns (so it does not wait for the next frame's
// faces), the others get no hand read. Every frame is drawn with the latest hands the worker returned, read
// on an earlier frame (a hand result names the frame it was read on; ?log=1's handLog keeps that number). A
// photo waits for its hands. data-hands-engine says where the hands are read: "worker", or "main" (the main
// thread awaits the hands in every frame it reads them on) with ?handsWorker=0 or when the worker cannot
// start (a console warning says why). data-hand-reads (window.emolibLive.handReads) counts the hand results.
// On the camera the hands are followed from frame to frame (HandReader's track: MediaPipe's video mode, emolib's
// HandTracker): each read looks where the last read's landmarks were, and the palm detector runs only while fewer
// than max_num_hands hands are followed, and then, while at least one is, on every PALM_EVERY-th read only
// (HandTracker's palm_every; ?palmEvery=1: on every such read, as MediaPipe); ?handTrack=0 reads every camera
// frame anew (palm detector, then the landmarks), as a photo always is. window.emolibLive.handOptions says which.

import { drawFaces } from "./draw.js";
import { drawHands } from "./draw.js";
import { DEFAULTS, createEngine } from "./engine.js";
import { HandReader } from "./hands.js";

const HERE = new URL(".", import.meta.url).href;
const root = document.getElementById("emolib-live");
const $ = (sel) => root.querySelector(sel);
const video = $("video"), overlay = $(".emolib-live-overlay"), still = $(".emolib-live-photo");
const startButton = document.getElementById("emolib-live-start"), photoInput = $("input[type=file]");
const statusLine = $(".emolib-live-status");
const logging = new URLSearchParams(location.search).get("log") === "1";

const state = { status: "loading", frames: 0, fps: 0, faces: 0, emotion: "", firstMs: null, log: [],
                logging, ready: null, analyzeImage: null, stream: null };
window.emolibLive = state;

let engine = null, manifest = null, busy = false, startedAt = 0, lastAttrs = 0;
const stamps = [];
// ---- hands: a hook around the face steps (HandReader: hands.js). It wraps analyze() (analyzeWithHands) and
// loads its models after the faces' (handsReady), so the face steps know nothing of it.
const handsBox = document.getElementById("emolib-live-hands"), params = new URLSearchParams(location.search);
const everyBox = document.getElementById("emolib-live-every");
const HANDS_OFF = params.get("hands") === "0";
const CAMERA_PAD_RETRY = 0;  // the camera skips the detector's second look in a padded copy (see hands.js)
// the camera reads hands on every HANDS_EVERY-th frame and shows the last ones in between (?handsEvery=N),
// following them from read to read unless ?handTrack=0
const HANDS_EVERY = Math.max(1, +(params.get("handsEvery") || 1));
const HAND_TRACK = params.get("handTrack") !== "0";
// ?palmEvery=N (N >= 1; anything else, or none: 5)
const PALM_EVERY_ASKED = Math.floor(+params.get("palmEvery"));
const PALM_EVERY = PALM_EVERY_ASKED >= 1 ? PALM_EVERY_ASKED : 5;
state.handOptions = { track: HAND_TRACK, palmEvery: PALM_EVERY };
let handReader = null, handsReady = null;
state.hands = [];
state.handLog = [];  // with ?log=1: {frame, t, ms, palm, followed, sincePalm, hands: [{handedness, gesture, wrist}]} per hand result
state.handReads = 0;  // hand results so far (camera and photos)
state.handsEngine = "";  // "worker" or "main" once the hand models are loaded ("" without hands)
const WANT_WORKER = params.get("handsWorker") !== "0";
const SESSION_OPTIONS = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
// the worker (hands_worker.js): `handsBusy` while it reads a camera frame; `generation` changes when the camera
// stops or a photo comes, so that a result read before is dropped; `waiting`: the photos' reads by id
let worker = null, handsBusy = false, generation = 0, nextId = 1, missed = null, workerErrors = 0;
const waiting = new Map();
const INIT_TIMEOUT_MS = 60000;  // the worker's models not ready by then: the main thread reads the hands
const MAX_WORKER_ERRORS = 3;  // camera reads failing in a row before the main thread takes over
const READ_TIMEOUT_MS = 10000;  // a read unanswered by then (a hung worker): the main thread takes over
let readTimer = null;  // the camera read in flight's timeout

function startWorker() {  // resolves true once its models are loaded, false (and a warning) if it cannot start
  return new Promise((resolve) => {
    const fail = (why) => {
      console.warn(`emolib live page: hands on the main thread, the hand worker did not start: ${why}`);
      if (worker) worker.terminate();
      worker = null;
      resolve(false);
    };
    if (typeof Worker === "undefined") { fail("this browser has no Web Workers"); return; }
    try {
      worker = new Worker(HERE + "hands_worker.js", { type: "module" });
    } catch (err) { fail(err); return; }
    const timer = setTimeout(() => fail(`its models were not ready within ${INIT_TIMEOUT_MS / 1000} s`),
                             INIT_TIMEOUT_MS);
    worker.onerror = (ev) => { clearTimeout(timer); fail(ev.message || "its script did not load"); };
    worker.onmessage = ({ data }) => {
      if (data.type === "ready") {
        clearTimeout(timer);
        worker.onmessage = onWorkerMessage; worker.onerror = (ev) => abandonWorker(ev.message || String(ev));
        resolve(true);
      } else if (data.type === "failed") { clearTimeout(timer); fail(data.error); }
    };
    worker.postMessage({ type: "init", ortUrl: HERE + "ort/", modelsUrl: HERE + "models/", hands: manifest.hands,
                         sessionOptions: SESSION_OPTIONS });
  });
}

// palm: whether the palm detector ran on this read; followed, sincePalm: the worker's tracker state after it
function logHands(frame, ms, hands, palm, followed, sincePalm) {
  state.handReads += 1;
  if (logging) {
    state.handLog.push({ frame, t: performance.now(), ms, palm, followed, sincePalm,
                         hands: hands.map((hd) => ({ handedness: hd.handedness, gesture: hd.gesture,
                                                     wrist: hd.landmarks[0] })) });
  }
}

function onWorkerMessage({ data }) {
  const photo = waiting.get(data.id);
  if (photo) {
    waiting.delete(data.id);
    if (data.type === "hands") { logHands(data.frame, data.ms, data.hands, data.palm); photo.resolve(data.hands); }
    else if (data.type === "resources") photo.resolve(data.names);
    else photo.reject(new Error(data.error));
    return;
  }
  handsBusy = false;
  clearTimeout(readTimer);
  if (data.type === "error") {  // no hands rather than old ones; a worker that keeps failing is given up
    console.warn(`emolib live page: the hand worker: ${data.error}`);
    state.hands = [];
    workerErrors += 1;
    if (workerErrors >= MAX_WORKER_ERRORS) { abandonWorker(`${workerErrors} reads failed in a row`); return; }
  } else if (data.generation === generation && state.stream && handsOn()) {  // else stale: a stop, a photo
    workerErrors = 0;
    logHands(data.frame, data.ms, data.hands, data.palm, data.followed, data.sincePalm);
    state.hands = data.hands;
  }
  if (missed && state.stream && handsOn()) {  // a frame came while the worker read: it goes now
    const m = missed;
    missed = null; handsBusy = true;
    postRead(m.rgba, m.w, m.h, m.faces, false, m.frame);
  }
}

// The worker failed (an error event, or reads failing in a row): it is stopped, its pending photo reads are
// rejected (the photo then reads on the main thread), and the main thread takes over (its models load now).
function abandonWorker(why) {
  if (!worker) return;
  console.warn(`emolib live page: the hand worker failed (${why}); hands on the main thread`);
  worker.onmessage = null; worker.onerror = null;
  worker.terminate();
  clearTimeout(readTimer);
  worker = null; handsBusy = false; missed = null; workerErrors = 0;
  generation += 1;  // nothing read before comes back now, but the next camera frame reads again
  state.hands = [];
  waiting.forEach((p) => p.reject(new Error(`the hand worker failed: ${why}`)));
  waiting.clear();
  state.handsEngine = "";
  handsReady = loadMainHands();
}

// For tests: the URLs the hand worker loaded (its own resource timing, not in the page's), [] without it.
state.workerResources = () => {
  if (!worker) return Promise.resolve([]);
  const id = nextId++;
  return new Promise((resolve, reject) => { waiting.set(id, { resolve, reject }); worker.postMessage({ type: "resources", id }); });
};

// Posts a frame's pixels (a copy: the caller's stay usable) to the worker; the message names the frame.
function postRead(rgba, w, h, faces, still, frame, id = 0) {
  const copy = rgba.slice();
  if (!id) {  // a camera read: the worker must answer in time
    clearTimeout(readTimer);
    readTimer = setTimeout(() => abandonWorker(`a read took more than ${READ_TIMEOUT_MS / 1000} s`), READ_TIMEOUT_MS);
  }
  worker.postMessage({ type: "read", id, frame, generation, rgba: copy.buffer, w, h, faces: faces.map((f) => ({ box: f.box })),
                       track: !still && HAND_TRACK, palmEvery: PALM_EVERY,
                       padRetry: still ? manifest.hands.settings.pad_retry : CAMERA_PAD_RETRY }, [copy.buffer]);
}

async function loadMainHands() {
  try {
    handReader = await HandReader.create(ort, HERE + "models/", manifest.hands, {}, SESSION_OPTIONS);
    state.handsEngine = "main";
  } catch (err) {  // the faces work without the hands
    console.warn(`emolib live page: hands are off, their models did not load: ${err}`);
    if (handsBox) { handsBox.checked = false; handsBox.disabled = true; }
  }
}

async function loadHands() {
  if (HANDS_OFF && handsBox) handsBox.checked = false;
  if (!manifest.hands) return;
  if (WANT_WORKER && await startWorker()) { state.handsEngine = "worker"; return; }
  await loadMainHands();
}

const handsOn = () => (handsBox ? handsBox.checked : !HANDS_OFF);

// Hands of a camera frame (the worker: posted if idle, not awaited; the main thread: awaited) or a photo.
// `gen`: the generation when the frame was taken; a camera frame from before a stop or a photo reads none.
async function readHands(rgba, w, h, faces, still, gen = generation) {
  if (still) await handsReady;  // a photo waits for the hand models; the camera goes on without them
  if (!(worker || handReader) || !handsOn() || (!still && gen !== generation)) return [];
  const frame = state.frames + 1;  // the number record() gives this frame
  if (worker) {
    if (still) {
      const id = nextId++;
      const hands = new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        setTimeout(() => reject(new Error(`no answer within ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS);
      });
      postRead(rgba, w, h, faces, true, frame, id);
      try {
        return await hands;
      } catch (err) {  // the worker failed on it (abandonWorker ran, or it will): read it on the main thread
        abandonWorker(String(err));
        return readHands(rgba, w, h, faces, true);
      }
    }
    if (state.frames % HANDS_EVERY === 0) {
      if (!handsBusy) { handsBusy = true; missed = null; postRead(rgba, w, h, faces, false, frame); }
      else missed = { rgba, w, h, faces, frame };  // the newest frame the busy worker missed: read once it is idle
    }
    return state.hands;
  }
  if (!still && state.frames % HANDS_EVERY !== 0) return state.hands;
  handReader.settings.pad_retry = still ? manifest.hands.settings.pad_retry : CAMERA_PAD_RETRY;
  handReader.settings.palm_every = PALM_EVERY;
  const hands = await handReader.read(rgba, w, h, faces, !still && HAND_TRACK);
  if (!still && gen !== generation) return [];  // the camera stopped (or a photo came) meanwhile: stale
  const { followed, sincePalm } = handReader.trackerState();
  logHands(frame, handReader.timing.hands, hands, handReader.palmDetected, followed, sincePalm);
  return hands;
}

// Forget the hands (and the worker's or main thread's followed hands): the camera stopped, or a photo comes.
function resetHands() {
  generation += 1;
  state.hands = []; missed = null;
  if (handReader) handReader.reset();
  if (worker) worker.postMessage({ type: "reset" });
}

async function analyzeWithHands(source, w, h, still = false, gen = generation) {
  const result = await analyze(source, w, h, still);
  const hands = await readHands(result.rgba, w, h, result.faces, still, gen);
  if (still || gen === generation) state.hands = hands;
  return result;
}

function setStatus(text) {
  state.status = text;
  statusLine.textContent = text;
  root.dataset.status = text;
}

function publish(force = false) {
  const now = performance.now();
  if (!force && now - lastAttrs < 250) return;
  lastAttrs = now;
  root.dataset.fps = state.fps.toFixed(1);
  root.dataset.faces = String(state.faces);
  root.dataset.frames = String(state.frames);
  root.dataset.emotion = state.emotion;
  if (state.firstMs !== null) root.dataset.firstMs = state.firstMs.toFixed(0);
  root.dataset.hands = String(state.hands.length); root.dataset.gesture = state.hands.length ? state.hands[0].gesture : "";
  root.dataset.handsEngine = state.handsEngine; root.dataset.handReads = String(state.handReads);
  if (state.stream) setStatus(`${state.fps.toFixed(1)} fps · ${state.faces} face${state.faces === 1 ? "" : "s"}`);
}
setInterval(() => publish(true), 500);

async function load() {
  // GitHub Pages sends no COOP/COEP headers, so no WebAssembly threads: one. A server that sends them
  // (the page is then crossOriginIsolated) may ask for more with ?threads=N (benchmarks/live_page_steps.py).
  const asked = Math.floor(+params.get("threads")) || 1;  // a missing or unreadable value: one thread
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, Math.min(4, asked)) : 1;
  ort.env.wasm.wasmPaths = HERE + "ort/";
  manifest = await (await fetch(HERE + "models/manifest.json")).json();
  // ?detectEvery=N: the full face detection on every N-th camera frame (1: on every frame, no following)
  const every = Math.floor(+params.get("detectEvery"));
  engine = await createEngine(ort, manifest, (file) => HERE + "models/" + file,  // engine.js: the frame steps
                              every >= 1 ? { detectEvery: every } : {});
  state.options = engine.options;  // for tests: detectEvery, trackGrow and keepScore of the face tracking
  // The #emolib-live-every checkbox: the full detection on every frame (the Python pipeline's boxes and
  // emotions, at about 15 fps against 28 on a 2-core machine), or faces followed between full detections.
  const followEvery = engine.options.detectEvery > 1 ? engine.options.detectEvery : DEFAULTS.detectEvery;
  if (everyBox) {  // disabled in the page's HTML until the engine is there
    everyBox.checked = engine.options.detectEvery === 1;
    everyBox.addEventListener("change", () => { engine.options.detectEvery = everyBox.checked ? 1 : followEvery; });
    everyBox.disabled = false;
  }
  setStatus(`ready: ${manifest.emotion.name} (${manifest.emotion.classes.length} emotions) and BlazeFace`);
}

// Every face of an image drawn at w x h (engine.js, shared with the notebook widget's browser engine).
const analyze = (source, w, h, still = false) => engine.analyze(source, w, h, still);

function thumbnail(rgba, w, h, tw = 16, th = 12) {
  const sums = new Float64Array(tw * th), counts = new Float64Array(tw * th);
  for (let y = 0; y < h; y += 2) {
    const ty = Math.min(th - 1, Math.floor(y * th / h));
    for (let x = 0; x < w; x += 2) {
      const p = (y * w + x) * 4, k = ty * tw + Math.min(tw - 1, Math.floor(x * tw / w));
      sums[k] += 0.299 * rgba[p] + 0.587 * rgba[p + 1] + 0.114 * rgba[p + 2]; counts[k] += 1;
    }
  }
  return Array.from(sums, (s, k) => Math.round(10 * s / counts[k]) / 10);
}

// The exact RGB of every 20th pixel (from the 10th) across and down: a test finds by it which frame of its
// camera file this was, and checks that it decodes the frames to the page's very pixels.
function probe(rgba, w, h, step = 20) {
  const out = [];
  for (let y = step / 2; y < h; y += step) {
    for (let x = step / 2; x < w; x += step) {
      const p = (y * w + x) * 4;
      out.push(rgba[p], rgba[p + 1], rgba[p + 2]);
    }
  }
  return out;
}

function record(faces, rgba, w, h) {
  const now = performance.now();
  state.frames += 1;
  stamps.push(now);
  while (stamps.length > 2 && now - stamps[0] > 2000) stamps.shift();
  state.fps = stamps.length > 1 ? (stamps.length - 1) * 1000 / (stamps[stamps.length - 1] - stamps[0]) : 0;
  state.faces = faces.length;
  state.emotion = faces.length ? faces[0].emotion : "";
  if (state.firstMs === null && faces.length && startedAt) state.firstMs = now - startedAt;
  if (logging) {
    state.log.push({ frame: state.frames, t: now, thumb: thumbnail(rgba, w, h), probe: probe(rgba, w, h),
                     timing: { ...engine.timing },
                     faces: faces.map((f) => ({ box: f.box, emotion: f.emotion, probabilities: f.probabilities })) });
  }
  publish();
}

function onFrame() {
  if (!state.stream) return;
  video.requestVideoFrameCallback(onFrame);
  if (busy) return;  // the previous frame is still being read: this one is skipped
  busy = true;
  const w = video.videoWidth, h = video.videoHeight, gen = generation;
  analyzeWithHands(video, w, h, false, gen).then(({ faces, rgba }) => {
    if (!state.stream || gen !== generation) return;  // stopped (or restarted) while this frame was read
    drawFaces(overlay, faces, w, h);
    drawHands(overlay, state.hands, w, h);
    record(faces, rgba, w, h);
  }).catch((err) => setStatus(`error: ${err}`)).finally(() => { busy = false; });
}

async function start() {
  if (state.stream) { stop(); return; }
  await state.ready;
  startedAt = performance.now();
  state.firstMs = null;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    setStatus(`no camera: ${err.name || err}. Try a photo instead.`);
    return;
  }
  still.hidden = true; video.hidden = false;
  video.srcObject = state.stream;
  await video.play();
  startButton.textContent = "Stop camera";
  video.requestVideoFrameCallback(onFrame);
}

function stop() {
  state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  engine.reset();
  resetHands();  // the next start (or photo) reads its hands afresh
  video.srcObject = null;
  startButton.textContent = "Start camera";
  setStatus("stopped");
}

async function analyzePhoto(file) {
  await state.ready;
  if (state.stream) stop();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (err) {
    setStatus(`${file.name} is not an image this browser can read (${err.name || err})`);
    return null;
  }
  const scale = Math.min(1, 1280 / Math.max(bitmap.width, bitmap.height));
  const w = Math.round(bitmap.width * scale), h = Math.round(bitmap.height * scale);
  resetHands();
  const { faces, rgba } = await analyzeWithHands(bitmap, w, h, true);
  still.width = w; still.height = h;
  still.getContext("2d").drawImage(bitmap, 0, 0, w, h);
  still.hidden = false; video.hidden = true;
  drawFaces(overlay, faces, w, h);
  drawHands(overlay, state.hands, w, h);
  record(faces, rgba, w, h);
  setStatus(`${file.name}: ${faces.length} face${faces.length === 1 ? "" : "s"}` +
            (faces.length ? ` (${faces.map((f) => f.emotion).join(", ")})` : ""));
  publish(true);
  return faces;
}

state.analyzeImage = analyzePhoto;
state.ready = load().catch((err) => { setStatus(`could not load the models: ${err}`); throw err; });
handsReady = state.ready.then(loadHands, () => {});
startButton.addEventListener("click", () => { start(); });
photoInput.addEventListener("change", () => { if (photoInput.files[0]) analyzePhoto(photoInput.files[0]); });
// hands ticked or unticked: nothing read before shows again, and a read in flight is dropped
if (handsBox) handsBox.addEventListener("change", () => resetHands());
