// The in-browser engine: faces and emotions of an image or camera frame, with ONNX Runtime Web. Shared by the
// book's live page (live.js) and the Jupyter widget's browser engine (webcam.js, engine="browser"), so both
// read a frame the same way: BlazeFace (face.js) proposes faces, MTCNN (mtcnn.js) puts the boxes where the
// Python pipeline's MTCNN does, the crops are preprocessed as in Python (face.js) and the emotion model reads
// them in one batch. On a camera the faces are then followed by the method of emolib.faces.FaceTracker
// (which the kernel widget runs, there with a full detection every 5th frame): O-Net alone on the last
// frame's boxes, the full detection on every detectEvery-th processed frame and whenever a face is lost.
//
//   const engine = await createEngine(ort, manifest, (file) => url or bytes of models/<file>);
//   const { faces, rgba } = await engine.analyze(videoOrBitmap, w, h, still);
//
// `ort` is onnxruntime-web's namespace (the page's global, or the module the widget imports); its env
// (wasm paths or binary, threads) is set by the caller. `manifest` is models/manifest.json as
// emolib.webengine.export_models writes it. A face: {box: [x1, y1, x2, y2] in the frame's
// pixels, score, emotion, p, probabilities: {name: p}}.

import { DETECTOR_SIZE, decodeBlazeFace, letterbox, preprocessFace, toFrameBox } from "./face.js";
import { detectInRegions, trackBoxes } from "./mtcnn.js";

export const DEFAULTS = {
  maxFaces: 4,  // faces read per camera frame
  maxPhotoFaces: 64,
  minScore: 0.95,  // O-Net's face probability, as EmotionPipeline(min_score=0.95)
  minFace: 32,  // MTCNN's min_face_size, as EmotionPipeline's default
  regionMargin: 0.4,  // MTCNN looks at BlazeFace's box plus this share of its size on each side
  // Following faces on a camera, as emolib.faces.FaceTracker(grow=0.05, keep_score=0.9): O-Net on each box
  // of the last frame grown by trackGrow, a face kept while O-Net's probability is above keepScore.
  trackGrow: 0.05,
  keepScore: 0.9,
  // The full detection (BlazeFace, then MTCNN around its faces: about 50-65 ms on one thread, against a few
  // ms for O-Net) on every detectEvery-th processed frame, and whenever a followed face is lost: a new face
  // shows within about a second at 30 processed frames a second (faces only), later when fewer are processed
  // (about 2.5 s at the 12 of the page with hands on every frame). 1: the full detection on every frame.
  detectEvery: 30,
};

// [x1, y1, x2, y2] grown by `margin` times its longer side on each side.
function expand([x1, y1, x2, y2], margin) {
  const m = margin * Math.max(x2 - x1, y2 - y1);
  return [x1 - m, y1 - m, x2 + m, y2 + m];
}

export async function createEngine(ort, manifest, source, options = {}) {
  const opt = { ...DEFAULTS, ...options };
  const sessionOptions = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const open = async (file) => ort.InferenceSession.create(await source(file), sessionOptions);
  const [detector, pnet, rnet, onet, emotion] = await Promise.all(
    [manifest.detector, ...manifest.refiners, manifest.emotion.file].map(open));
  const sessions = { detector, pnet, rnet, onet, emotion };
  const work = document.createElement("canvas"), workCtx = work.getContext("2d", { willReadFrequently: true });
  const det = document.createElement("canvas"), detCtx = det.getContext("2d", { willReadFrequently: true });
  det.width = det.height = DETECTOR_SIZE;
  const timing = {};
  let tracked = [], sinceFull = 0, size = "", generation = 0;

  // BlazeFace on the letterboxed frame (the work canvas): regions where MTCNN then looks.
  async function blazeFaceRegions(w, h) {
    const lb = letterbox(w, h);
    detCtx.fillStyle = "black";
    detCtx.fillRect(0, 0, DETECTOR_SIZE, DETECTOR_SIZE);
    detCtx.drawImage(work, lb.x, lb.y, lb.w, lb.h);
    const px = detCtx.getImageData(0, 0, DETECTOR_SIZE, DETECTOR_SIZE).data;
    const input = new Float32Array(DETECTOR_SIZE * DETECTOR_SIZE * 3);
    for (let i = 0, j = 0; i < px.length; i += 4) {
      input[j++] = px[i] / 255; input[j++] = px[i + 1] / 255; input[j++] = px[i + 2] / 255;
    }
    const out = await detector.run({ image: new ort.Tensor("float32", input, [1, DETECTOR_SIZE, DETECTOR_SIZE, 3]) });
    return decodeBlazeFace(out.regressors.data, out.classificators.data).slice(0, 2 * opt.maxFaces)
      .map((d) => expand(toFrameBox(d, lb, w, h, manifest.calibration), opt.regionMargin));
  }

  // Boxes clipped to the frame, those under a pixel dropped (emolib.faces' _clip_and_sort).
  function clipped(found, w, h) {
    const clip = (v, hi) => Math.max(0, Math.min(hi, v));
    return found.map((f) => ({ box: [clip(f.box[0], w), clip(f.box[1], h), clip(f.box[2], w), clip(f.box[3], h)],
                               score: f.score }))
      .filter((f) => f.box[2] - f.box[0] >= 1 && f.box[3] - f.box[1] >= 1);
  }

  // MTCNN as the Python pipeline runs it, in the regions (mtcnn.js): Python's boxes, clipped to the frame.
  async function refine(regions, rgba, w, h) {
    const found = await detectInRegions(ort, sessions, rgba, w, h, regions, { minFace: opt.minFace, timing });
    return clipped(found.filter((f) => f.score >= opt.minScore), w, h);
  }

  // The last frame's faces followed by O-Net alone (FaceTracker's step between full detections), or null
  // when a full detection is due or O-Net lost one of them.
  async function follow(rgba, w, h) {
    if (!tracked.length || sinceFull >= opt.detectEvery - 1) return null;
    const found = clipped(await trackBoxes(ort, sessions, rgba, w, h, tracked.map((f) => f.box),
                                           { grow: opt.trackGrow, keepScore: opt.keepScore }), w, h);
    return found.length < tracked.length ? null : found;
  }

  async function classify(faces, rgba, w, h) {
    const S = manifest.emotion.size, classes = manifest.emotion.classes, k = classes.length;
    const batch = new Float32Array(faces.length * S * S);
    faces.forEach((f, i) => batch.set(preprocessFace(rgba, w, h, f.box, { size: S }), i * S * S));
    const res = await emotion.run({ image: new ort.Tensor("float32", batch, [faces.length, 1, S, S]) });
    const p = res.probabilities.data;
    faces.forEach((f, i) => {
      f.probabilities = {};
      let best = 0;
      classes.forEach((c, j) => { f.probabilities[c] = p[i * k + j]; if (p[i * k + j] > p[i * k + best]) best = j; });
      f.emotion = classes[best];
      f.p = p[i * k + best];
    });
  }

  // Every face of an image drawn at w x h: boxes in its pixels, emotions and probabilities.
  // A photo (still): MTCNN on the whole image, as the Python pipeline (BlazeFace's short range misses small
  // faces). The camera: the faces of the last frame followed by O-Net (follow), or the full detection:
  // BlazeFace, then MTCNN around its faces. timing.mode says which ("photo", "tracked" or "full").
  async function analyze(image, w, h, still = false) {
    const tFrame = performance.now(), started = generation;
    for (const key of Object.keys(timing)) delete timing[key];  // this frame's steps only
    if (!still && size !== `${w}x${h}`) { tracked = []; size = `${w}x${h}`; }  // a new camera or resolution
    if (work.width !== w || work.height !== h) { work.width = w; work.height = h; }
    workCtx.drawImage(image, 0, 0, w, h);
    const rgba = workCtx.getImageData(0, 0, w, h).data;
    const t0 = performance.now();
    let faces = still ? null : await follow(rgba, w, h);
    timing.detector = 0;
    timing.mtcnn = performance.now() - t0;  // O-Net following the faces (none for a photo)
    const current = () => started === generation;  // no reset() since this frame began
    if (faces) {
      if (current()) sinceFull += 1;
      timing.mode = "tracked";
    } else {
      const t1 = performance.now();
      const regions = still ? [[0, 0, w, h]] : await blazeFaceRegions(w, h);
      const t2 = performance.now();
      timing.detector = t2 - t1;
      faces = (await refine(regions, rgba, w, h)).slice(0, still ? opt.maxPhotoFaces : opt.maxFaces);
      timing.mtcnn += performance.now() - t2;
      if (!still && current()) sinceFull = 0;
      timing.mode = still ? "photo" : "full";
    }
    // The next camera frame follows these faces, unless this is a photo, or reset() was called while this
    // frame was read (a stop, a photo): the frame that finishes late must not bring back what was forgotten.
    if (!still && current()) tracked = faces;
    faces.sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);  // left to right, as the Python pipeline
    if (faces.length) {
      const t2 = performance.now();
      await classify(faces, rgba, w, h);
      timing.emotion = performance.now() - t2;
    }
    timing.total = performance.now() - tFrame;
    return { faces, rgba };
  }

  // Forget the followed faces (a new camera, a stop): the next camera frame runs the full detection, also
  // when a frame that was being read at the reset finishes after it.
  function reset() { tracked = []; sinceFull = 0; generation += 1; }

  return { analyze, reset, timing, manifest, options: opt };
}
