/* kanlab spline tour — the spline mathematics, written as kanlab.splines writes it (same formulas, same
 * order of operations, float64), so that the page's curves agree with the Python library to rounding.
 *
 *   bezier(points, t)                       de Casteljau
 *   bsplineBasis(x, knots, k, side)          Cox–de Boor, 0/0 read as 0; side "right" (the library's
 *                                            convention: right-continuous, last interval closed) or "left"
 *   bsplineBasisDerivative(x, knots, k, n, side)
 *   uniformKnots(G, k, lo, hi)               kanlab.splines.uniform_knots
 *   catmullRomSlopes / cubicHermite / naturalCubic -> {xk, a, b, c, d}; evalPiecewise(pc, x, nu)
 *   jumpsAt(...)                             one-sided derivative jumps, for the continuity readout
 */
"use strict";

const KanlabSplines = (function () {
  function safeDiv(num, den) {
    return den > 0 ? num / den : 0;
  }

  /* ---------------------------------------------------------------- Bézier (de Casteljau) */
  function bezier(points, t) {
    let cur = points.map((p) => p.slice());
    while (cur.length > 1) {
      const next = [];
      for (let i = 0; i + 1 < cur.length; i++) {
        const p = cur[i], q = cur[i + 1];
        next.push(p.map((v, d) => (1 - t) * v + t * q[d]));
      }
      cur = next;
    }
    return cur[0];
  }

  /* ---------------------------------------------------------------- B-splines (Cox–de Boor) */
  function order0(x, t, side) {
    const m = t.length - 1;
    const out = new Array(m).fill(0);
    if (side === "left") {
      // (t_i, t_{i+1}], the first interval of positive length also takes x == t[0]
      let firstNd = -1;
      for (let i = m - 1; i >= 0; i--) if (t[i + 1] > t[i]) firstNd = i;
      for (let i = 0; i < m; i++) {
        if ((x > t[i] && x <= t[i + 1]) || (x === t[0] && i === firstNd)) out[i] = 1;
      }
      return out;
    }
    // [t_i, t_{i+1}), the last interval of positive length also takes x == t[-1]
    let lastNd = -1;
    for (let i = 0; i < m; i++) if (t[i + 1] > t[i]) lastNd = i;
    for (let i = 0; i < m; i++) {
      if ((x >= t[i] && x < t[i + 1]) || (x === t[m] && i === lastNd)) out[i] = 1;
    }
    return out;
  }

  function basisTables(x, t, k, side) {
    let b = order0(x, t, side);
    const tables = [b];
    for (let p = 1; p <= k; p++) {
      const nb = [];
      for (let i = 0; i + 1 < b.length; i++) {
        const left = safeDiv(x - t[i], t[i + p] - t[i]) * b[i];
        const right = safeDiv(t[i + p + 1] - x, t[i + p + 1] - t[i + 1]) * b[i + 1];
        nb.push(left + right);
      }
      b = nb;
      tables.push(b);
    }
    return tables;
  }

  function bsplineBasis(x, knots, k, side = "right") {
    return basisTables(x, knots, k, side)[k];
  }

  function bsplineBasisDerivative(x, knots, k, n = 1, side = "right") {
    const nOut = knots.length - k - 1;
    if (n === 0) return bsplineBasis(x, knots, k, side);
    if (n > k) return new Array(nOut).fill(0);
    let d = basisTables(x, knots, k - n, side)[k - n];
    const t = knots;
    for (let p = k - n + 1; p <= k; p++) {
      const nd = [];
      for (let i = 0; i + 1 < d.length; i++) {
        const a = safeDiv(p, t[i + p] - t[i]);
        const c = safeDiv(p, t[i + p + 1] - t[i + 1]);
        nd.push(a * d[i] - c * d[i + 1]);
      }
      d = nd;
    }
    return d;
  }

  function uniformKnots(G, k, lo, hi) {
    const h = (hi - lo) / G;
    const out = [];
    for (let i = -k; i <= G + k; i++) out.push(lo + i * h);
    return out;
  }

  /* B-spline curve Σ P_i B_i(u) (points of any dimension), or its n-th derivative in u. */
  function bsplineCurve(points, knots, k, u, n = 0, side = "right") {
    const w = n === 0 ? bsplineBasis(u, knots, k, side) : bsplineBasisDerivative(u, knots, k, n, side);
    const dim = points[0].length;
    const out = new Array(dim).fill(0);
    for (let i = 0; i < w.length; i++) for (let d = 0; d < dim; d++) out[d] += w[i] * points[i][d];
    return out;
  }

  /* ---------------------------------------------------------------- interpolating cubics */
  function catmullRomSlopes(xk, yk) {
    const n = xk.length;
    if (n === 2) {
      const s = (yk[1] - yk[0]) / (xk[1] - xk[0]);
      return [s, s];
    }
    const m = [(yk[1] - yk[0]) / (xk[1] - xk[0])];
    for (let i = 1; i < n - 1; i++) m.push((yk[i + 1] - yk[i - 1]) / (xk[i + 1] - xk[i - 1]));
    m.push((yk[n - 1] - yk[n - 2]) / (xk[n - 1] - xk[n - 2]));
    return m;
  }

  function cubicHermite(xk, yk, slopes) {
    const m = slopes || catmullRomSlopes(xk, yk);
    const a = [], b = [], c = [], d = [];
    for (let i = 0; i + 1 < xk.length; i++) {
      const h = xk[i + 1] - xk[i];
      const delta = (yk[i + 1] - yk[i]) / h;
      a.push(yk[i]);
      b.push(m[i]);
      c.push((3 * delta - 2 * m[i] - m[i + 1]) / h);
      d.push((m[i] + m[i + 1] - 2 * delta) / (h * h));
    }
    return { xk: xk.slice(), a, b, c, d };
  }

  function naturalCubic(xk, yk) {
    const n = xk.length;
    const h = [], delta = [];
    for (let i = 0; i + 1 < n; i++) {
      h.push(xk[i + 1] - xk[i]);
      delta.push((yk[i + 1] - yk[i]) / h[i]);
    }
    let M = new Array(n).fill(0);
    if (n > 2) {
      // h_{i-1} M_{i-1} + 2(h_{i-1} + h_i) M_i + h_i M_{i+1} = 6(delta_i - delta_{i-1}), Thomas algorithm
      const r = n - 2;
      const sub = h.slice(1, -1), sup = h.slice(1, -1);
      const diag = [], rhs = [];
      for (let i = 0; i < r; i++) {
        diag.push(2 * (h[i] + h[i + 1]));
        rhs.push(6 * (delta[i + 1] - delta[i]));
      }
      const cp = [], dp = [];
      for (let i = 0; i < r; i++) {
        if (i === 0) {
          const denom = diag[0];
          cp.push(r > 1 ? sup[0] / denom : 0);
          dp.push(rhs[0] / denom);
        } else {
          const denom = diag[i] - sub[i - 1] * cp[i - 1];
          cp.push(i < r - 1 ? sup[i] / denom : 0);
          dp.push((rhs[i] - sub[i - 1] * dp[i - 1]) / denom);
        }
      }
      const sol = [dp[r - 1]];
      for (let i = r - 2; i >= 0; i--) sol.push(dp[i] - cp[i] * sol[sol.length - 1]);
      M = [0, ...sol.reverse(), 0];
    }
    const a = [], b = [], c = [], d = [];
    for (let i = 0; i + 1 < n; i++) {
      a.push(yk[i]);
      b.push(delta[i] - (h[i] * (2 * M[i] + M[i + 1])) / 6);
      c.push(M[i] / 2);
      d.push((M[i + 1] - M[i]) / (6 * h[i]));
    }
    return { xk: xk.slice(), a, b, c, d };
  }

  /* index of the piece holding x, as torch.searchsorted(right=True) - 1, clamped to the pieces */
  function locate(xk, x) {
    let lo = 0, hi = xk.length; // first index with xk[idx] > x
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xk[mid] <= x) lo = mid + 1; else hi = mid;
    }
    return Math.min(Math.max(lo - 1, 0), xk.length - 2);
  }

  function evalPiece(pc, i, u, nu) {
    const a = pc.a[i], b = pc.b[i], c = pc.c[i], d = pc.d[i];
    if (nu === 0) return a + u * (b + u * (c + u * d));
    if (nu === 1) return b + u * (2 * c + 3 * u * d);
    if (nu === 2) return 2 * c + 6 * u * d;
    if (nu === 3) return 6 * d;
    return 0;
  }

  function evalPiecewise(pc, x, nu = 0) {
    const i = locate(pc.xk, x);
    return evalPiece(pc, i, x - pc.xk[i], nu);
  }

  /* ---------------------------------------------------------------- continuity at the knots */
  /* At the interior breakpoints of a piecewise cubic: {knot, jumps, scales} with jumps[m] =
   * |f^(m)(knot+) - f^(m)(knot-)| and scales[m] = max(|f^(m)(knot±)|), for m = 0..3. */
  function piecewiseJumps(pc) {
    const out = [];
    for (let i = 1; i + 1 < pc.xk.length; i++) {
      const h = pc.xk[i] - pc.xk[i - 1];
      const r = [0, 1, 2, 3].map((m) => evalPiece(pc, i, 0, m));
      const l = [0, 1, 2, 3].map((m) => evalPiece(pc, i - 1, h, m));
      out.push({
        knot: pc.xk[i],
        jumps: r.map((v, m) => Math.abs(v - l[m])),
        scales: r.map((v, m) => Math.max(Math.abs(v), Math.abs(l[m]))),
      });
    }
    return out;
  }

  /* Same for a B-spline curve at the distinct knots strictly inside its domain [t_k, t_n], with vector
   * norms; the one-sided derivatives are exact (Cox–de Boor with left- or right-closed intervals). */
  function bsplineJumps(points, knots, k) {
    const n = knots.length - k - 1;
    const norm = (v) => Math.hypot(...v);
    const out = [];
    const seen = new Set();
    for (let j = k + 1; j < n; j++) {
      const u = knots[j];
      if (seen.has(u) || !(u > knots[k] && u < knots[n])) continue;
      seen.add(u);
      const jumps = [], scales = [];
      for (let m = 0; m <= k; m++) {
        const r = bsplineCurve(points, knots, k, u, m, "right");
        const l = bsplineCurve(points, knots, k, u, m, "left");
        jumps.push(norm(r.map((v, d) => v - l[d])));
        scales.push(Math.max(norm(r), norm(l)));
      }
      out.push({ knot: u, jumps, scales });
    }
    return out;
  }

  /* The "C^m" of a knot: the highest m such that derivatives 0..m are continuous (relative tolerance). */
  function continuityClass(entry, rtol = 1e-9) {
    let m = -1;
    for (let i = 0; i < entry.jumps.length; i++) {
      if (entry.jumps[i] <= rtol * (1 + entry.scales[i])) m = i; else break;
    }
    return m;
  }

  return {
    bezier, bsplineBasis, bsplineBasisDerivative, bsplineCurve, uniformKnots,
    catmullRomSlopes, cubicHermite, naturalCubic, evalPiecewise, locate,
    piecewiseJumps, bsplineJumps, continuityClass,
  };
})();

if (typeof module !== "undefined") module.exports = KanlabSplines;
