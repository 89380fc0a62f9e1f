// Hands in the browser, as emolib's Python code finds and reads them: MediaPipe Hands' palm detector and
// hand-landmark network (the lite ones, ONNX files staged by emolib.livepage), the graph around them
// (emolib/hands/palm.py, landmark.py, warp.py, detector.py; on the camera, hands followed from frame to
// frame as MediaPipe's video mode and emolib's HandTracker do: tracker.py), the landmark normalisation of
// emolib/hands/features.py, the gesture MLP (gestures-asl), and the pairing of hands with faces of
// emolib/pipeline.py (assign_hands). Each function names the Python function it ports; the arithmetic
// follows the Python's, float32 steps included (Math.fround where numpy computes in float32), so that
// given the same network outputs the numbers are the same. No DOM here: the functions take RGBA pixels
// (a canvas's ImageData.data) and `ort` (onnxruntime-web), so they also run in Node (tests/test_live_page.py).

const f32 = Math.fround;
export const PALM_SIZE = 192;
export const LANDMARK_SIZE = 224;
const NORMALIZE_Z = 0.4;
const WRIST = 0, MIDDLE_MCP = 9;

// ---------------------------------------------------------------- warp.py: ImageToTensorCalculator

// pad_roi: the region grown to the output's aspect ratio, and the letterbox padding (left, top, right, bottom).
export function padRoi(roi, outW, outH) {
  if (!(roi.width > 0 && roi.height > 0)) throw new Error(`region must have a positive size, got ${roi.width} x ${roi.height}`);
  const tensorAspect = outH / outW, roiAspect = roi.height / roi.width;
  let newW, newH, v, h;
  if (tensorAspect > roiAspect) {
    newW = roi.width; newH = roi.width * tensorAspect; v = (1.0 - roiAspect / tensorAspect) / 2.0; h = 0.0;
  } else {
    newW = roi.height / tensorAspect; newH = roi.height; v = 0.0; h = (1.0 - tensorAspect / roiAspect) / 2.0;
  }
  return { roi: { cx: roi.cx, cy: roi.cy, width: newW, height: newH, rotation: roi.rotation }, padding: [h, v, h, v] };
}

// _lu_solve: OpenCV's LU64f in the same operation order (a: m x m rows, b: m; both changed).
function luSolve(a, b) {
  const m = a.length;
  for (let i = 0; i < m; i++) {
    let k = i;
    for (let j = i + 1; j < m; j++) if (Math.abs(a[j][i]) > Math.abs(a[k][i])) k = j;
    if (Math.abs(a[k][i]) < 2.220446049250313e-16 * 10) throw new Error("degenerate region: its corners do not span a rectangle");
    if (k !== i) { [a[i], a[k]] = [a[k], a[i]]; [b[i], b[k]] = [b[k], b[i]]; }
    const d = -1.0 / a[i][i];
    for (let j = i + 1; j < m; j++) {
      const alpha = a[j][i] * d;
      for (let c = i + 1; c < m; c++) a[j][c] += alpha * a[i][c];
      b[j] += alpha * b[i];
    }
  }
  for (let i = m - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < m; k++) s -= a[i][k] * b[k];
    b[i] = s / a[i][i];
  }
  return b;
}

// _invert3: cv::invert of a 3 x 3 matrix (closed form).
function invert3(m) {
  const S = (r, c) => m[3 * r + c];
  const det = S(0, 0) * (S(1, 1) * S(2, 2) - S(1, 2) * S(2, 1)) - S(0, 1) * (S(1, 0) * S(2, 2) - S(1, 2) * S(2, 0))
    + S(0, 2) * (S(1, 0) * S(2, 1) - S(1, 1) * S(2, 0));
  if (det === 0) throw new Error("degenerate region: its transform cannot be inverted");
  const d = 1.0 / det;
  return [(S(1, 1) * S(2, 2) - S(1, 2) * S(2, 1)) * d, (S(0, 2) * S(2, 1) - S(0, 1) * S(2, 2)) * d,
    (S(0, 1) * S(1, 2) - S(0, 2) * S(1, 1)) * d, (S(1, 2) * S(2, 0) - S(1, 0) * S(2, 2)) * d,
    (S(0, 0) * S(2, 2) - S(0, 2) * S(2, 0)) * d, (S(0, 2) * S(1, 0) - S(0, 0) * S(1, 2)) * d,
    (S(1, 0) * S(2, 1) - S(1, 1) * S(2, 0)) * d, (S(0, 1) * S(2, 0) - S(0, 0) * S(2, 1)) * d,
    (S(0, 0) * S(1, 1) - S(0, 1) * S(1, 0)) * d];
}

function rint(v) {  // numpy's rint: round half to even
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// sample_points: the transform from output pixels to source positions in 1/32 pixel, as OpenCV computes it.
export function warpMatrix(roi, outW, outH) {
  const angle = f32(f32(f32(roi.rotation) * 180) / Math.PI);
  const b = f32(f32(Math.cos(angle * Math.PI / 180.0)) * 0.5), a = f32(f32(Math.sin(angle * Math.PI / 180.0)) * 0.5);
  const cx = f32(roi.cx), cy = f32(roi.cy), w = f32(roi.width), h = f32(roi.height);
  const p0 = [f32(f32(cx - f32(a * h)) - f32(b * w)), f32(f32(cy + f32(b * h)) - f32(a * w))];
  const p1 = [f32(f32(cx + f32(a * h)) - f32(b * w)), f32(f32(cy - f32(b * h)) - f32(a * w))];
  const src = [p0, p1, [f32(f32(2 * cx) - p0[0]), f32(f32(2 * cy) - p0[1])], [f32(f32(2 * cx) - p1[0]), f32(f32(2 * cy) - p1[1])]];
  const dst = [[0, outH], [0, 0], [outW, 0], [outW, outH]];
  const A = Array.from({ length: 8 }, () => new Array(8).fill(0)), B = new Array(8).fill(0);
  src.forEach(([sx, sy], i) => {
    const [dx, dy] = dst[i];
    A[i][0] = A[i + 4][3] = sx; A[i][1] = A[i + 4][4] = sy; A[i][2] = A[i + 4][5] = 1.0;
    A[i][6] = -sx * dx; A[i][7] = -sy * dx; A[i + 4][6] = -sx * dy; A[i + 4][7] = -sy * dy;
    B[i] = dx; B[i + 4] = dy;
  });
  return invert3([...luSolve(A, B), 1.0]);
}

// warp + image_to_tensor: the (outH, outW, 3) picture of `roi` (bilinear, cv::warpPerspective's fixed
// point), border "zero" or "replicate", as float32 in 0..1 (NHWC, batch 1). `rgba`: w x h RGBA pixels.
export function warpToTensor(rgba, w, h, roi, outW, outH, border = "replicate") {
  if (border !== "replicate" && border !== "zero") throw new Error(`border must be 'replicate' or 'zero', got ${border}`);
  const M = warpMatrix(roi, outW, outH), out = new Float32Array(outW * outH * 3), inv255 = f32(1.0 / 255.0);
  const IMIN = -2147483648, IMAX = 2147483647, clip = (v, lo, hi) => (v < lo ? lo : v > hi ? hi : v);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const x1 = x % 64, xb = x - x1;
      const X0 = M[0] * xb + M[1] * y + M[2], Y0 = M[3] * xb + M[4] * y + M[5], W0 = M[6] * xb + M[7] * y + M[8];
      let W = W0 + M[6] * x1;
      W = W !== 0 ? 32.0 / W : 0;
      const Xq = rint(clip((X0 + M[0] * x1) * W, IMIN, IMAX)), Yq = rint(clip((Y0 + M[3] * x1) * W, IMIN, IMAX));
      const x0 = Xq >> 5, y0 = Yq >> 5, fx = Xq & 31, fy = Yq & 31;
      let r = 0, g = 0, bl = 0;
      for (let dy = 0; dy < 2; dy++) {
        const yi = y0 + dy, wy = dy ? fy : 32 - fy, row = clip(yi, 0, h - 1) * w;
        for (let dx = 0; dx < 2; dx++) {
          const xi = x0 + dx;
          let weight = (dx ? fx : 32 - fx) * wy;
          if (border === "zero" && (xi < 0 || xi >= w || yi < 0 || yi >= h)) weight = 0;
          const p = (row + clip(xi, 0, w - 1)) * 4;
          r += weight * rgba[p]; g += weight * rgba[p + 1]; bl += weight * rgba[p + 2];
        }
      }
      const o = (y * outW + x) * 3;
      out[o] = ((r + 512) >> 10) * inv255; out[o + 1] = ((g + 512) >> 10) * inv255; out[o + 2] = ((bl + 512) >> 10) * inv255;
    }
  }
  return out;
}

// ---------------------------------------------------------------- palm.py: palm detection

// ssd_anchors: (x, y) centres relative to the 192 x 192 input, float32, two per cell, same-stride layers merged.
export function ssdAnchors(inputSize = PALM_SIZE, strides = [8, 16, 16, 16], perLayer = 2) {
  const out = [];
  let layer = 0;
  while (layer < strides.length) {
    let same = 0;
    while (layer + same < strides.length && strides[layer + same] === strides[layer]) same++;
    const n = Math.ceil(inputSize / strides[layer]);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        for (let k = 0; k < perLayer * same; k++) out.push([f32((x + 0.5) / n), f32((y + 0.5) / n)]);
      }
    }
    layer += same;
  }
  return out;
}
const ANCHORS = ssdAnchors();

// decode (TensorsToDetectionsCalculator): palms scoring at least minScore, best first. Boxes are
// [xmin, ymin, width, height] and keypoints [[x, y] x 7], relative to the letterboxed input.
export function decodePalms(rawBoxes, rawScores, minScore, anchors = ANCHORS, scale = PALM_SIZE) {
  const dets = [], stride = rawBoxes.length / anchors.length;
  for (let i = 0; i < anchors.length; i++) {
    const score = 1.0 / (1.0 + Math.exp(-Math.max(-100, Math.min(100, rawScores[i]))));
    if (!(score >= minScore)) continue;
    const r = rawBoxes.subarray(i * stride, (i + 1) * stride), [ax, ay] = anchors[i];
    const xc = f32(f32(r[0] / scale) + ax), yc = f32(f32(r[1] / scale) + ay), w = f32(r[2] / scale), h = f32(r[3] / scale);
    if (!(w >= 0 && h >= 0)) continue;
    const keypoints = [];
    for (let k = 4; k + 1 < stride; k += 2) keypoints.push([f32(f32(r[k] / scale) + ax), f32(f32(r[k + 1] / scale) + ay)]);
    dets.push({ box: [f32(xc - f32(w / 2)), f32(yc - f32(h / 2)), w, h], keypoints, score });
  }
  return dets.sort((a, b) => b.score - a.score);  // stable, as Python's sort
}

// iou_xywh: torchvision's box_iou on [xmin, ymin, width, height] boxes; 0 without area.
export function iouXywh(a, b) {
  const [ax1, ay1, ax2, ay2] = [a[0], a[1], a[0] + a[2], a[1] + a[3]], [bx1, by1, bx2, by2] = [b[0], b[1], b[0] + b[2], b[1] + b[3]];
  const iw = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1)), ih = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1));
  const inter = iw * ih, union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
  const v = inter / union;
  return Number.isNaN(v) ? 0 : v;
}

// weighted_nms (NonMaxSuppressionCalculator, WEIGHTED): each group of boxes overlapping the best remaining
// one by IoU > threshold becomes their score-weighted mean (box corners and keypoints), with the best score.
export function weightedNms(dets, threshold = 0.3) {
  const out = [];
  let remaining = dets.map((_, i) => i);
  while (remaining.length) {
    const top = dets[remaining[0]], topBox = top.box;
    const group = remaining.filter((i) => iouXywh(dets[i].box, topBox) > threshold).map((i) => dets[i]);
    const rest = remaining.filter((i) => !(iouXywh(dets[i].box, topBox) > threshold));
    let total = 0;
    const c = [0, 0, 0, 0], kps = top.keypoints.map(() => [0, 0]);
    for (const d of group) total += d.score;
    for (const d of group) {
      const corners = [d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]];
      for (let j = 0; j < 4; j++) c[j] += d.score * corners[j];
      d.keypoints.forEach(([x, y], k) => { kps[k][0] += d.score * x; kps[k][1] += d.score * y; });
    }
    const [x1, y1, x2, y2] = c.map((v) => v / total);
    out.push({ box: [x1, y1, x2 - x1, y2 - y1], keypoints: kps.map(([x, y]) => [x / total, y / total]), score: top.score });
    if (rest.length === remaining.length) break;
    remaining = rest;
  }
  return out;
}

// remove_letterbox (DetectionLetterboxRemovalCalculator): from the letterboxed input to the image.
export function removeLetterbox(det, [left, top, right, bottom]) {
  const sx = 1.0 - left - right, sy = 1.0 - top - bottom;
  return { box: [(det.box[0] - left) / sx, (det.box[1] - top) / sy, det.box[2] / sx, det.box[3] / sy],
           keypoints: det.keypoints.map(([x, y]) => [(x - left) / sx, (y - top) / sy]), score: det.score };
}

function normalizeRadians(angle) {
  return angle - 2 * Math.PI * Math.floor((angle + Math.PI) / (2 * Math.PI));
}

// transform_rect (RectTransformationCalculator) on a normalised rect {x, y, width, height, rotation}.
export function transformRect(rect, width, height, scaleX, scaleY, shiftX, shiftY, squareLong = true) {
  let w = rect.width, h = rect.height, xc, yc;
  const r = rect.rotation;
  if (r === 0.0) {
    xc = rect.x + w * shiftX; yc = rect.y + h * shiftY;
  } else {
    xc = rect.x + (width * w * shiftX * Math.cos(r) - height * h * shiftY * Math.sin(r)) / width;
    yc = rect.y + (width * w * shiftX * Math.sin(r) + height * h * shiftY * Math.cos(r)) / height;
  }
  if (squareLong) {
    const long = Math.max(w * width, h * height);
    w = long / width; h = long / height;
  }
  return { x: xc, y: yc, width: w * scaleX, height: h * scaleY, rotation: r };
}

// palm_to_rect: the rotated, squared hand region of a palm (wrist keypoint 0 to middle knuckle 2 upright).
export function palmToRect(det, width, height, scale = 2.6, shiftY = -0.5) {
  const [xmin, ymin, w, h] = det.box;
  const x0 = det.keypoints[0][0] * width, y0 = det.keypoints[0][1] * height;
  const x1 = det.keypoints[2][0] * width, y1 = det.keypoints[2][1] * height;
  const rotation = normalizeRadians(Math.PI / 2 - Math.atan2(-(y1 - y0), x1 - x0));
  return transformRect({ x: xmin + w / 2, y: ymin + h / 2, width: w, height: h, rotation }, width, height, scale, scale, 0.0, shiftY);
}

// associate (AssociationNormRectCalculator): a region overlapping an earlier one by IoU > threshold replaces it.
export function associate(items, threshold = 0.5) {
  const box = (r) => [r.x - r.width / 2, r.y - r.height / 2, r.width, r.height];
  let out = [];
  for (const item of items) {
    out = out.filter((o) => iouXywh(box(item.rect), box(o.rect)) <= threshold);
    out.push(item);
  }
  return out;
}

// ---------------------------------------------------------------- tracker.py: hands followed from frame to frame

// ROI_LANDMARKS: the 12 landmarks HandLandmarksToRectCalculator uses (wrist, thumb, each finger's first two joints).
export const ROI_LANDMARKS = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18];
const FLOAT_MIN = 1.1754943508222875e-38, FLOAT_MAX = 3.4028234663852886e38;  // std::numeric_limits<float>

// landmarks_to_rect (HandLandmarksToRectCalculator): the rotated box of a hand's landmarks (pixels), relative
// to the image: turned so that the wrist to the mean of the middle knuckle and the index and ring knuckles'
// mean points up, the extent of the 12 ROI_LANDMARKS in that frame around their axis-aligned box's centre.
export function landmarksToRect(points, width, height) {
  if (points.length !== 21) throw new Error(`expected 21 landmarks, got ${points.length}`);
  const xs = ROI_LANDMARKS.map((i) => points[i][0] / width), ys = ROI_LANDMARKS.map((i) => points[i][1] / height);
  const x0 = xs[0] * width, y0 = ys[0] * height;
  const x1 = ((xs[4] + xs[8]) / 2.0 + xs[6]) / 2.0 * width, y1 = ((ys[4] + ys[8]) / 2.0 + ys[6]) / 2.0 * height;
  const rotation = normalizeRadians(Math.PI * 0.5 - Math.atan2(-(y1 - y0), x1 - x0));
  const reverse = normalizeRadians(-rotation);
  const cx = (Math.max(FLOAT_MIN, ...xs) + Math.min(FLOAT_MAX, ...xs)) / 2.0;
  const cy = (Math.max(FLOAT_MIN, ...ys) + Math.min(FLOAT_MAX, ...ys)) / 2.0;
  let c = Math.cos(reverse), s = Math.sin(reverse);
  const px = [], py = [];
  xs.forEach((x, i) => {
    const ox = (x - cx) * width, oy = (ys[i] - cy) * height;
    px.push(ox * c - oy * s); py.push(ox * s + oy * c);
  });
  const maxX = Math.max(FLOAT_MIN, ...px), minX = Math.min(FLOAT_MAX, ...px);
  const maxY = Math.max(FLOAT_MIN, ...py), minY = Math.min(FLOAT_MAX, ...py);
  const pcx = (maxX + minX) / 2.0, pcy = (maxY + minY) / 2.0;
  c = Math.cos(rotation); s = Math.sin(rotation);
  const centerX = pcx * c - pcy * s + width * cx, centerY = pcx * s + pcy * c + height * cy;
  return { x: centerX / width, y: centerY / height, width: (maxX - minX) / width, height: (maxY - minY) / height,
           rotation };
}

// hand_region_from_landmarks (hand_landmark_landmarks_to_roi.pbtxt): the next frame's hand region.
export function handRegionFromLandmarks(points, width, height) {
  return transformRect(landmarksToRect(points, width, height), width, height, 2.0, 2.0, 0.0, -0.1);
}

// ---------------------------------------------------------------- landmark.py

// project: network landmarks (input pixels, 63 numbers) to image pixels, float32 (21 x [x, y, z]).
export function projectLandmarks(raw, [left, top, right, bottom], rect, width, height) {
  const c = Math.cos(rect.rotation), s = Math.sin(rect.rotation), out = [];
  for (let k = 0; k < 21; k++) {
    let x = raw[3 * k] / LANDMARK_SIZE, y = raw[3 * k + 1] / LANDMARK_SIZE, z = raw[3 * k + 2] / LANDMARK_SIZE / NORMALIZE_Z;
    x = (x - left) / (1.0 - left - right); y = (y - top) / (1.0 - top - bottom); z = z / (1.0 - left - right);
    const px = x - 0.5, py = y - 0.5;
    const nx = (c * px - s * py) * rect.width + rect.x, ny = (s * px + c * py) * rect.height + rect.y;
    out.push([f32(nx * width), f32(ny * height), f32(z * rect.width * width)]);
  }
  return out;
}

// hand_box (detector.py): the landmarks' box grown by `margin` of its long side, clipped, and whether the
// hand is cut by the image border.
export function handBox(points, width, height, margin) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x1 = Math.min(...xs), y1 = Math.min(...ys), x2 = Math.max(...xs), y2 = Math.max(...ys);
  const pad = f32(f32(margin) * Math.max(f32(x2 - x1), f32(y2 - y1)));
  const gx1 = f32(x1 - pad), gy1 = f32(y1 - pad), gx2 = f32(x2 + pad), gy2 = f32(y2 + pad);
  const outside = x1 < 0 || y1 < 0 || x2 > width || y2 > height;
  const near = 0.02 * Math.max(width, height);
  const clippedClose = (gx1 < 0 && x1 < near) || (gy1 < 0 && y1 < near) || (gx2 > width && x2 > width - near)
    || (gy2 > height && y2 > height - near);
  const clip = (v, hi) => Math.max(0, Math.min(hi, v));
  return { box: [clip(gx1, width), clip(gy1, height), clip(gx2, width), clip(gy2, height)], truncated: outside || clippedClose };
}

// np.pad(rgb, p, mode="edge") for RGBA pixels.
function padEdge(rgba, w, h, p) {
  const W = w + 2 * p, H = h + 2 * p, out = new Uint8ClampedArray(W * H * 4);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - p));
    for (let x = 0; x < W; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - p)), s = (sy * w + sx) * 4, d = (y * W + x) * 4;
      out[d] = rgba[s]; out[d + 1] = rgba[s + 1]; out[d + 2] = rgba[s + 2]; out[d + 3] = 255;
    }
  }
  return { rgba: out, w: W, h: H };
}

function pyRound(v) {  // Python's round(): half to even
  return rint(v);
}

// ---------------------------------------------------------------- features.py

// normalize_landmarks for one hand (21 x [x, y, z]): mirrored when left, wrist at the origin, divided by
// the wrist to middle-knuckle distance, turned so that this direction points up (rotate); float32.
export function normalizeLandmarks(landmarks, handedness = "right", rotate = true) {
  const lm = landmarks.map((p) => p.slice());
  if (handedness === "left") lm.forEach((p) => { p[0] *= -1; });
  const w = lm[WRIST].slice();
  lm.forEach((p) => { for (let d = 0; d < p.length; d++) p[d] -= w[d]; });
  const rx = lm[MIDDLE_MCP][0], ry = lm[MIDDLE_MCP][1];
  let scale = Math.sqrt(rx * rx + ry * ry);
  const extent = Math.max(...lm.map((p) => Math.sqrt(p[0] * p[0] + p[1] * p[1])));
  if (!(scale > 1e-6)) scale = extent;
  if (!(scale > 1e-6)) scale = 1.0;
  lm.forEach((p) => { for (let d = 0; d < p.length; d++) p[d] /= scale; });
  if (rotate) {
    const ang = Math.atan2(lm[MIDDLE_MCP][0], -lm[MIDDLE_MCP][1]), c = Math.cos(ang), s = Math.sin(ang);
    lm.forEach((p) => { const [x, y] = p; p[0] = c * x + s * y; p[1] = -s * x + c * y; });
  }
  return lm.map((p) => p.map(f32));
}

// landmark_features: the normalised landmarks flattened (x, y, z per point; x, y without z).
export function landmarkFeatures(landmarks, handedness, rotate = true, useZ = true) {
  return normalizeLandmarks(landmarks, handedness, rotate).flatMap((p) => (useZ ? p.slice(0, 3) : p.slice(0, 2)));
}

// ---------------------------------------------------------------- pipeline.py: assign_hands

// assign_hands: attach each hand to its person's face (face.hands = {left, right}); returns the hands
// attached to no face. A hand may take only its own side's slot of a face, within maxDistance face heights
// (wrist to face-box centre, over the face height); among the assignments, the most pairs, then the least
// total distance, as scipy's linear_sum_assignment with its large cost for forbidden pairs. Searched
// exhaustively: the page reads at most a few hands per frame.
export function assignHands(faces, hands, maxDistance = 4.0) {
  faces.forEach((f) => { f.hands = { left: null, right: null }; });
  if (!hands.length || !faces.length) return hands.slice();
  const sides = ["left", "right"], cost = hands.map((hand) => {
    const a = hand.landmarks && hand.landmarks.length ? hand.landmarks[0]
      : [(hand.box[0] + hand.box[2]) / 2, (hand.box[1] + hand.box[3]) / 2];
    const row = new Array(2 * faces.length).fill(Infinity);
    faces.forEach((face, j) => {
      const [x1, y1, x2, y2] = face.box;
      const d = Math.hypot(a[0] - (x1 + x2) / 2, a[1] - (y1 + y2) / 2) / Math.max(y2 - y1, 1.0);
      if (d <= maxDistance && sides.includes(hand.handedness)) row[2 * j + sides.indexOf(hand.handedness)] = d;
    });
    return row;
  });
  let best = { pairs: -1, total: Infinity, cols: [] };
  const used = new Set(), cols = [];
  (function search(i, pairs, total) {
    if (i === hands.length) {
      if (pairs > best.pairs || (pairs === best.pairs && total < best.total)) best = { pairs, total, cols: cols.slice() };
      return;
    }
    cost[i].forEach((c, j) => {
      if (c === Infinity || used.has(j)) return;
      used.add(j); cols.push(j);
      search(i + 1, pairs + 1, total + c);
      used.delete(j); cols.pop();
    });
    cols.push(-1);
    search(i + 1, pairs, total);
    cols.pop();
  })(0, 0, 0);
  const taken = new Set();
  best.cols.forEach((j, i) => {
    if (j < 0) return;
    faces[Math.floor(j / 2)].hands[sides[j % 2]] = hands[i];
    taken.add(i);
  });
  return hands.filter((_, i) => !taken.has(i));
}

// ---------------------------------------------------------------- the detector and the gesture model

// HandReader: HandDetector (static mode), HandTracker (video mode: read(..., track = true)) and
// GestureClassifier in one: reader.read(rgba, w, h, faces, track) returns the hands, left to right, each {box, handedness, score, handednessScore, truncated, landmarks,
// gesture, p, probabilities, emotion, face}: `face` is the index in `faces` of the person the hand is
// attached to (assignHands; its `handedness` is then that person's left or right), or null. The faces
// themselves are left as they are (drawFaces would draw a `hands` property).
export class HandReader {
  constructor(ort, sessions, info, options = {}) {
    this.ort = ort;
    this.sessions = sessions;
    this.info = info;  // the manifest's "hands": files, settings, gestures (classes, normalization)
    this.settings = { ...info.settings, ...options };
    this.timing = {};
    this.palmDetections = 0;  // HandTracker's: the palm detector's runs on tracked frames
    this.palmDetected = false;  // whether it ran on the last frame read
    this.reset();
  }

  // HandTracker.reset: forget the followed hands (the camera stopped, a photo came); the next frame is searched
  // with the palm detector.
  reset() {
    this.followed = [];  // [{rect, palm}]: the next frame's hand regions, from the last frame's landmarks
    this.sincePalm = 0;  // frames read since the palm detector last ran
    this.palmDetected = false;  // whether the palm detector ran on the last frame read
    this.trackSize = null;
  }

  // The tracker's state after the last read, as plain data (the live page's hand log, which tests give
  // emolib's HandTracker): the next read's regions, each with its palm's score, and the reads since the palm
  // detector ran.
  trackerState() {
    return { followed: this.followed.map(({ rect, palm }) => ({ rect, score: palm.score })), sincePalm: this.sincePalm };
  }

  // Loads the palm, landmark and gesture models named in the manifest's `hands` from `base` (a URL or folder).
  static async create(ort, base, info, options = {}, sessionOptions = {}) {
    const load = (file) => ort.InferenceSession.create(base + file, sessionOptions);
    const [palm, landmark, gestures] = await Promise.all([load(info.palm), load(info.landmark), load(info.gestures.file)]);
    return new HandReader(ort, { palm, landmark, gestures }, info, options);
  }

  // PalmDetector: [{rect, palm}] of at most maxHands palms, regions relative to the image.
  async palms(rgba, w, h) {
    const { roi, padding } = padRoi({ cx: w / 2, cy: h / 2, width: w, height: h, rotation: 0 }, PALM_SIZE, PALM_SIZE);
    const input = warpToTensor(rgba, w, h, roi, PALM_SIZE, PALM_SIZE, "zero");
    const out = await this.sessions.palm.run({ [this.sessions.palm.inputNames[0]]: new this.ort.Tensor("float32", input, [1, PALM_SIZE, PALM_SIZE, 3]) });
    const [boxes, scores] = Object.values(out).sort((a, b) => b.dims[b.dims.length - 1] - a.dims[a.dims.length - 1]);
    const dets = weightedNms(decodePalms(boxes.data, scores.data, this.settings.min_detection_confidence))
      .map((d) => removeLetterbox(d, padding)).slice(0, this.settings.max_num_hands);
    return associate(dets.map((palm) => ({ rect: palmToRect(palm, w, h), palm })));
  }

  // LandmarkModel: the hand in a region, or null when the presence score is too low.
  async landmarks(rgba, w, h, rect) {
    const { roi, padding } = padRoi({ cx: rect.x * w, cy: rect.y * h, width: rect.width * w, height: rect.height * h,
                                      rotation: rect.rotation }, LANDMARK_SIZE, LANDMARK_SIZE);
    const input = warpToTensor(rgba, w, h, roi, LANDMARK_SIZE, LANDMARK_SIZE, "replicate");
    const s = this.sessions.landmark;
    const out = await s.run({ [s.inputNames[0]]: new this.ort.Tensor("float32", input, [1, LANDMARK_SIZE, LANDMARK_SIZE, 3]) });
    const [raw, presence, handed] = s.outputNames.slice(0, 3).map((n) => out[n].data);
    if (!(presence[0] > this.settings.min_presence)) return null;
    const pLeft = handed[0], label = pLeft >= 1.0 - pLeft ? "Left" : "Right";
    return { landmarks: projectLandmarks(raw, padding, rect, w, h), label, labelScore: label === "Left" ? pLeft : 1.0 - pLeft };
  }

  // HandDetector.read_region: the landmark network in one region (of a crop at (ox, oy) of a width x height
  // image): the hand, its score the palm's, or null when the presence score is too low.
  async readRegion(rgba, w, h, rect, score, ox = 0, oy = 0, width = w, height = h) {
    const res = await this.landmarks(rgba, w, h, rect);
    if (!res) return null;
    const pts = res.landmarks.map(([x, y, z]) => [f32(x + ox), f32(y + oy), z]);
    let handedness = res.label.toLowerCase();  // MediaPipe's label assumes a mirrored image
    if (!this.settings.mirrored) handedness = handedness === "left" ? "right" : "left";
    const { box, truncated } = handBox(pts, width, height, this.settings.margin);
    return { box, handedness, score, landmarks: pts, truncated, handednessScore: res.labelScore };
  }

  // HandDetector._run on an image (a padded copy at offset (ox, oy) of a width x height image).
  async run(rgba, w, h, ox, oy, width, height) {
    const hands = [];
    for (const { rect, palm } of await this.palms(rgba, w, h)) {
      const hand = await this.readRegion(rgba, w, h, rect, palm.score, ox, oy, width, height);
      if (hand) hands.push(hand);
    }
    return hands;
  }

  // HandTracker.track and follow (tracker.py, MediaPipe's video mode): the palm detector only while fewer than
  // max_num_hands hands are followed (with some followed, on every settings.palm_every-th frame only: HandTracker's
  // palm_every, 1 by default); its new palms' regions, then the followed ones, associated (a palm on a followed
  // hand is dropped); the landmark network in each; each hand found gives the next frame's region.
  async track(rgba, w, h) {
    if (this.trackSize !== `${w}x${h}`) { this.reset(); this.trackSize = `${w}x${h}`; }
    const n = this.followed.length, every = this.settings.palm_every || 1;
    this.palmDetected = n < this.settings.max_num_hands && (n === 0 || this.sincePalm >= every - 1);
    const palms = this.palmDetected ? await this.palms(rgba, w, h) : [];
    this.palmDetections += this.palmDetected ? 1 : 0;
    this.sincePalm = this.palmDetected ? 0 : this.sincePalm + 1;
    const hands = [], following = [];
    for (const { rect, palm } of associate(palms.concat(this.followed))) {
      const hand = await this.readRegion(rgba, w, h, rect, palm.score);
      if (!hand) continue;  // lost: its region goes with it
      hands.push(hand);
      following.push({ rect: handRegionFromLandmarks(hand.landmarks, w, h), palm });
    }
    this.followed = following;
    return hands;
  }

  // HandDetector.detect on the whole image (with the padded retry when nothing is found), left to right; with
  // `track` (camera frames), HandTracker.track instead: no padded retry, the followed hands kept for the next
  // frame. A photo (track false) neither uses nor changes them.
  async detect(rgba, w, h, track = false) {
    const t0 = performance.now();
    let hands;
    if (track) hands = await this.track(rgba, w, h);
    else {
      this.palmDetected = true;
      hands = await this.run(rgba, w, h, 0, 0, w, h);
      if (!hands.length && this.settings.pad_retry > 0) {
        const p = pyRound(this.settings.pad_retry * Math.max(w, h)), padded = padEdge(rgba, w, h, p);
        hands = await this.run(padded.rgba, padded.w, padded.h, -p, -p, w, h);
      }
    }
    this.timing.hands = performance.now() - t0;
    return hands.sort((a, b) => (a.box[0] + a.box[2]) / 2 - (b.box[0] + b.box[2]) / 2);
  }

  // GestureClassifier.classify for a landmark model: gesture, p and probabilities written into each hand.
  async classify(hands) {
    if (!hands.length) return hands;
    const g = this.info.gestures, n = g.inputs, norm = g.normalization, classes = g.classes;
    const x = new Float32Array(hands.length * n);
    hands.forEach((hand, i) => x.set(landmarkFeatures(hand.landmarks, hand.handedness, norm.rotate, norm.use_z), i * n));
    const out = await this.sessions.gestures.run({ landmarks: new this.ort.Tensor("float32", x, [hands.length, n]) });
    const p = out.probabilities.data;
    hands.forEach((hand, i) => {
      let best = 0;
      hand.probabilities = {};
      classes.forEach((c, k) => { hand.probabilities[c] = p[i * classes.length + k]; if (p[i * classes.length + k] > p[i * classes.length + best]) best = k; });
      hand.gesture = classes[best];
      hand.p = p[i * classes.length + best];
      hand.emotion = (g.gesture_emotions || {})[hand.gesture] || null;
    });
    return hands;
  }

  // Detect, classify, attach to the faces (EmotionPipeline's hand stage with hand_regions="image").
  async read(rgba, w, h, faces = [], track = false) {
    const hands = await this.classify(await this.detect(rgba, w, h, track));
    const people = faces.map((f) => ({ box: f.box }));
    assignHands(people, hands, this.settings.hand_distance);
    hands.forEach((hand) => { hand.face = null; });
    people.forEach((person, j) => Object.values(person.hands || {}).forEach((hand) => { if (hand) hand.face = j; }));
    return hands;
  }
}
