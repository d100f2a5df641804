// bench/histogram.mjs: what bench/run reads off mxgw's histograms for the latency budget. The
// bound on the p99 of a message's two crossings must hold for any way the observations pair up
// into messages, and must be no worse than adding the two p99.5s.

import { test } from "node:test";
import assert from "node:assert/strict";
import { phaseHistogram, quantile, quantiles, sumBound } from "../../bench/histogram.mjs";

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
  assert.deepEqual(sumBound(ha, hb, 0.99), { bound_us: 200, a_us: 100, b_us: 100 });
  assert.equal(sumBound(ha, { n: 0, cum: [] }, 0.99), null, "no bound without both sides");
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
      const { bound_us } = sumBound(ha, hb, 0.99);
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
