// The live page's hand reader in a module Web Worker, so that hands are read on the machine's second core
// while the main thread follows the faces (live.js). It runs hands.js's HandReader (MediaPipe's palm detector
// and landmark network, lite, and the gesture MLP) with ONNX Runtime Web's ES module build, one WebAssembly
// thread, from the page's own staged files (emolib.livepage): nothing is fetched from elsewhere.
//
// Messages are handled one at a time, in the order they came (so a reset after a read applies after it):
//   {type: "init", ortUrl, modelsUrl, hands (the manifest's "hands"), sessionOptions}
//       -> {type: "ready"} or {type: "failed", error}
//   {type: "read", id, frame, generation, rgba (an ArrayBuffer, transferred), w, h, faces ([{box}]),
//    track, palmEvery (HandTracker's palm_every), padRetry}
//       -> {type: "hands", id, frame, generation, hands (HandReader.read's), ms (the detector's milliseconds,
//          HandReader.timing.hands), total (the whole read's milliseconds), palm (whether the palm detector
//          ran: with `track`, only while fewer than max_num_hands hands are followed), followed (with
//          `track`: the next read's hand regions, [{rect, score (its palm's)}]), sincePalm (reads since the
//          palm detector ran): HandReader.trackerState() after the read}
//          or {type: "error", id, frame, generation, error}
//   (id: 0 for a camera frame, else a photo's, which live.js awaits; generation: live.js's, echoed back)
//   {type: "reset"}: forget the followed hands (HandReader.reset: the camera stopped, or a photo came).
//   {type: "resources", id} -> {type: "resources", id, names}: the URLs the worker loaded (tests)

import * as ort from "./ort/ort.wasm.bundle.min.mjs";
import { HandReader } from "./hands.js";

let reader = null, queue = Promise.resolve();

async function handle(msg) {
  if (msg.type === "init") {
    try {
      ort.env.wasm.numThreads = 1;  // the worker is the page's second thread already
      ort.env.wasm.wasmPaths = msg.ortUrl;
      reader = await HandReader.create(ort, msg.modelsUrl, msg.hands, {}, msg.sessionOptions);
      self.postMessage({ type: "ready" });
    } catch (err) {
      self.postMessage({ type: "failed", error: String(err) });
    }
  } else if (msg.type === "read") {
    const { id, frame, generation } = msg;
    try {
      if (!reader) throw new Error("the hand models are not loaded");
      const t0 = performance.now();
      reader.settings.pad_retry = msg.padRetry;
      reader.settings.palm_every = msg.palmEvery || 1;
      const hands = await reader.read(new Uint8ClampedArray(msg.rgba), msg.w, msg.h, msg.faces, msg.track);
      self.postMessage({ type: "hands", id, frame, generation, hands, ms: reader.timing.hands,
                        total: performance.now() - t0, palm: reader.palmDetected, ...reader.trackerState() });
    } catch (err) {
      self.postMessage({ type: "error", id, frame, generation, error: String(err) });
    }
  } else if (msg.type === "reset") {
    if (reader) reader.reset();
  } else if (msg.type === "resources") {  // for tests: what the worker loaded (the page's list lacks it)
    self.postMessage({ type: "resources", id: msg.id, names: performance.getEntriesByType("resource").map((e) => e.name) });
  }
}

self.onmessage = ({ data }) => { queue = queue.then(() => handle(data)); };
