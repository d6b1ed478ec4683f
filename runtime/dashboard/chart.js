// A small time-series chart on a canvas: one line, the normal and warning bands behind it.

const WINDOW_S = 300;

export class Chart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = []; // [ts, value]
    this.spec = null;
    this.unit = "";
  }

  reset(spec, points) {
    this.spec = spec;
    this.unit = spec?.unit || "";
    this.points = points.filter((p) => typeof p[1] === "number");
    this.draw();
  }

  push(ts, value) {
    if (typeof value === "boolean") value = value ? 1 : 0;
    if (typeof value !== "number" || typeof ts !== "number") return;
    const last = this.points[this.points.length - 1];
    if (last && ts <= last[0]) return;
    this.points.push([ts, value]);
    const cutoff = ts - WINDOW_S;
    while (this.points.length && this.points[0][0] < cutoff) this.points.shift();
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || c.width;
    const h = c.clientHeight || c.height;
    if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio); c.height = Math.round(h * ratio); }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    c.dataset.points = String(this.points.length);
    if (!this.points.length) {
      g.fillStyle = "#6b7785";
      g.fillText("no data yet", 10, 20);
      return;
    }
    const pad = { l: 48, r: 10, t: 10, b: 22 };
    const t1 = Math.max(this.points[this.points.length - 1][0], Date.now() / 1000);
    const t0 = t1 - WINDOW_S;
    let lo = Math.min(...this.points.map((p) => p[1]));
    let hi = Math.max(...this.points.map((p) => p[1]));
    for (const band of [this.spec?.normal, this.spec?.warning]) {
      if (band) { lo = Math.min(lo, band[0]); hi = Math.max(hi, band[1]); }
    }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const span = hi - lo;
    lo -= span * 0.05; hi += span * 0.05;
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
    const shade = (band, colour) => {
      if (!band) return;
      g.fillStyle = colour;
      g.fillRect(pad.l, y(band[1]), w - pad.l - pad.r, y(band[0]) - y(band[1]));
    };
    shade(this.spec?.warning, "rgba(224,160,0,0.12)");
    shade(this.spec?.normal, "rgba(46,158,68,0.14)");
    g.strokeStyle = "#d9dee4";
    g.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
    g.fillStyle = "#6b7785";
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    for (const v of [lo, (lo + hi) / 2, hi]) g.fillText(v.toFixed(Math.abs(hi - lo) < 10 ? 2 : 1), pad.l - 4, y(v) + 4);
    g.textAlign = "left";
    g.fillText(new Date(t0 * 1000).toLocaleTimeString(), pad.l, h - 6);
    g.textAlign = "right";
    g.fillText(new Date(t1 * 1000).toLocaleTimeString(), w - pad.r, h - 6);
    g.strokeStyle = "#3a7bd5";
    g.lineWidth = 1.5;
    g.beginPath();
    this.points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
    const [lt, lv] = this.points[this.points.length - 1];
    g.fillStyle = "#3a7bd5";
    g.beginPath();
    g.arc(x(lt), y(lv), 3, 0, 2 * Math.PI);
    g.fill();
  }
}

export { WINDOW_S };
