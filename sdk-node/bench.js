"use strict";

// Per-invoke latency of the SDK against Node's built-in fetch (keep-alive) on
// the same function, alternating blocks of 100 so that noise falls on both.
// Run by `skybridge bench --sdks …`: node bench.js URL FUNCTION INPUT_JSON N.
// Prints {"plain": {"p50_us", "p99_us"}, "sdk": {…}}.

const { Client } = require(".");

const [url, fn, inputJson, n] = process.argv.slice(2);
const input = JSON.parse(inputJson);
const count = Number(n);
const body = JSON.stringify({ input });
const endpoint = `${url}/api/v1/functions/${fn}/invoke`;
const client = new Client({ url });

function quantiles(lat) {
  lat.sort((a, b) => a - b);
  const pick = (q) => lat[Math.round((lat.length - 1) * q)];
  return { p50_us: pick(0.5), p99_us: pick(0.99) };
}

async function main() {
  const plain = [];
  const sdk = [];
  for (let round = 0; round < Math.ceil(count / 100) + 2; round++) {
    for (let i = 0; i < 100; i++) {
      let t = process.hrtime.bigint();
      const res = await fetch(endpoint, { method: "POST", headers: { "content-type": "application/json" }, body });
      const e = await res.json();
      if (e.status !== "succeeded") throw new Error(`fetch invoke: ${JSON.stringify(e)}`);
      const a = Number(process.hrtime.bigint() - t) / 1000;
      t = process.hrtime.bigint();
      const r = await client.invoke(fn, input);
      if (r.status !== "succeeded") throw new Error(`sdk invoke: ${JSON.stringify(r)}`);
      const b = Number(process.hrtime.bigint() - t) / 1000;
      if (round >= 2) {
        plain.push(a);
        sdk.push(b);
      }
    }
  }
  console.log(JSON.stringify({ plain: quantiles(plain), sdk: quantiles(sdk) }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
