// MTCNN as emolib's Python pipeline runs it (emolib/faces.py, mtcnn_detect, after facenet-pytorch),
// restricted to regions around the faces BlazeFace found: the image pyramid made as Python makes it
// (each level from the previous one with PIL's BOX filter), P-Net on each level's part around the faces
// (P-Net is convolutional with stride 2, so its outputs there equal the whole level's), then the same
// NMS passes, R-Net, O-Net and regressions. The boxes come out where Python's MTCNN puts them.
// Between two full detections of a camera stream, trackBoxes runs O-Net alone on the last frame's boxes, as
// emolib.faces.FaceTracker does.

import { BOX, PRECISION_BITS, bbreg, mtcnnRegion, resampleCoeffs, rerec, roiAlign } from "./face.js";

// Image.resize((ow, oh), Image.BOX) of an RGB(A) uint8 image with `ch` channels per pixel; returns RGB.
// Integer arithmetic as Pillow's (the sums stay below 2^31: 255 times coefficients that sum to 2^22).
export function resizeBox(src, w, h, ch, ow, oh) {
  const cx = resampleCoeffs(w, ow, BOX), cy = resampleCoeffs(h, oh, BOX), half = 1 << (PRECISION_BITS - 1);
  const tmp = new Uint8ClampedArray(h * ow * 3), dst = new Uint8ClampedArray(ow * oh * 3);
  const bx = cx.bounds, kx = cx.kk, kxs = cx.ksize, by = cy.bounds, ky = cy.kk, kys = cy.ksize;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let xx = 0; xx < ow; xx++) {
      const xmin = bx[2 * xx], n = bx[2 * xx + 1], k = xx * kxs;
      let s0 = half, s1 = half, s2 = half;
      for (let x = 0; x < n; x++) {
        const p = (row + xmin + x) * ch, c = kx[k + x];
        s0 = (s0 + src[p] * c) | 0; s1 = (s1 + src[p + 1] * c) | 0; s2 = (s2 + src[p + 2] * c) | 0;
      }
      const q = (y * ow + xx) * 3;
      tmp[q] = s0 >> PRECISION_BITS; tmp[q + 1] = s1 >> PRECISION_BITS; tmp[q + 2] = s2 >> PRECISION_BITS;
    }
  }
  for (let yy = 0; yy < oh; yy++) {
    const ymin = by[2 * yy], n = by[2 * yy + 1], k = yy * kys;
    for (let x = 0; x < ow; x++) {
      let s0 = half, s1 = half, s2 = half;
      for (let y = 0; y < n; y++) {
        const p = ((ymin + y) * ow + x) * 3, c = ky[k + y];
        s0 = (s0 + tmp[p] * c) | 0; s1 = (s1 + tmp[p + 1] * c) | 0; s2 = (s2 + tmp[p + 2] * c) | 0;
      }
      const q = (yy * ow + x) * 3;
      dst[q] = s0 >> PRECISION_BITS; dst[q + 1] = s1 >> PRECISION_BITS; dst[q + 2] = s2 >> PRECISION_BITS;
    }
  }
  return dst;
}

// The pyramid of emolib.faces.mtcnn_detect: scale 12 / min_face_size, then times factor while the short side >= 12.
export function pyramid(rgba, w, h, minFace = 32, factor = 0.709) {
  const levels = [];
  let scale = 12 / minFace, minl = Math.min(w, h) * scale, prev = rgba, pw = w, ph = h, ch = 4;
  while (minl >= 12) {
    const lw = Math.trunc(w * scale + 1), lh = Math.trunc(h * scale + 1);
    const img = resizeBox(prev, pw, ph, ch, lw, lh);
    levels.push({ img, w: lw, h: lh, scale });
    prev = img; pw = lw; ph = lh; ch = 3;
    scale *= factor; minl *= factor;
  }
  return levels;
}

function area(b) { return (b[2] - b[0]) * (b[3] - b[1]); }

// torchvision.ops.nms: keep the best, drop those with IoU > threshold; `mode` "min" is facenet's "Min".
export function nms(boxes, threshold, mode = "union") {
  const order = boxes.map((_, i) => i).sort((a, b) => boxes[b][4] - boxes[a][4]);
  const keep = [], dead = new Uint8Array(boxes.length);
  const plus = mode === "min" ? 1 : 0;  // facenet's numpy NMS counts the last pixel
  for (const i of order) {
    if (dead[i]) continue;
    keep.push(i);
    const a = boxes[i];
    for (const j of order) {
      if (dead[j] || j === i) continue;
      const b = boxes[j];
      const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + plus, ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + plus;
      if (iw <= 0 || ih <= 0) continue;
      const inter = iw * ih;
      const aa = (a[2] - a[0] + plus) * (a[3] - a[1] + plus), ab = (b[2] - b[0] + plus) * (b[3] - b[1] + plus);
      const o = mode === "min" ? inter / Math.min(aa, ab) : inter / (aa + ab - inter);
      if (o > threshold) dead[j] = 1;
    }
  }
  return keep.map((i) => boxes[i]);
}

// The part of a pyramid level around a frame region, with an even origin (P-Net's stride), as CHW 0..1.
function levelPart(level, region) {
  const s = level.scale, m = 6;
  let x0 = Math.max(0, Math.floor(region[0] * s) - m), y0 = Math.max(0, Math.floor(region[1] * s) - m);
  x0 -= x0 % 2; y0 -= y0 % 2;
  let x1 = Math.min(level.w, Math.ceil(region[2] * s) + m), y1 = Math.min(level.h, Math.ceil(region[3] * s) + m);
  // Sizes rounded up to 16 pixels, so that frame after frame P-Net sees a few input shapes only.
  x1 = Math.min(level.w, x0 + 16 * Math.ceil((x1 - x0) / 16));
  y1 = Math.min(level.h, y0 + 16 * Math.ceil((y1 - y0) / 16));
  const pw = x1 - x0, ph = y1 - y0;
  if (pw < 12 || ph < 12) return null;
  const data = new Float32Array(3 * pw * ph), plane = pw * ph;
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      const p = ((y0 + y) * level.w + x0 + x) * 3;
      for (let c = 0; c < 3; c++) data[c * plane + y * pw + x] = level.img[p + c] / 255;
    }
  }
  return { data, x0, y0, pw, ph };
}

// One of the later stages on its patches; the batch padded to a multiple of 8 (zeros, results ignored), so
// that frame after frame the network sees a few input shapes only.
async function stage(ort, net, squares, rgba, w, h, size, pad = 8) {
  const plane = 3 * size * size, n = pad * Math.ceil(squares.length / pad), input = new Float32Array(n * plane);
  squares.forEach((box, i) => roiAlign(rgba, w, h, mtcnnRegion(box, w, h), size, 2, input, i * plane));
  return net.run({ image: new ort.Tensor("float32", input, [n, 3, size, size]) });
}

// MTCNN's last stage on square candidates (emolib.faces.onet_stage): O-Net on their 48x48 patches; the
// candidates it scores above `threshold`, at their regressed boxes, as [x1, y1, x2, y2, p], before any NMS.
async function onetStage(ort, onet, squares, rgba, w, h, threshold) {
  const out = await stage(ort, onet, squares, rgba, w, h, 48, 2);
  const kept = [];
  squares.forEach((b, i) => {
    const p = out.probability.data[2 * i + 1];
    if (p > threshold) kept.push([...bbreg(b, Array.from(out.regression.data.subarray(4 * i, 4 * i + 4))), p]);
  });
  return kept;
}

function validBoxes(boxes, w, h) {
  return boxes.filter((b) => { const r = mtcnnRegion(b, w, h); return r[2] > r[0] && r[3] > r[1]; });
}

// MTCNN's three stages on the regions (frame pixels) where faces may be; returns [{box, score}]. `ort` is
// onnxruntime-web's namespace (the caller's: the page's global or the widget's imported module), `nets` its
// sessions {pnet, rnet, onet}.
export async function detectInRegions(ort, nets, rgba, w, h, regions, { minFace = 32, factor = 0.709,
                                                                       thresholds = [0.7, 0.8, 0.9], timing = {} } = {}) {
  if (!regions.length) return [];
  const t0 = performance.now();
  const levels = pyramid(rgba, w, h, minFace, factor);
  timing.pyramid = performance.now() - t0;
  let found = [];
  for (const level of levels) {
    const perLevel = [];
    for (const region of regions) {
      const part = levelPart(level, region);
      if (!part) continue;
      const out = await nets.pnet.run({ image: new ort.Tensor("float32", part.data, [1, 3, part.ph, part.pw]) });
      const [, , oh, ow] = out.probability.dims, prob = out.probability.data, reg = out.regression.data;
      const n = oh * ow;
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const score = prob[n + y * ow + x];
          if (score < thresholds[0]) continue;
          const gx = x + part.x0 / 2, gy = y + part.y0 / 2;  // P-Net's cell in the whole level
          perLevel.push([Math.floor((2 * gx + 1) / level.scale), Math.floor((2 * gy + 1) / level.scale),
                         Math.floor((2 * gx + 12) / level.scale), Math.floor((2 * gy + 12) / level.scale), score,
                         reg[y * ow + x], reg[n + y * ow + x], reg[2 * n + y * ow + x], reg[3 * n + y * ow + x],
                         level.scale, gx, gy]);
        }
      }
    }
    // Overlapping regions give the same cell twice: keep one.
    const seen = new Set();
    const unique = perLevel.filter((b) => { const k = `${b[10]},${b[11]}`; if (seen.has(k)) return false; seen.add(k); return true; });
    found = found.concat(nms(unique, 0.5));
  }
  timing.pnet = performance.now() - t0 - timing.pyramid;
  if (!found.length) return [];
  let boxes = nms(found, 0.7).map((b) => {
    const rw = b[2] - b[0], rh = b[3] - b[1];
    return rerec([b[0] + b[5] * rw, b[1] + b[6] * rh, b[2] + b[7] * rw, b[3] + b[8] * rh]);
  });
  boxes = validBoxes(boxes, w, h);
  timing.candidates = boxes.length;
  if (!boxes.length) return [];
  const t1 = performance.now();
  const out = await stage(ort, nets.rnet, boxes, rgba, w, h, 24);
  let kept = [];
  boxes.forEach((b, i) => {
    const p = out.probability.data[2 * i + 1];
    if (p > thresholds[1]) kept.push([b[0], b[1], b[2], b[3], p, ...out.regression.data.subarray(4 * i, 4 * i + 4)]);
  });
  boxes = validBoxes(nms(kept, 0.7).map((b) => rerec(bbreg(b, b.slice(5, 9)))), w, h);
  if (!boxes.length) return [];
  timing.rnet = performance.now() - t1;
  timing.survivors = boxes.length;
  kept = await onetStage(ort, nets.onet, boxes, rgba, w, h, thresholds[2]);
  timing.onet = performance.now() - t1 - timing.rnet;
  return nms(kept, 0.7, "min").map((b) => ({ box: b.slice(0, 4), score: b[4] }));
}

// The faces of a camera frame found from the previous frame's boxes, as emolib.faces.FaceTracker follows them
// between two full detections: each box grown by `grow` times its width and height on every side and made
// square, O-Net alone on its 48x48 patch, the faces O-Net keeps (probability above `keepScore`) at its
// regressed boxes, NMS at IoU 0.5. Returns [{box, score}] (not clipped to the frame: the caller clips).
export async function trackBoxes(ort, nets, rgba, w, h, boxes, { grow = 0.05, keepScore = 0.9 } = {}) {
  const squares = validBoxes(boxes.map(([x1, y1, x2, y2]) => {
    const bw = x2 - x1, bh = y2 - y1;
    return rerec([x1 - grow * bw, y1 - grow * bh, x2 + grow * bw, y2 + grow * bh]);
  }), w, h);
  if (!squares.length) return [];
  const kept = await onetStage(ort, nets.onet, squares, rgba, w, h, keepScore);
  return nms(kept, 0.5).map((b) => ({ box: b.slice(0, 4), score: b[4] }));
}
