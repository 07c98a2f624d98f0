/* kanlab spline tour — the interactive page: state, sampling, drawing, dragging, and the exported API
 * `window.splineTour` that the tests (and curious readers, from the console) use:
 *   state()                 points, visible curves, the last drag's changed pieces, continuity at the knots
 *   samples(points?, per?)  the curves sampled at exported parameters, for comparison with kanlab.splines
 *   setPoints(points)       replace the control points (n = 5..12, strictly increasing x)
 *   setVisible(name, on)    show or hide a curve: "bezier", "catmullRom", "natural", "bspline"
 */
"use strict";

(function () {
  const S = KanlabSplines;
  const ORDER = 3;
  const CURVES = [
    { key: "bezier", label: "Bézier", color: "var(--bezier)" },
    { key: "catmullRom", label: "Catmull–Rom", color: "var(--catmull)" },
    { key: "natural", label: "natural cubic", color: "var(--natural)" },
    { key: "bspline", label: "B-spline", color: "var(--bspline)" },
  ];
  const Y_RANGE = [-1.2, 3.4];
  const PER_PIECE = 32; // samples per piece for drawing and change detection
  const MIN_GAP = 0.12; // smallest x distance between neighbouring points when dragging sideways

  const main = document.getElementById("main-plot");
  const basisSvg = document.getElementById("basis-plot");
  const MAIN = { w: 820, h: 400, l: 40, r: 14, t: 12, b: 26 };
  const BASIS = { w: 820, h: 150, l: 40, r: 14, t: 10, b: 24 };

  const state = {
    n: 8,
    points: [],
    visible: { bezier: true, catmullRom: true, natural: true, bspline: true },
    heightsOnly: true,
    lastDrag: null, // {index, from, to, changed: {curve: bool[]}, maxDiff: {curve: number[]}}
    dragging: null, // {index, pointerId, snapshot}
    focus: null, // index of the point whose basis function is highlighted
  };

  /* ------------------------------------------------------------------ model */
  function initialPoints(n) {
    const pts = [];
    for (let i = 0; i < n; i++) {
      const y = 1.1 + 0.85 * Math.sin(1.75 * i + 0.6) + 0.3 * Math.cos(0.8 * i);
      pts.push([i, Math.round(y * 100) / 100]);
    }
    return pts;
  }

  function knotsFor(n) {
    // grid_size G = n - 3 on [1, n - 2], extended by ORDER knots per side: t_j = j - 2, Greville(P_i) = i
    return S.uniformKnots(n - ORDER, ORDER, 1, n - 2);
  }

  function linspace(a, b, m) {
    const out = [];
    for (let s = 0; s < m; s++) out.push(a + ((b - a) * s) / (m - 1));
    return out;
  }

  /* Every curve as a list of pieces, each a list of [x, y] samples, plus the parameters used. */
  function curvePieces(P, per = PER_PIECE) {
    const n = P.length;
    const xk = P.map((p) => p[0]), yk = P.map((p) => p[1]);
    const cr = S.cubicHermite(xk, yk), nat = S.naturalCubic(xk, yk);
    const knots = knotsFor(n);
    const out = { catmullRom: [], natural: [], bspline: [], bezier: [], x: [], u: [], t: [], knots };
    for (let i = 0; i + 1 < n; i++) {
      const a = [], b = [], xs = [];
      for (let s = 0; s <= per; s++) {
        const x = xk[i] + ((xk[i + 1] - xk[i]) * s) / per;
        xs.push(x);
        a.push([x, S.evalPiecewise(cr, x)]);
        b.push([x, S.evalPiecewise(nat, x)]);
      }
      out.catmullRom.push(a);
      out.natural.push(b);
      out.x.push(xs);
    }
    for (let i = ORDER; i < n; i++) {
      const piece = [], us = [];
      for (let s = 0; s <= per; s++) {
        const u = knots[i] + ((knots[i + 1] - knots[i]) * s) / per;
        us.push(u);
        piece.push(S.bsplineCurve(P, knots, ORDER, u));
      }
      out.bspline.push(piece);
      out.u.push(us);
    }
    const ts = linspace(0, 1, per * (n - 1) + 1);
    out.bezier.push(ts.map((t) => S.bezier(P, t)));
    out.t.push(ts);
    return out;
  }

  function compare(before, after) {
    const changed = {}, maxDiff = {};
    for (const { key } of CURVES) {
      maxDiff[key] = after[key].map((piece, i) =>
        Math.max(...piece.map((p, s) => Math.hypot(p[0] - before[key][i][s][0], p[1] - before[key][i][s][1]))));
      changed[key] = maxDiff[key].map((d) => d > 1e-12);
    }
    return { changed, maxDiff };
  }

  function continuity(P) {
    const xk = P.map((p) => p[0]), yk = P.map((p) => p[1]);
    const tag = (e) => ({ knot: e.knot, cls: S.continuityClass(e), jumps: e.jumps });
    return {
      catmullRom: S.piecewiseJumps(S.cubicHermite(xk, yk)).map(tag),
      natural: S.piecewiseJumps(S.naturalCubic(xk, yk)).map(tag),
      bspline: S.bsplineJumps(P, knotsFor(P.length), ORDER).map(tag),
      bezier: [], // one polynomial: no knots, C^∞
    };
  }

  /* ------------------------------------------------------------------ drawing helpers */
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs = {}, parent = null) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  function xRange() { return [-0.6, state.n - 0.4]; }
  function sx(box, x) { const [a, b] = xRange(); return box.l + ((x - a) / (b - a)) * (box.w - box.l - box.r); }
  function sy(box, y, range) { return box.h - box.b - ((y - range[0]) / (range[1] - range[0])) * (box.h - box.t - box.b); }
  function pathOf(box, pts, range) {
    return pts.map((p, i) => (i ? "L" : "M") + sx(box, p[0]).toFixed(2) + "," + sy(box, p[1], range).toFixed(2)).join("");
  }
  function fmt(v) { return Math.abs(v) < 1e-12 ? "0" : v.toExponential(1); }
  const SUP = ["⁰", "¹", "²", "³"];

  /* ------------------------------------------------------------------ main plot */
  const layers = {};
  function buildMain() {
    main.textContent = "";
    for (const name of ["grid", "band", "polygon", "halos", "curves", "points"]) layers[name] = el("g", { class: name }, main);
    layers.circles = [];
    layers.labels = [];
    for (let i = 0; i < state.n; i++) {
      const c = el("circle", { class: "pt", r: 7, tabindex: 0, "data-point": i, role: "slider",
                               "aria-label": `control point ${i}` }, layers.points);
      c.addEventListener("pointerdown", (e) => startDrag(e, i));
      c.addEventListener("pointermove", moveDrag);
      c.addEventListener("pointerup", endDrag);
      c.addEventListener("pointercancel", endDrag);
      c.addEventListener("keydown", (e) => keyMove(e, i));
      c.addEventListener("focus", () => { state.focus = i; renderBasis(); });
      layers.circles.push(c);
      layers.labels.push(el("text", { class: "pt-label" }, layers.points));
    }
  }

  function renderGrid() {
    const g = layers.grid, band = layers.band;
    g.textContent = "";
    band.textContent = "";
    const [a, b] = xRange();
    for (let x = Math.ceil(a); x <= b; x++) {
      el("line", { class: "grid-line", x1: sx(MAIN, x), x2: sx(MAIN, x), y1: MAIN.t, y2: MAIN.h - MAIN.b }, g);
      el("text", { x: sx(MAIN, x), y: MAIN.h - 8, "text-anchor": "middle" }, g).textContent = x;
    }
    for (let y = Math.ceil(Y_RANGE[0]); y <= Y_RANGE[1]; y++) {
      el("line", { class: y === 0 ? "axis-line" : "grid-line", x1: MAIN.l, x2: MAIN.w - MAIN.r,
                   y1: sy(MAIN, y, Y_RANGE), y2: sy(MAIN, y, Y_RANGE) }, g);
      el("text", { x: MAIN.l - 8, y: sy(MAIN, y, Y_RANGE) + 4, "text-anchor": "end" }, g).textContent = y;
    }
    if (state.visible.bspline) {
      const x0 = sx(MAIN, 1), x1 = sx(MAIN, state.n - 2);
      el("rect", { class: "domain-band", x: x0, y: MAIN.t, width: x1 - x0, height: MAIN.h - MAIN.t - MAIN.b }, band);
      el("text", { x: (x0 + x1) / 2, y: MAIN.t + 12, "text-anchor": "middle" }, band).textContent =
        "B-spline grid range";
    }
  }

  function renderMain(pieces) {
    renderGrid();
    layers.polygon.textContent = "";
    layers.halos.textContent = "";
    layers.curves.textContent = "";
    if (state.visible.bezier || state.visible.bspline) {
      el("path", { class: "polygon", d: pathOf(MAIN, state.points, Y_RANGE) }, layers.polygon);
    }
    for (const { key, color } of CURVES) {
      if (!state.visible[key]) continue;
      const changed = state.lastDrag ? state.lastDrag.changed[key] : [];
      pieces[key].forEach((piece, i) => {
        if (changed[i]) el("path", { class: "halo", d: pathOf(MAIN, piece, Y_RANGE), style: `stroke:${color}` }, layers.halos);
      });
      const d = pieces[key].map((piece) => pathOf(MAIN, piece, Y_RANGE)).join("");
      el("path", { class: "curve", d, style: `stroke:${color}`, "data-curve": key }, layers.curves);
    }
    state.points.forEach((p, i) => {
      const c = layers.circles[i];
      c.setAttribute("cx", sx(MAIN, p[0]).toFixed(2));
      c.setAttribute("cy", sy(MAIN, p[1], Y_RANGE).toFixed(2));
      c.setAttribute("aria-valuenow", p[1].toFixed(3));
      c.classList.toggle("active", state.dragging !== null && state.dragging.index === i);
      const t = layers.labels[i];
      t.setAttribute("x", sx(MAIN, p[0]) + 9);
      t.setAttribute("y", sy(MAIN, p[1], Y_RANGE) - 9);
      t.textContent = "P" + String(i).split("").map((ch) => "₀₁₂₃₄₅₆₇₈₉"[+ch]).join("");
    });
  }

  /* ------------------------------------------------------------------ basis plot */
  function renderBasis() {
    basisSvg.textContent = "";
    const range = [-0.08, 1.12];
    const knots = knotsFor(state.n);
    const [a, b] = xRange();
    const x0 = sx(BASIS, 1), x1 = sx(BASIS, state.n - 2);
    el("rect", { class: "domain-band", x: x0, y: BASIS.t, width: x1 - x0, height: BASIS.h - BASIS.t - BASIS.b }, basisSvg);
    for (const y of [0, 1]) {
      el("line", { class: y ? "grid-line" : "axis-line", x1: BASIS.l, x2: BASIS.w - BASIS.r,
                   y1: sy(BASIS, y, range), y2: sy(BASIS, y, range) }, basisSvg);
      el("text", { x: BASIS.l - 8, y: sy(BASIS, y, range) + 4, "text-anchor": "end" }, basisSvg).textContent = y;
    }
    for (const t of knots) {
      if (t < a || t > b) continue;
      el("line", { class: "knot-tick", x1: sx(BASIS, t), x2: sx(BASIS, t), y1: BASIS.h - BASIS.b,
                   y2: BASIS.h - BASIS.b + 5 }, basisSvg);
      el("text", { x: sx(BASIS, t), y: BASIS.h - 6, "text-anchor": "middle" }, basisSvg).textContent = t;
    }
    const us = linspace(a, b, 401).concat(knots.filter((t) => t > a && t < b)).sort((p, q) => p - q);
    const values = us.map((u) => S.bsplineBasis(u, knots, ORDER));
    const hi = state.dragging ? state.dragging.index : state.lastDrag ? state.lastDrag.index : state.focus;
    for (let i = 0; i < state.n; i++) {
      const pts = us.map((u, s) => [u, values[s][i]]);
      const hue = 150 + ((i * 47) % 160);
      const color = i === hi ? "var(--bspline)" : `hsl(${hue} 35% 62%)`;
      if (i === hi) {
        const area = pathOf(BASIS, pts, range) + `L${sx(BASIS, b)},${sy(BASIS, 0, range)}L${sx(BASIS, a)},${sy(BASIS, 0, range)}Z`;
        el("path", { class: "basis-fill", d: area, style: `fill:${color}` }, basisSvg);
      }
      el("path", { class: "basis-line", d: pathOf(BASIS, pts, range), style: `stroke:${color};stroke-width:${i === hi ? 2.6 : 1.5}`,
                   "data-basis": i }, basisSvg);
      const peak = knots[i + 2];
      if (peak > a && peak < b) {
        el("text", { x: sx(BASIS, peak), y: sy(BASIS, 2 / 3, range) - 6, "text-anchor": "middle",
                     style: i === hi ? "fill:var(--bspline);font-weight:600" : "" }, basisSvg).textContent =
          "B" + String(i).split("").map((ch) => "₀₁₂₃₄₅₆₇₈₉"[+ch]).join("");
      }
    }
    const sum = us.map((u, s) => [u, values[s].reduce((p, q) => p + q, 0)]);
    el("path", { class: "unity", d: pathOf(BASIS, sum, range) }, basisSvg);
    document.getElementById("basis-caption").innerHTML =
      `The ${state.n} cubic B-splines B<sub>0</sub>…B<sub>${state.n - 1}</sub> on uniform knots ` +
      `t = ${knots[0]}, ${knots[1]}, …, ${knots[knots.length - 1]}: grid_size G = ${state.n - ORDER} on the grid range ` +
      `[1, ${state.n - 2}] (shaded), extended by 3 knots per side as <code>kanlab.splines.uniform_knots</code> builds ` +
      `them. Inside the range they are ≥ 0 and sum to 1 (dashed). The height of P<sub>i</sub> is the coefficient ` +
      `of B<sub>i</sub>${hi !== null && hi !== undefined ? `; B<sub>${hi}</sub>, highlighted, is the one you moved` : ""}.`;
  }

  /* ------------------------------------------------------------------ side panel */
  function renderPanel() {
    const rows = document.getElementById("piece-rows");
    rows.textContent = "";
    const d = state.lastDrag;
    const counts = {};
    for (const { key, label, color } of CURVES) {
      const row = document.createElement("div");
      row.className = "row";
      row.style.setProperty("--c", color);
      row.style.opacity = state.visible[key] ? 1 : 0.45;
      const flags = d ? d.changed[key] : null;
      const nPieces = key === "bezier" ? 1 : key === "bspline" ? state.n - ORDER : state.n - 1;
      let cells = "";
      for (let i = 0; i < nPieces; i++) {
        cells += `<span class="piece${flags && flags[i] ? " on" : ""}" title="piece ${i}"></span>`;
      }
      const moved = flags ? flags.filter(Boolean).length : 0;
      counts[key] = [moved, nPieces];
      row.classList.add("counted");
      row.innerHTML = `<span class="name"><span class="dot"></span>${label}</span>` +
        `<span class="pieces strip" data-curve="${key}">${cells}</span>` +
        `<span class="count">${flags ? `${moved} of ${nPieces}` : ""}</span>`;
      rows.appendChild(row);
    }
    const summary = document.getElementById("drag-summary");
    if (d) {
      const dy = d.to[1] - d.from[1];
      const local = (k) => (counts[k][0] < counts[k][1] ? "local" : "everywhere");
      summary.innerHTML = `You moved P<sub>${d.index}</sub> by Δy = ${dy >= 0 ? "+" : ""}${dy.toFixed(2)}. ` +
        `Catmull–Rom: ${local("catmullRom")}; B-spline: ${local("bspline")}; natural cubic: ${local("natural")}.`;
    }
    const cont = continuity(state.points);
    const box = document.getElementById("continuity");
    box.textContent = "";
    for (const { key, label, color } of CURVES) {
      const row = document.createElement("div");
      row.className = "row";
      row.style.setProperty("--c", color);
      row.style.opacity = state.visible[key] ? 1 : 0.45;
      let badges;
      if (key === "bezier") {
        badges = `<span class="badge c2" title="a single polynomial: infinitely differentiable">C<sup>∞</sup></span>` +
          `<span class="count">one polynomial, no knots</span>`;
      } else {
        badges = cont[key].map((e) => {
          const cls = e.cls >= 2 ? "c2" : e.cls === 1 ? "c1" : e.cls === 0 ? "c0" : "cx";
          const name = e.cls >= 0 ? `C${SUP[Math.min(e.cls, 3)]}` : "jump";
          const tip = `knot ${+e.knot.toFixed(3)}: jumps of f, f′, f″, f‴ = ${e.jumps.map(fmt).join(", ")}`;
          return `<span class="badge ${cls}" title="${tip}" data-knot="${e.knot}">${name}</span>`;
        }).join("");
      }
      row.innerHTML = `<span class="name"><span class="dot"></span>${label}</span><span class="pieces" data-continuity="${key}">${badges}</span>`;
      box.appendChild(row);
    }
  }

  function render() {
    const pieces = curvePieces(state.points);
    renderMain(pieces);
    renderBasis();
    renderPanel();
  }

  /* ------------------------------------------------------------------ interaction */
  function toData(evt) {
    const pt = main.createSVGPoint();
    pt.x = evt.clientX;
    pt.y = evt.clientY;
    const p = pt.matrixTransform(main.getScreenCTM().inverse());
    const [a, b] = xRange();
    const x = a + ((p.x - MAIN.l) / (MAIN.w - MAIN.l - MAIN.r)) * (b - a);
    const y = Y_RANGE[0] + ((MAIN.h - MAIN.b - p.y) / (MAIN.h - MAIN.t - MAIN.b)) * (Y_RANGE[1] - Y_RANGE[0]);
    return [x, y];
  }

  function movePoint(i, x, y) {
    const P = state.points;
    const [a, b] = xRange();
    if (!state.heightsOnly) {
      const lo = i > 0 ? P[i - 1][0] + MIN_GAP : a + 0.05;
      const hi = i + 1 < P.length ? P[i + 1][0] - MIN_GAP : b - 0.05;
      P[i][0] = Math.min(Math.max(x, lo), hi);
    }
    P[i][1] = Math.min(Math.max(y, Y_RANGE[0] + 0.05), Y_RANGE[1] - 0.05);
  }

  function beginMove(i) {
    return { index: i, from: state.points[i].slice(), snapshot: curvePieces(state.points) };
  }
  function finishMove(move) {
    const { changed, maxDiff } = compare(move.snapshot, curvePieces(state.points));
    state.lastDrag = { index: move.index, from: move.from, to: state.points[move.index].slice(), changed, maxDiff };
  }

  function startDrag(e, i) {
    e.preventDefault();
    state.dragging = Object.assign(beginMove(i), { pointerId: e.pointerId });
    state.focus = i;
    e.target.setPointerCapture(e.pointerId);
    render();
  }
  function moveDrag(e) {
    const d = state.dragging;
    if (!d || e.pointerId !== d.pointerId) return;
    const [x, y] = toData(e);
    movePoint(d.index, x, y);
    finishMove(d);
    render();
  }
  function endDrag(e) {
    const d = state.dragging;
    if (!d || e.pointerId !== d.pointerId) return;
    finishMove(d);
    state.dragging = null;
    render();
  }
  function keyMove(e, i) {
    const step = e.shiftKey ? 0.02 : 0.1;
    const delta = { ArrowUp: [0, step], ArrowDown: [0, -step], ArrowLeft: [-step, 0], ArrowRight: [step, 0] }[e.key];
    if (!delta) return;
    e.preventDefault();
    const move = beginMove(i);
    const p = state.points[i];
    movePoint(i, p[0] + delta[0], p[1] + delta[1]);
    finishMove(move);
    render();
  }

  function setPoints(points) {
    const n = points.length;
    if (n < 5 || n > 12) throw new Error(`the tour shows 5 to 12 points, got ${n}`);
    for (let i = 1; i < n; i++) {
      if (!(points[i][0] > points[i - 1][0])) throw new Error("point x coordinates must be strictly increasing");
    }
    const rebuild = n !== state.n;
    state.n = n;
    state.points = points.map((p) => [Number(p[0]), Number(p[1])]);
    state.lastDrag = null;
    state.dragging = null;
    state.focus = null;
    document.getElementById("count").value = String(n);
    if (rebuild || !layers.circles) buildMain();
    render();
  }

  function setupToolbar() {
    document.querySelectorAll("#toolbar .chip").forEach((chip) => {
      const input = chip.querySelector("input");
      input.addEventListener("change", () => setVisible(chip.dataset.curve, input.checked));
    });
    const count = document.getElementById("count");
    for (let n = 5; n <= 12; n++) count.appendChild(new Option(String(n), String(n)));
    count.value = String(state.n);
    count.addEventListener("change", () => setPoints(initialPoints(+count.value)));
    document.getElementById("reset").addEventListener("click", () => setPoints(initialPoints(state.n)));
    document.getElementById("shuffle").addEventListener("click", () =>
      setPoints(state.points.map((p) => [p[0], Math.round((0.2 + 2.4 * Math.random()) * 100) / 100])));
    document.getElementById("heights-only").addEventListener("change", (e) => { state.heightsOnly = e.target.checked; });
  }

  function setVisible(key, on) {
    if (!(key in state.visible)) throw new Error(`unknown curve ${key}; choose from ${Object.keys(state.visible)}`);
    state.visible[key] = !!on;
    const chip = document.querySelector(`#toolbar .chip[data-curve="${key}"]`);
    chip.querySelector("input").checked = !!on;
    chip.classList.toggle("off", !on);
    render();
  }

  /* ------------------------------------------------------------------ exported API */
  function flat(pieces) { return [].concat(...pieces); }
  function samples(points = state.points, per = 24) {
    const c = curvePieces(points, per);
    const knots = c.knots;
    const [a, b] = [knots[0] - 0.5, knots[knots.length - 1] + 0.5];
    const basisU = linspace(a, b, 8 * (knots.length + 1) + 1).concat(knots);
    return {
      points: points.map((p) => p.slice()),
      x: flat(c.x), catmullRom: flat(c.catmullRom).map((p) => p[1]), natural: flat(c.natural).map((p) => p[1]),
      t: flat(c.t), bezier: flat(c.bezier),
      u: flat(c.u), bspline: flat(c.bspline), knots, order: ORDER,
      basisU, basis: basisU.map((u) => S.bsplineBasis(u, knots, ORDER)),
    };
  }

  window.splineTour = {
    version: "%%VERSION%%",
    curves: CURVES.map((c) => c.key),
    state() {
      const d = state.lastDrag;
      return JSON.parse(JSON.stringify({
        n: state.n, points: state.points, visible: state.visible, heightsOnly: state.heightsOnly,
        knots: knotsFor(state.n), gridRange: [1, state.n - 2], order: ORDER,
        dragging: state.dragging ? state.dragging.index : null,
        lastDrag: d && { index: d.index, from: d.from, to: d.to, changed: d.changed, maxDiff: d.maxDiff },
        continuity: continuity(state.points),
      }));
    },
    samples, setPoints, setVisible,
  };

  setupToolbar();
  setPoints(initialPoints(state.n));
  document.body.dataset.ready = "1";
})();
