// chart.js — the 5-minute RAM/VRAM timeline, drawn on a <canvas> by hand: one line per
// series (percent of its capacity), vertical markers for offload/reload and start/stop.

import { MARKER_KINDS } from './timeline.js';

export const WINDOW_MS = 5 * 60 * 1000;
const SERIES_COLORS = ['#4dabf7', '#f783ac', '#ffd43b', '#69db7c', '#da77f2', '#ff922b', '#3bc9db', '#a9e34b'];

/**
 * TimelineChart keeps points {t, values: {seriesKey: percent}} for the last five minutes and
 * redraws at most once per animation frame.
 */
export class TimelineChart {
  constructor(canvas, markers) {
    this.canvas = canvas;
    this.markers = markers;
    this.points = [];
    this.series = new Map(); // key -> {label, color}
    this.pending = false;
    this.live = 0;
    markers.onChange(() => this.draw());
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** defineSeries registers a line. */
  defineSeries(key, label) {
    if (!this.series.has(key)) this.series.set(key, { label, color: SERIES_COLORS[this.series.size % SERIES_COLORS.length] });
  }

  /** add inserts a point (kept in time order, one per timestamp); live counts stream points. */
  add(t, values, live = false) {
    if (!Number.isFinite(t)) return;
    const pts = this.points;
    if (!pts.length || t > pts[pts.length - 1].t) {
      pts.push({ t, values });
    } else {
      let i = pts.length - 1;
      while (i >= 0 && pts[i].t > t) i--;
      if (i >= 0 && pts[i].t === t) return;
      pts.splice(i + 1, 0, { t, values });
    }
    if (live) this.live++;
    const cutoff = Date.now() - WINDOW_MS - 5000;
    while (pts.length && pts[0].t < cutoff) pts.shift();
    this.canvas.dataset.points = String(pts.length);
    this.canvas.dataset.livePoints = String(this.live);
    this.draw();
  }

  lastTime() { return this.points.length ? this.points[this.points.length - 1].t : 0; }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  render() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const hgt = c.clientHeight;
    if (!w || !hgt) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const style = getComputedStyle(c);
    const fg = style.getPropertyValue('--chart-fg').trim() || '#adb5bd';
    const grid = style.getPropertyValue('--chart-grid').trim() || '#343a40';
    const pad = { l: 44, r: 12, t: 44, b: 24 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    const now = Date.now();
    const t0 = now - WINDOW_MS;
    const x = (t) => pad.l + ((t - t0) / WINDOW_MS) * pw;
    const y = (p) => pad.t + ph - (Math.max(0, Math.min(100, p)) / 100) * ph;

    // Grid and axes.
    g.font = '11px system-ui, sans-serif';
    g.strokeStyle = grid;
    g.fillStyle = fg;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let p = 0; p <= 100; p += 25) {
      g.beginPath(); g.moveTo(pad.l, y(p)); g.lineTo(pad.l + pw, y(p)); g.stroke();
      g.fillText(`${p}%`, pad.l - 6, y(p));
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let m = 5; m >= 0; m--) {
      const t = now - m * 60000;
      g.beginPath(); g.moveTo(x(t), pad.t); g.lineTo(x(t), pad.t + ph); g.stroke();
      g.fillText(m === 0 ? 'now' : `-${m} min`, x(t), pad.t + ph + 6);
    }

    // Markers.
    g.textBaseline = 'bottom';
    // Labels go on up to three rows above the plot; one that fits on no row is left out
    // (its coloured line stays, the legend names the colours).
    const rowEnds = [-Infinity, -Infinity, -Infinity];
    let shown = 0;
    for (const mk of this.markers.list) {
      if (mk.t < t0 || mk.t > now + 1000) continue;
      shown++;
      const kind = MARKER_KINDS[mk.kind];
      const mx = x(mk.t);
      g.save();
      g.strokeStyle = kind.color;
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(mx, pad.t); g.lineTo(mx, pad.t + ph); g.stroke();
      g.restore();
      const tw = g.measureText(kind.label).width;
      const right = mx > pad.l + pw - tw / 2;
      const left = right ? mx - tw : mx - tw / 2;
      const row = rowEnds.findIndex((end) => left > end + 6);
      if (row >= 0) {
        rowEnds[row] = left + tw;
        g.fillStyle = kind.color;
        g.textAlign = right ? 'right' : 'center';
        g.fillText(kind.label, mx, pad.t - 2 - row * 12);
      }
    }

    c.dataset.markers = String(shown);

    // Lines; a sample with no neighbour within 5 s (a gap in the data) is drawn as a dot.
    for (const [key, s] of this.series) {
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      g.lineWidth = 2;
      const dots = [];
      let run = [];
      const flush = () => {
        if (run.length === 1) dots.push(run[0]);
        run = [];
      };
      g.beginPath();
      let prevT = 0;
      for (const pt of this.points) {
        const v = pt.values[key];
        if (v === undefined || pt.t < t0) { flush(); continue; }
        if (run.length && pt.t - prevT > 5000) flush();
        if (!run.length) g.moveTo(x(pt.t), y(v)); else g.lineTo(x(pt.t), y(v));
        run.push([x(pt.t), y(v)]);
        prevT = pt.t;
      }
      flush();
      g.stroke();
      for (const [dx, dy] of dots) { g.beginPath(); g.arc(dx, dy, 2.5, 0, 2 * Math.PI); g.fill(); }
    }
  }
}
