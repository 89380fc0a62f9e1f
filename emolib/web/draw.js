// Drawing faces on an overlay canvas: each face's box, its emotion with the probability, and one bar per
// class. The book's live page and the Jupyter webcam widget (emolib/web/webcam.js) both use it. A face:
// {box: [x1, y1, x2, y2], emotion, p, probabilities: {name: p}, score, hands}; boxes in the pixels of a
// w x h frame.

export const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
                        [240, 50, 230], [210, 245, 60], [250, 190, 190], [0, 128, 128]];

export function drawFaces(canvas, faces, w, h, { mirror = false, bars = true } = {}) {
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const line = Math.max(2, Math.round(Math.min(w, h) / 200));
  faces.forEach((face, i) => {
    const c = PALETTE[i % PALETTE.length], color = `rgb(${c[0]},${c[1]},${c[2]})`;
    let [x1, y1, x2, y2] = face.box;
    if (mirror) [x1, x2] = [w - x2, w - x1];
    ctx.lineWidth = line; ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = face.emotion ? `${face.emotion} ${Math.round(100 * face.p)}%` : `face ${face.score.toFixed(2)}`;
    const fs = Math.max(12, Math.min(28, Math.round((x2 - x1) / 7)));
    ctx.font = `bold ${fs}px sans-serif`;
    const tw = ctx.measureText(label).width;
    const ty = y1 - fs - 6 >= 0 ? y1 - fs - 6 : y1 + line;
    ctx.fillStyle = `rgba(${c[0]},${c[1]},${c[2]},0.8)`;
    ctx.fillRect(x1, ty, tw + 8, fs + 6);
    ctx.fillStyle = "white"; ctx.textBaseline = "top";
    ctx.fillText(label, x1 + 4, ty + 3);
    const probs = Object.entries(face.probabilities || {});
    if (bars && probs.length) {
      const bf = Math.max(10, Math.round(fs * 0.65)), row = bf + 3, barLen = 3 * bf;
      ctx.font = `${bf}px sans-serif`;
      const nameW = Math.max(...probs.map(([n]) => ctx.measureText(n).width));
      const pw = nameW + barLen + 10, ph = row * probs.length + 4;
      const px = x2 + 4 + pw <= w ? x2 + 4 : (x1 - 4 - pw >= 0 ? x1 - 4 - pw : Math.max(0, x2 - pw));
      const py = Math.min(Math.max(0, y1), Math.max(0, h - ph));
      ctx.fillStyle = "rgba(0,0,0,0.55)"; ctx.fillRect(px, py, pw, ph);
      const top = Math.max(...probs.map(([, p]) => p));
      probs.forEach(([name, p], k) => {
        const ry = py + 2 + k * row;
        ctx.fillStyle = "white"; ctx.fillText(name, px + 3, ry);
        const bx = px + nameW + 7;
        ctx.strokeStyle = "rgba(255,255,255,0.4)"; ctx.lineWidth = 1;
        ctx.strokeRect(bx, ry + 2, barLen, row - 4);
        ctx.fillStyle = p === top ? color : "rgba(220,220,220,0.85)";
        ctx.fillRect(bx, ry + 2, Math.max(1, p * barLen), row - 4);
      });
    }
    Object.values(face.hands || {}).forEach((hand) => {
      if (!hand || !hand.box) return;
      let [hx1, hy1, hx2, hy2] = hand.box;
      if (mirror) [hx1, hx2] = [w - hx2, w - hx1];
      ctx.setLineDash([6, 4]); ctx.strokeStyle = color; ctx.strokeRect(hx1, hy1, hx2 - hx1, hy2 - hy1);
      ctx.setLineDash([]);
      const name = hand.gesture || hand.label || "";
      if (name) { ctx.fillStyle = color; ctx.fillText(name, hx1 + 2, hy2 + 2); }
    });
  });
}

// Hands (emolib/web/hands.js) on the same overlay, after drawFaces: each hand's skeleton (MediaPipe's 21
// landmarks and their bones), its box (dashed when the hand is cut by the border) and a label with the
// person's side and the gesture ("left: victory 97%"). A hand attached to a face (hand.face, its index in
// the faces drawn by drawFaces) takes that face's colour; a hand of no face is drawn in gray.
export const HAND_BONES = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [5, 9], [9, 10], [10, 11],
  [11, 12], [9, 13], [13, 14], [14, 15], [15, 16], [13, 17], [0, 17], [17, 18], [18, 19], [19, 20]];

export function drawHands(canvas, hands, w, h, { mirror = false, skeleton = true } = {}) {
  const ctx = canvas.getContext("2d");
  const line = Math.max(2, Math.round(Math.min(w, h) / 200));
  const X = (x) => (mirror ? w - x : x);
  hands.forEach((hand) => {
    const c = Number.isInteger(hand.face) ? PALETTE[hand.face % PALETTE.length] : [160, 160, 160];
    const color = `rgb(${c[0]},${c[1]},${c[2]})`;
    let [x1, y1, x2, y2] = hand.box;
    if (mirror) [x1, x2] = [w - x2, w - x1];
    ctx.lineWidth = line; ctx.strokeStyle = color;
    ctx.setLineDash(hand.truncated ? [6, 4] : []);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.setLineDash([]);
    const pts = hand.landmarks || [];
    if (skeleton && pts.length === 21) {
      ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.lineWidth = Math.max(1, line - 1);
      ctx.beginPath();
      HAND_BONES.forEach(([a, b]) => { ctx.moveTo(X(pts[a][0]), pts[a][1]); ctx.lineTo(X(pts[b][0]), pts[b][1]); });
      ctx.stroke();
      ctx.fillStyle = color;
      pts.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(X(x), y, line + 1, 0, 2 * Math.PI); ctx.fill(); });
    }
    const label = `${hand.handedness}` + (hand.gesture ? `: ${hand.gesture} ${Math.round(100 * hand.p)}%` : "");
    const fs = Math.max(12, Math.min(22, Math.round((x2 - x1) / 8)));
    ctx.font = `bold ${fs}px sans-serif`;
    const tw = ctx.measureText(label).width;
    const ty = y2 + fs + 6 <= h ? y2 : Math.max(0, y1 - fs - 6);
    ctx.fillStyle = `rgba(${c[0]},${c[1]},${c[2]},0.8)`;
    ctx.fillRect(x1, ty, tw + 8, fs + 6);
    ctx.fillStyle = "white"; ctx.textBaseline = "top";
    ctx.fillText(label, x1 + 4, ty + 3);
  });
}
