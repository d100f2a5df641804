// Prometheus histograms read from two /metrics scrapes, for bench/run.mjs: the quantiles of what
// was observed between them, and a bound on a quantile of the sum of two such times.
//
// Every figure is a bucket's upper bound, so it errs high by at most that bucket's width.

import { parseMetrics } from "../tests/integration/lib/env.mjs";

// Buckets of one histogram series (family and labels) as [upper bound, cumulative count], in
// the order mxgw renders them (ascending).
function buckets(text, family, labels) {
  const prefix = `${family}_bucket{${labels ? `${labels},` : ""}le="`;
  return Object.entries(parseMetrics(text)).filter(([k]) => k.startsWith(prefix)).map(([k, n]) => {
    const le = k.slice(prefix.length, -2); // up to '"}'
    return [le === "+Inf" ? Infinity : Number(le), n];
  });
}

// What one series observed between scrape a and scrape b: { n, cum: [[bound in µs, count at or
// below it], …] }, or null when the series is missing or its buckets changed.
export function phaseHistogram(a, b, family, labels) {
  const x = buckets(a, family, labels);
  const y = buckets(b, family, labels);
  if (!x.length || x.length !== y.length || x.some(([le], i) => le !== y[i][0])) return null;
  // (bounds to the nanosecond: 0.0001 s is 100 µs, not 100.00000000000001)
  const cum = y.map(([le, n], i) => [Math.round(le * 1e9) / 1e3, n - x[i][1]]);
  return { n: cum[cum.length - 1][1], cum };
}

// The p quantile (0 < p < 1) as the upper bound of the bucket it falls in (µs; Infinity past the
// last bound, NaN with no observation).
export function quantile(h, p) {
  if (!h || h.n <= 0) return NaN;
  return h.cum.find(([, c]) => c >= p * h.n)[0];
}

// The figures bench/run reports of one histogram: its count, p50, p99, p99.5 and p99.9 (µs).
export function quantiles(h) {
  if (!h) return null;
  const q = (p) => quantile(h, p);
  return h.n > 0 ? { n: h.n, p50_us: q(0.5), p99_us: q(0.99), p995_us: q(0.995), p999_us: q(0.999) } : { n: 0 };
}

// A bound on the p quantile of a + b, where a and b are two times each message spends (its two
// crossings of mxgw), observed in histograms ha and hb without knowing which observations belong
// to the same message. a + b > x + y only if a > x or b > y, so the fraction of messages over
// x + y is at most the fraction of a over x plus that of b over y (the union bound). Any split of
// the 1 - p allowed between the two sides gives a valid bound; this takes the smallest x + y over
// all pairs of bucket bounds whose tails add up to at most 1 - p. Splitting it evenly (the p99.5 of
// each for a p99) is one of those pairs, so the result is never above that sum.
// Returns { bound_us, a_us, b_us } (x + y, x, y), or null without observations on both sides.
export function sumBound(ha, hb, p) {
  if (!ha || !hb || ha.n <= 0 || hb.n <= 0) return null;
  const allowed = 1 - p + 1e-12; // rounding in the tails' sum must not refuse an exact split
  let best = null;
  for (const [x, ca] of ha.cum) {
    const tailA = (ha.n - ca) / ha.n;
    if (tailA > allowed) continue;
    // The smallest bound of b whose tail fits in what a leaves (the last bound, +Inf, always does).
    const hit = hb.cum.find(([, cb]) => tailA + (hb.n - cb) / hb.n <= allowed);
    const sum = x + hit[0];
    if (!best || sum < best.bound_us) best = { bound_us: sum, a_us: x, b_us: hit[0] };
  }
  return best;
}
