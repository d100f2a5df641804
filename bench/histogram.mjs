// Prometheus histograms read from two /metrics scrapes, for bench/run.mjs: the quantiles of what
// was observed between them, and a bound on a quantile of the sum of several such times.
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

// A histogram of samples in µs (times measured outside mxgw, such as bench/sockwait.mjs's), in
// the form phaseHistogram gives: each bound counts the samples at or below it. With weights, a
// sample counts as its weight (bytes, say) instead of 1.
export function histogramOf(samples, bounds, weights = null) {
  const order = samples.map((_, i) => i).sort((i, j) => samples[i] - samples[j]);
  let i = 0;
  let c = 0;
  const cum = [...bounds, Infinity].map((le) => {
    for (; i < order.length && samples[order[i]] <= le; i++) c += weights ? weights[order[i]] : 1;
    return [le, c];
  });
  return { n: c, cum }; // every sample is at or below the last bound, +Inf
}

// A bound on the p quantile of a sum of times each message spends in several places (its two
// crossings of mxgw; or the wait in each socket and each crossing), observed in one histogram
// per place without knowing which observations belong to the same message. The sum exceeds
// x1 + x2 + … only if some term i exceeds its xi, so the fraction of messages over that total is
// at most the sum of each term's fraction over its xi (the union bound). Any split of the 1 - p
// allowed between the terms gives a valid bound; this takes the smallest total over all choices
// of bucket bounds whose tails add up to at most 1 - p. Splitting it evenly (the p99.5 of each of
// two terms, for a p99) is one of those choices, so the result is never above that sum.
// Returns { bound_us, parts_us } (the total and each term's xi), or null unless every histogram
// has observations.
export function sumBound(hists, p) {
  if (!hists.length || hists.some((h) => !h || h.n <= 0)) return null;
  const allowed = 1 - p + 1e-12; // rounding in the tails' sum must not refuse an exact split
  // The choices so far as a Pareto frontier: ascending totals, each with a smaller tail than
  // every choice with a smaller total (any other choice is never better).
  let front = [{ sum: 0, tail: 0, parts: [] }];
  for (const h of hists) {
    const next = [];
    for (const f of front)
      for (const [x, c] of h.cum) {
        const tail = f.tail + (h.n - c) / h.n;
        if (tail <= allowed) next.push({ sum: f.sum + x, tail, parts: [...f.parts, x] });
      }
    next.sort((a, b) => a.sum - b.sum || a.tail - b.tail);
    front = [];
    for (const c of next)
      if (!front.length || c.tail < front[front.length - 1].tail) front.push(c);
  }
  const best = front[0]; // the last bound (+Inf) of every term always fits
  return { bound_us: best.sum, parts_us: best.parts };
}
