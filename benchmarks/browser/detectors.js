// The networks' cost per 640x480 frame in ONNX Runtime Web (single-threaded WASM + SIMD, as on GitHub Pages):
// MediaPipe's BlazeFace (one 128x128 input) versus MTCNN (P-Net on the image pyramid facenet-pytorch builds
// for a 640x480 frame with min_face_size 32 and factor 0.709, R-Net and O-Net on typical candidate counts),
// then the emotion model named by ?emotion= on one face.
// benchmarks/browser_detectors.py serves this page and reads window.emolibBench.
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;

function rand(shape) {
  const n = shape.reduce((a, b) => a * b, 1), d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.random();
  return new ort.Tensor("float32", d, shape);
}

function pyramid(w, h, minFace = 32, factor = 0.709) {
  const levels = [];
  let scale = 12 / minFace, minl = Math.min(w, h) * scale;
  while (minl >= 12) {
    levels.push([Math.floor(h * scale + 1), Math.floor(w * scale + 1)]);
    scale *= factor; minl *= factor;
  }
  return levels;
}

async function median(fn, repeats) {
  await fn(); await fn();  // warm-up
  const t = [];
  for (let i = 0; i < repeats; i++) { const t0 = performance.now(); await fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

async function main() {
  const R = 30, out = {};
  const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const blaze = await ort.InferenceSession.create("models/blazeface_short_range.onnx", opts);
  const bx = { image: rand([1, 128, 128, 3]) };
  out.blazeface_ms = await median(() => blaze.run(bx), R);

  const pnet = await ort.InferenceSession.create("models/mtcnn_pnet.onnx", opts);
  const rnet = await ort.InferenceSession.create("models/mtcnn_rnet.onnx", opts);
  const onet = await ort.InferenceSession.create("models/mtcnn_onet.onnx", opts);
  const levels = pyramid(640, 480);
  const inputs = levels.map(([h, w]) => ({ image: rand([1, 3, h, w]) }));
  out.mtcnn_pyramid = levels;
  out.mtcnn_pnet_ms = await median(async () => { for (const x of inputs) await pnet.run(x); }, R);
  out.mtcnn_rnet_ms = {};
  for (const n of [8, 32, 64]) {
    const x = { image: rand([n, 3, 24, 24]) };
    out.mtcnn_rnet_ms[n] = await median(() => rnet.run(x), R);
  }
  out.mtcnn_onet_ms = {};
  for (const n of [1, 4]) {
    const x = { image: rand([n, 3, 48, 48]) };
    out.mtcnn_onet_ms[n] = await median(() => onet.run(x), R);
  }
  // the emotion model named in the address (?emotion=NAME): its file and input size from models/NAME.json
  const name = new URLSearchParams(location.search).get("emotion");
  const info = await (await fetch(`models/${name}.json`)).json();
  const emo = await ort.InferenceSession.create(`models/${info.file}`, opts);
  const ex = { image: rand([1, info.channels, info.size, info.size]) };
  out.emotion_model = info.name;
  out.emotion_input = [1, info.channels, info.size, info.size];
  out.emotion_ms = await median(() => emo.run(ex), R);
  out.repeats = R;
  out.user_agent = navigator.userAgent;
  out.cross_origin_isolated = self.crossOriginIsolated;
  return out;
}

window.emolibBench = { done: false };
main().then((r) => { window.emolibBench = { done: true, result: r }; document.getElementById("out").textContent = JSON.stringify(r, null, 1); })
  .catch((e) => { window.emolibBench = { done: true, error: String(e && e.stack || e) }; });
