// bench/histogram.mjs: what bench/run reads off mxgw's histograms for the latency budget. The
// bound on the p99 of a message's crossings (and the waits before them) must hold for any way the
// observations pair up into messages, and must be no worse than splitting the 1% evenly.

import { test } from "node:test";
import assert from "node:assert/strict";
import { histogramOf, phaseHistogram, quantile, quantiles, sumBound } from "../../bench/histogram.mjs";

const FAMILY = "mxgw_forward_seconds";
const BOUNDS = [0.0001, 0.0005, 0.001, 0.0015, 0.002, 0.005]; // seconds, +Inf implied

// A /metrics text with one series per direction, as mxgw renders it (cumulative buckets).
function scrape(series) {
  const lines = [`# TYPE ${FAMILY} histogram`];
  for (const [d, values] of Object.entries(series)) {
    const labels = `transport="ws-json",direction="${d}"`;
    for (const le of [...BOUNDS, Infinity]) {
      const n = values.filter((v) => v <= le).length;
      lines.push(`${FAMILY}_bucket{${labels},le="${le === Infinity ? "+Inf" : le}"} ${n}`);
    }
    lines.push(`${FAMILY}_count{${labels}} ${values.length}`);
  }
  return lines.join("\n") + "\n";
}

const hist = (before, after, d) =>
  phaseHistogram(scrape(before), scrape(after), FAMILY, `transport="ws-json",direction="${d}"`);

// A deterministic generator, so a failure repeats.
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test("phaseHistogram counts only what was observed between the two scrapes", () => {
  const before = { to_server: [0.00005, 0.003], to_client: [] };
  const after = { to_server: [0.00005, 0.003, 0.0004, 0.0012, 0.0012, 0.01], to_client: [0.0001] };
  const h = hist(before, after, "to_server");
  assert.equal(h.n, 4);
  assert.deepEqual(h.cum.map(([, c]) => c), [0, 1, 1, 3, 3, 3, 4]);
  assert.deepEqual(h.cum.map(([le]) => le), [100, 500, 1000, 1500, 2000, 5000, Infinity]);
  assert.equal(quantile(h, 0.25), 500, "the first quarter ends in the 0.5 ms bucket");
  assert.equal(quantile(h, 0.5), 1500);
  assert.equal(quantile(h, 0.99), Infinity, "past the last bound");
  assert.deepEqual(quantiles(hist(before, before, "to_server")), { n: 0 });
  assert.equal(phaseHistogram(scrape(before), "", FAMILY, 'transport="ws-json",direction="to_server"'), null,
    "a scrape without the series gives no histogram");
});

test("sumBound finds a better split of the 1% than the two p99.5s", () => {
  // 1,000 messages. 0.2% of the stanzas to the server wait 3 ms, 0.8% of the frames to the client
  // 1.2 ms, everything else 50 µs. The p99.5s are 0.1 ms and 1.5 ms: 1.6 ms added. But the
  // tails above 0.1 ms add up to 1.0% on their own, so no more than 1% of messages can spend
  // over 0.2 ms in both crossings together.
  const a = Array.from({ length: 1000 }, (_, i) => (i < 2 ? 0.003 : 0.00005));
  const b = Array.from({ length: 1000 }, (_, i) => (i < 8 ? 0.0012 : 0.00005));
  const ha = hist({ to_server: [], to_client: [] }, { to_server: a, to_client: b }, "to_server");
  const hb = hist({ to_server: [], to_client: [] }, { to_server: a, to_client: b }, "to_client");
  assert.equal(quantile(ha, 0.995) + quantile(hb, 0.995), 1600);
  assert.deepEqual(sumBound([ha, hb], 0.99), { bound_us: 200, parts_us: [100, 100] });
  assert.equal(sumBound([ha, { n: 0, cum: [] }], 0.99), null, "no bound without both sides");
  assert.equal(sumBound([ha, null], 0.99), null);
});

test("sumBound bounds the p99 of the sum however the crossings pair up, and never exceeds the p99.5s added",
  () => {
    const rand = rng(7);
    const draw = () => {
      const r = rand();
      // mostly fast, a tail spread over the buckets around the budget, a few far out
      return r < 0.97 ? rand() * 0.0002 : r < 0.995 ? 0.0005 + rand() * 0.002 : 0.002 + rand() * 0.01;
    };
    for (let round = 0; round < 50; round++) {
      const n = 200 + Math.floor(rand() * 2000);
      const a = Array.from({ length: n }, draw);
      const b = Array.from({ length: n }, draw);
      const ha = hist({ to_server: [], to_client: [] }, { to_server: a, to_client: b }, "to_server");
      const hb = hist({ to_server: [], to_client: [] }, { to_server: a, to_client: b }, "to_client");
      const { bound_us } = sumBound([ha, hb], 0.99);
      assert.ok(bound_us <= quantile(ha, 0.995) + quantile(hb, 0.995), `round ${round}: no worse than the even split`);
      // Pairings: as drawn, and the adversarial one (slowest with slowest).
      const sorted = (x) => [...x].sort((p, q) => p - q);
      for (const [x, y] of [[a, b], [sorted(a), sorted(b)]]) {
        const sums = sorted(x.map((v, i) => (v + y[i]) * 1e6));
        const over = sums.filter((s) => s > bound_us + 1e-9).length;
        assert.ok(over <= 0.01 * n, `round ${round}: ${over} of ${n} sums over the bound ${bound_us} µs`);
      }
    }
  });

test("histogramOf counts samples at or below each bound", () => {
  const h = histogramOf([5, 10, 10.5, 3000, 7], [10, 20, 100]);
  assert.equal(h.n, 5);
  assert.deepEqual(h.cum, [[10, 3], [20, 4], [100, 4], [Infinity, 5]]);
  assert.deepEqual(histogramOf([], [10]), { n: 0, cum: [[10, 0], [Infinity, 0]] });
  const w = histogramOf([30, 5, 3000], [10, 100], [2, 100, 7]);
  assert.deepEqual(w, { n: 109, cum: [[10, 100], [100, 102], [Infinity, 109]] }, "weights count instead of 1");
  assert.equal(quantile(w, 0.9), 10, "90% of the weight is at or below 10 µs");
  assert.equal(quantile(w, 0.93), 100);
});

test("sumBound over four terms (two waits, two crossings) holds however they pair up", () => {
  const rand = rng(11);
  const bounds = Array.from({ length: 60 }, (_, i) => 50 * (i + 1)); // µs
  const draw = () => {
    const r = rand();
    return r < 0.98 ? rand() * 200 : r < 0.997 ? 200 + rand() * 1500 : 2000 + rand() * 4000;
  };
  for (let round = 0; round < 30; round++) {
    const n = 300 + Math.floor(rand() * 1500);
    const terms = Array.from({ length: 4 }, () => Array.from({ length: n }, draw));
    const hs = terms.map((t) => histogramOf(t, bounds));
    const { bound_us, parts_us } = sumBound(hs, 0.99);
    assert.equal(parts_us.length, 4);
    assert.equal(parts_us.reduce((x, y) => x + y, 0), bound_us);
    const tails = hs.reduce((t, h, i) => t + (h.n - h.cum.find(([le]) => le === parts_us[i])[1]) / h.n, 0);
    assert.ok(tails <= 0.01 + 1e-12, `round ${round}: the chosen tails add up to ${tails}`);
    const even = hs.reduce((t, h) => t + quantile(h, 0.9975), 0);
    assert.ok(bound_us <= even, `round ${round}: ${bound_us} is over the even split ${even}`);
    const sorted = (x) => [...x].sort((p, q) => p - q);
    for (const pairing of [terms, terms.map(sorted)]) {
      const over = pairing[0].filter((_, i) => pairing.reduce((t, x) => t + x[i], 0) > bound_us + 1e-9).length;
      assert.ok(over <= 0.01 * n, `round ${round}: ${over} of ${n} sums over the bound ${bound_us} µs`);
    }
  }
});
