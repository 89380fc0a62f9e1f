// Faces in the browser, as emolib's Python pipeline reads them (emolib/pipeline.py, emolib/faces.py):
// BlazeFace's anchors and decoding (MediaPipe's short-range face detector), the box calibration to
// MTCNN-like boxes, and the preprocessing of a face crop: square crop with margin (border pixels
// repeated), ITU-R 601 luma as PIL's convert("L"), PIL's bilinear resize (with its antialiasing and
// 8-bit fixed-point arithmetic), emolib's CLAHE, resize to the model's size, pixels in 0..1.

// ---------------------------------------------------------------- BlazeFace (short range)

// MediaPipe's SSD anchors for face_detection_short_range: 128x128 input, strides 8, 16, 16, 16,
// one aspect ratio, fixed anchor size, offset 0.5: 16x16x2 + 8x8x6 = 896 anchors (x, y centres in 0..1).
function makeAnchors() {
  const strides = [8, 16, 16, 16], anchors = [];
  let layer = 0;
  while (layer < strides.length) {
    let repeats = 0, last = layer;
    while (last < strides.length && strides[last] === strides[layer]) { repeats += 2; last++; }
    const cells = Math.ceil(128 / strides[layer]);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < repeats; k++) anchors.push([(x + 0.5) / cells, (y + 0.5) / cells]);
      }
    }
    layer = last;
  }
  return anchors;
}
export const ANCHORS = makeAnchors();
export const DETECTOR_SIZE = 128;

function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// Boxes (x1, y1, x2, y2 in the detector's 0..1 input), scores and 6 keypoints from the network's outputs,
// with MediaPipe's settings: sigmoid scores clipped at 100, threshold 0.5, weighted NMS at IoU 0.3.
export function decodeBlazeFace(regressors, classificators, { minScore = 0.5, iouThreshold = 0.3 } = {}) {
  const cand = [];
  const logitMin = Math.log(minScore / (1 - minScore));
  for (let i = 0; i < ANCHORS.length; i++) {
    const logit = Math.max(-100, Math.min(100, classificators[i]));
    if (logit < logitMin) continue;
    const r = regressors.subarray(i * 16, i * 16 + 16), [ax, ay] = ANCHORS[i], S = DETECTOR_SIZE;
    const cx = r[0] / S + ax, cy = r[1] / S + ay, w = r[2] / S, h = r[3] / S;
    const kp = [];
    for (let k = 0; k < 6; k++) kp.push([r[4 + 2 * k] / S + ax, r[5 + 2 * k] / S + ay]);
    cand.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: 1 / (1 + Math.exp(-logit)), kp });
  }
  cand.sort((a, b) => b.score - a.score);
  const out = [];
  while (cand.length) {
    const best = cand[0], group = cand.filter((c) => iou(best.box, c.box) > iouThreshold);
    const rest = cand.filter((c) => iou(best.box, c.box) <= iouThreshold);
    let total = 0;
    const box = [0, 0, 0, 0], kp = best.kp.map(() => [0, 0]);
    for (const c of group) {
      total += c.score;
      for (let j = 0; j < 4; j++) box[j] += c.box[j] * c.score;
      c.kp.forEach((p, k) => { kp[k][0] += p[0] * c.score; kp[k][1] += p[1] * c.score; });
    }
    out.push({ box: box.map((v) => v / total), score: best.score, kp: kp.map(([x, y]) => [x / total, y / total]) });
    cand.length = 0;
    cand.push(...rest);
  }
  return out;
}

// The letterbox MediaPipe uses: the frame scaled to fit 128x128, centred, the rest black.
export function letterbox(width, height) {
  const scale = DETECTOR_SIZE / Math.max(width, height);
  const w = width * scale, h = height * scale;
  return { scale, w, h, x: (DETECTOR_SIZE - w) / 2, y: (DETECTOR_SIZE - h) / 2 };
}

// A detector box (0..1 of the letterboxed input) in frame pixels, moved and scaled to where MTCNN (the
// Python pipeline's detector) puts its box on the same face: centre shift and size factors from
// tools/calibrate_face_boxes.py (models/manifest.json, "calibration"), then clipped to the frame.
export function toFrameBox(det, lb, width, height, cal) {
  const S = DETECTOR_SIZE;
  const x1 = (det.box[0] * S - lb.x) / lb.scale, y1 = (det.box[1] * S - lb.y) / lb.scale;
  const x2 = (det.box[2] * S - lb.x) / lb.scale, y2 = (det.box[3] * S - lb.y) / lb.scale;
  let cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, w = x2 - x1, h = y2 - y1;
  if (cal) { cx += cal.dx * w; cy += cal.dy * h; [w, h] = [cal.sw * w, cal.sh * h]; }
  const clip = (v, hi) => Math.max(0, Math.min(hi, v));
  return [clip(cx - w / 2, width), clip(cy - h / 2, height), clip(cx + w / 2, width), clip(cy + h / 2, height)];
}

// ---------------------------------------------------------------- preprocessing (as emolib.pipeline)

export const PRECISION_BITS = 32 - 8 - 2;  // Pillow's fixed-point resampling of 8-bit images

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Pillow's resampling filters (libImaging/Resample.c): the support of each and its weight function.
export const BILINEAR = { name: "bilinear", support: 1.0, weight: (t) => { t = Math.abs(t); return t < 1 ? 1 - t : 0; } };
export const BOX = { name: "box", support: 0.5, weight: (t) => (t > -0.5 && t <= 0.5 ? 1 : 0) };
const coeffCache = new Map();

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for `filter` (BILINEAR or BOX), fixed point, cached:
// per output pixel the window start and length (bounds), then `ksize` coefficients (kk). The one copy
// of this loop: resizeBilinear below and mtcnn.js's resizeBox use it.
export function resampleCoeffs(inSize, outSize, filter) {
  const key = `${filter.name}:${inSize}:${outSize}`;
  if (coeffCache.has(key)) return coeffCache.get(key);
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1, bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5), xmax = Math.trunc(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      pre[x] = w; ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? pre[x] / ww : pre[x];
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin; bounds[2 * xx + 1] = xmax;
  }
  const c = { ksize, bounds, kk };
  coeffCache.set(key, c);
  return c;
}

const clip8 = (ss) => { const v = Math.floor(ss / (1 << PRECISION_BITS)); return v < 0 ? 0 : v > 255 ? 255 : v; };

// Image.resize((out, out), Image.BILINEAR) of a square uint8 gray image: horizontal pass, then vertical.
export function resizeBilinear(src, size, out) {
  if (size === out) return src;
  const c = resampleCoeffs(size, out, BILINEAR), tmp = new Uint8Array(size * out), dst = new Uint8Array(out * out);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < size; y++) {
    for (let xx = 0; xx < out; xx++) {
      const xmin = c.bounds[2 * xx], n = c.bounds[2 * xx + 1], k = xx * c.ksize;
      let ss = half;
      for (let x = 0; x < n; x++) ss += src[y * size + xmin + x] * c.kk[k + x];
      tmp[y * out + xx] = clip8(ss);
    }
  }
  for (let yy = 0; yy < out; yy++) {
    const ymin = c.bounds[2 * yy], n = c.bounds[2 * yy + 1], k = yy * c.ksize;
    for (let x = 0; x < out; x++) {
      let ss = half;
      for (let y = 0; y < n; y++) ss += tmp[(ymin + y) * out + x] * c.kk[k + y];
      dst[yy * out + x] = clip8(ss);
    }
  }
  return dst;
}

// emolib.faces.clahe: OpenCV's CLAHE (clip limit, tile grid) as emolib writes it in numpy.
export function clahe(gray, h, w, clipLimit = 2.0, grid = 8) {
  const th = Math.ceil(h / grid), tw = Math.ceil(w / grid), area = th * tw, n = grid * grid;
  const sym = (i, size) => (i < size ? i : 2 * size - 1 - i);  // numpy's "symmetric" padding
  const lut = new Float64Array(n * 256), hist = new Float64Array(256);
  const limit = Math.max(clipLimit * area / 256, 1);
  for (let ty = 0; ty < grid; ty++) {
    for (let tx = 0; tx < grid; tx++) {
      hist.fill(0);
      for (let y = 0; y < th; y++) {
        const row = sym(ty * th + y, h) * w;
        for (let x = 0; x < tw; x++) hist[gray[row + sym(tx * tw + x, w)]] += 1;
      }
      let excess = 0;
      for (let v = 0; v < 256; v++) if (hist[v] > limit) excess += hist[v] - limit;
      let cum = 0;
      const base = (ty * grid + tx) * 256;
      for (let v = 0; v < 256; v++) {
        cum += Math.min(hist[v], limit) + excess / 256;
        lut[base + v] = Math.min(255, Math.max(0, cum * (255 / area)));
      }
    }
  }
  const axis = (size, tile) => {
    const lo = new Int32Array(size), hi = new Int32Array(size), frac = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const pos = (i + 0.5) / tile - 0.5;
      lo[i] = Math.min(Math.max(Math.floor(pos), 0), grid - 1);
      hi[i] = Math.min(lo[i] + 1, grid - 1);
      frac[i] = Math.min(Math.max(pos - lo[i], 0), 1);
    }
    return { lo, hi, frac };
  };
  const Y = axis(h, th), X = axis(w, tw), out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    const y0 = Y.lo[y] * grid, y1 = Y.hi[y] * grid, wy = Y.frac[y];
    for (let x = 0; x < w; x++) {
      const v = gray[y * w + x], x0 = X.lo[x], x1 = X.hi[x], wx = X.frac[x];
      const top = lut[(y0 + x0) * 256 + v] * (1 - wx) + lut[(y0 + x1) * 256 + v] * wx;
      const bottom = lut[(y1 + x0) * 256 + v] * (1 - wx) + lut[(y1 + x1) * 256 + v] * wx;
      out[y * w + x] = Math.min(255, Math.max(0, roundHalfEven(top * (1 - wy) + bottom * wy)));
    }
  }
  return out;
}

// The square crop of emolib.faces.square_crop, as gray (PIL's convert("L")) uint8, side s.
export function squareCropGray(rgba, width, height, box, margin) {
  const [x1, y1, x2, y2] = box;
  const side = Math.max(x2 - x1, y2 - y1, 1) * (1 + margin);
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  const left = roundHalfEven(cx - side / 2), top = roundHalfEven(cy - side / 2), s = Math.max(roundHalfEven(side), 1);
  const out = new Uint8Array(s * s);
  for (let i = 0; i < s; i++) {
    const sy = Math.min(Math.max(top + i, 0), height - 1) * width;
    for (let j = 0; j < s; j++) {
      const p = (sy + Math.min(Math.max(left + j, 0), width - 1)) * 4;
      out[i * s + j] = (rgba[p] * 19595 + rgba[p + 1] * 38470 + rgba[p + 2] * 7471 + 0x8000) >>> 16;
    }
  }
  return { gray: out, size: s };
}

// One face's model input (size x size, 0..1): crop, gray, resize to `work`, CLAHE, resize to `size`.
export function preprocessFace(rgba, width, height, box, { size = 48, margin = 0.2, work = 128, clip = 2.0,
                                                            grid = 8 } = {}) {
  const crop = squareCropGray(rgba, width, height, box, margin);
  const w = Math.max(size, work);
  const big = resizeBilinear(crop.gray, crop.size, w);
  const small = resizeBilinear(clahe(big, w, w, clip, grid), w, size);
  const x = new Float32Array(size * size);
  for (let i = 0; i < x.length; i++) x[i] = small[i] / 255;
  return x;
}

// ---------------------------------------------------------------- MTCNN's box helpers (used by mtcnn.js)

// facenet-pytorch's rerec (a box made square around its centre), the patch region of
// emolib.faces.mtcnn_crops (truncated, clipped, one pixel wider on the top left) and bbreg
// (a network's regression applied to a box).
export function rerec(box) {
  const [x1, y1, x2, y2] = box, w = x2 - x1, h = y2 - y1, l = Math.max(w, h);
  const nx = x1 + w * 0.5 - l * 0.5, ny = y1 + h * 0.5 - l * 0.5;
  return [nx, ny, nx + l, ny + l];
}

export function mtcnnRegion(box, width, height) {
  const b = box.map(Math.trunc);
  return [Math.max(b[0], 1) - 1, Math.max(b[1], 1) - 1, Math.min(b[2], width), Math.min(b[3], height)];
}

export function bbreg(box, reg) {
  const w = box[2] - box[0] + 1, h = box[3] - box[1] + 1;
  return [box[0] + reg[0] * w, box[1] + reg[1] * h, box[2] + reg[2] * w, box[3] + reg[3] * h];
}

// torchvision's roi_align (aligned=True, sampling_ratio 2) of one box of an RGBA image, as
// emolib.faces.mtcnn_crops cuts MTCNN's patches: size x size, RGB planes (CHW), pixels in 0..1.
export function roiAlign(rgba, width, height, region, size, sampling = 2, out = null, offset = 0) {
  const [x1, y1, x2, y2] = region;
  const sx = x1 - 0.5, sy = y1 - 0.5, bw = (x2 - x1) / size, bh = (y2 - y1) / size, norm = 1 / (sampling * sampling * 255);
  const dst = out || new Float32Array(3 * size * size), plane = size * size;
  for (let ph = 0; ph < size; ph++) {
    for (let pw = 0; pw < size; pw++) {
      let a0 = 0, a1 = 0, a2 = 0;
      for (let iy = 0; iy < sampling; iy++) {
        let y = sy + ph * bh + (iy + 0.5) * bh / sampling;
        if (y < -1 || y > height) continue;
        if (y <= 0) y = 0;
        let yl = Math.trunc(y), yh;
        if (yl >= height - 1) { yh = yl = height - 1; y = yl; } else yh = yl + 1;
        const ly = y - yl, hy = 1 - ly, rl = yl * width, rh = yh * width;
        for (let ix = 0; ix < sampling; ix++) {
          let x = sx + pw * bw + (ix + 0.5) * bw / sampling;
          if (x < -1 || x > width) continue;
          if (x <= 0) x = 0;
          let xl = Math.trunc(x), xh;
          if (xl >= width - 1) { xh = xl = width - 1; x = xl; } else xh = xl + 1;
          const lx = x - xl, hx = 1 - lx;
          const w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
          const p1 = (rl + xl) * 4, p2 = (rl + xh) * 4, p3 = (rh + xl) * 4, p4 = (rh + xh) * 4;
          a0 += w1 * rgba[p1] + w2 * rgba[p2] + w3 * rgba[p3] + w4 * rgba[p4];
          a1 += w1 * rgba[p1 + 1] + w2 * rgba[p2 + 1] + w3 * rgba[p3 + 1] + w4 * rgba[p4 + 1];
          a2 += w1 * rgba[p1 + 2] + w2 * rgba[p2 + 2] + w3 * rgba[p3 + 2] + w4 * rgba[p4 + 2];
        }
      }
      const q = offset + ph * size + pw;
      dst[q] = a0 * norm; dst[q + plane] = a1 * norm; dst[q + 2 * plane] = a2 * norm;
    }
  }
  return dst;
}
