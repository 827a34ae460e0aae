"use strict";

// Retries across a restart, a stopped backend, worker threads, and a process
// that exits with calls in flight.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { Worker } = require("node:worker_threads");
const sdk = require("..");
const { startServer, freePort, guestModule } = require("./helpers");

const { Client } = sdk;
const SDK = path.resolve(__dirname, "..");

test("calls made while the server restarts are retried until it is back", async () => {
  const server = await startServer({}, { port: await freePort() });
  try {
    const client = new Client({ url: server.url, maxRetries: 20 });
    await client.createFunction({ name: "g", backend: "wasm", source: { type: "wasm", module: guestModule() } });
    await client.deployFunction("g");
    await server.kill();
    setTimeout(() => server.start(), 700);
    const started = Date.now();
    const [f, run] = await Promise.all([client.getFunction("g"), client.invoke("g", { mode: "echo" })]);
    assert.equal(f.name, "g");
    assert.equal(run.status, "succeeded");
    assert.ok(Date.now() - started >= 500, "they waited for the server");
  } finally {
    await server.close();
  }
});

test("a stopped backend is UnavailableError, and invoke is not repeated", async () => {
  const server = await startServer();
  try {
    // The docker backend of this server has no engine behind it.
    await server.restart({ SKYBRIDGE_DOCKER_SOCKET: "/nonexistent/docker.sock" });
    const c = new Client({ url: server.url, maxRetries: 3 });
    await c.createFunction({
      name: "d",
      backend: "docker",
      source: { type: "image", image: "busybox:1.36" },
    });
    await assert.rejects(c.deployFunction("d"), (e) => {
      assert.ok(e instanceof sdk.UnavailableError, e.message);
      assert.equal(e.status, 503);
      assert.equal(e.code, "backend_unavailable");
      return true;
    });
    const metrics = await c.getMetrics();
    const line = metrics
      .split("\n")
      .find((l) => l.startsWith('skybridge_http_requests_total{method="POST",route="/api/v1/functions/{name}/deploy",status="503"}'));
    assert.ok(line, metrics);
    assert.equal(Number(line.split(" ").pop()), 1, "a POST the server answered is not repeated");
  } finally {
    await server.close();
  }
});

test("worker threads make calls; one exiting mid-call does not hurt the others", async () => {
  const server = await startServer();
  try {
    const client = new Client({ url: server.url });
    await client.createFunction({ name: "g", backend: "wasm", source: { type: "wasm", module: guestModule() } });
    await client.deployFunction("g");
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      const { Client } = require(workerData.sdk);
      const c = new Client({ url: workerData.url });
      (async () => {
        const r = await c.invoke("g", { mode: "echo", from: "worker" });
        // A slow call left in flight when the worker exits.
        c.invoke("g", { mode: "sleep", ms: 2000 }).catch(() => {});
        parentPort.postMessage(r.output.input.from);
        process.exit(0);
      })();
    `;
    const results = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { sdk: SDK, url: server.url } });
            let got;
            w.on("message", (m) => (got = m));
            w.on("error", reject);
            w.on("exit", (code) => (code === 0 ? resolve(got) : reject(new Error(`worker exited ${code}`))));
          }),
      ),
    );
    assert.deepEqual(results, ["worker", "worker", "worker"]);
    // The main thread's client still works after the workers are gone.
    const r = await client.invoke("g", { mode: "echo", from: "main" });
    assert.equal(r.output.input.from, "main");
  } finally {
    await server.close();
  }
});

test("a process that exits with calls in flight exits cleanly", async () => {
  const server = await startServer();
  try {
    const client = new Client({ url: server.url });
    await client.createFunction({ name: "g", backend: "wasm", source: { type: "wasm", module: guestModule() } });
    await client.deployFunction("g");
    const script = `
      const { Client } = require(${JSON.stringify(SDK)});
      const c = new Client({ url: ${JSON.stringify(server.url)} });
      for (let i = 0; i < 5; i++) c.invoke("g", { mode: "sleep", ms: 1000 }).catch(() => {});
      setTimeout(() => process.exit(7), 200);
    `;
    const natural = `
      const { Client } = require(${JSON.stringify(SDK)});
      const c = new Client({ url: ${JSON.stringify(server.url)} });
      c.invoke("g", { mode: "echo" }).then((r) => console.log(r.status));
    `;
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30000 });
      assert.equal(r.status, 7, `exit code ${r.status}, signal ${r.signal}: ${r.stderr}`);
    }
    const r = spawnSync(process.execPath, ["-e", natural], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "succeeded");
  } finally {
    await server.close();
  }
});
