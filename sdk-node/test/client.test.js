"use strict";

// The Node SDK against a live server: every operation, camelCase models that
// leave user data alone, typed errors, pagination, timeouts, AbortSignal and
// many calls at once.

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const sdk = require("..");
const { startServer, gitRepo, guestModule } = require("./helpers");

const { Client } = sdk;
let server;
let client;
let repo;

before(async () => {
  server = await startServer({ SKYBRIDGE_LIMITS_MAX_INPUT_BYTES: "2000" });
  client = new Client({ url: server.url });
  repo = gitRepo("gofuncs");
  await client.createFunction({ name: "echo", backend: "wasm", source: { type: "wasm", module: guestModule() } });
  await client.deployFunction("echo");
});

after(async () => {
  await server.close();
});

test("every operation, with camelCase models", async () => {
  assert.deepEqual(await client.getLiveness(), { status: "ok" });
  const health = await client.getHealth();
  assert.equal(health.backends.length, 3);
  assert.equal(typeof health.go.toolsReady, "boolean");
  assert.match(await client.getMetrics(), /skybridge_http_requests_total/);

  const f = await client.createFunction({
    name: "add",
    backend: "wasm",
    source: { type: "go", repo, handler: "Add" },
    env: { MY_VAR: "x", lower_case: "y" },
    limits: { memoryMb: 64, timeoutMs: 3000 },
  });
  assert.equal(f.limits.memoryMb, 64);
  assert.equal(f.limits.timeoutMs, 3000);
  assert.deepEqual(f.env, { MY_VAR: "x", lower_case: "y" }, "env keys are the user's, never renamed");
  assert.equal(typeof f.createdAt, "string");
  assert.deepEqual(await client.getFunction("add"), f);

  const updated = await client.updateFunction("add", {
    backend: "wasm",
    source: { type: "go", repo, handler: "Add" },
    limits: { timeoutMs: 4000 },
  });
  assert.equal(updated.version, 2);
  assert.equal(updated.limits.timeoutMs, 4000);

  const d = await client.deployAndWait("add");
  assert.equal(d.status, "ready");
  assert.equal(d.resolvedCommit.length, 40);
  const deployments = await client.listDeployments("add", { limit: 10 });
  assert.equal(deployments.items[0].id, d.id);
  const again = await client.deployFunction("add", { cacheBust: false });
  assert.equal(again.artifactDigest, d.artifactDigest);

  const run = await client.invoke("add", [2, 40]);
  assert.equal(run.status, "succeeded");
  assert.equal(run.output, 42);
  assert.equal(run.exitCode, 0);
  const raw = await client.invokeFunction("echo", { input: { mode: "echo", some_key: { nested_key: 1 } } });
  assert.deepEqual(raw.output.input.some_key, { nested_key: 1 }, "input and output are the function's, never renamed");
  assert.equal((await client.getExecution(run.id)).id, run.id);
  const logs = await client.getExecutionLogs(run.id);
  assert.equal(logs.stdout.trim(), "42");
  assert.equal(logs.stdoutTruncated, false);
  const page = await client.listExecutions("add", { status: "succeeded" });
  assert.equal(page.items.length, 1);

  const si = await client.runSkyIsland({ url: repo, call: "Add(1, 2)" });
  assert.equal(si.data, "3");

  await client.deleteFunction("add");
  await assert.rejects(client.getFunction("add"), sdk.NotFoundError);
});

test("async invoke and waitFor", async () => {
  const queued = await client.invokeAsync("echo", { mode: "sleep", ms: 200 });
  assert.equal(queued.status, "queued");
  const done = await client.waitFor(queued.id, { timeoutMs: 30000 });
  assert.equal(done.status, "succeeded");
  const slow = await client.invokeAsync("echo", { mode: "sleep", ms: 3000 });
  await assert.rejects(client.waitFor(slow.id, { timeoutMs: 200 }), (e) => {
    assert.ok(e instanceof sdk.WaitTimeoutError);
    assert.equal(e.execution.id, slow.id);
    return true;
  });
});

test("errors by status, with code, field and requestId", async () => {
  const check = async (promise, Class, status, code, field = null) => {
    await assert.rejects(promise, (e) => {
      assert.ok(e instanceof Class, `${e.name} is not ${Class.name}: ${e.message}`);
      assert.ok(e instanceof sdk.SkybridgeError && e instanceof Error);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      assert.equal(e.field, field);
      assert.match(e.requestId, /^[0-9a-f-]{36}$/);
      return true;
    });
  };
  await check(client.listFunctions({ limit: 0 }), sdk.BadRequestError, 400, "invalid_parameter");
  await check(client.getFunction("nope"), sdk.NotFoundError, 404, "function_not_found");
  await check(
    client.createFunction({ name: "echo", backend: "wasm", source: { type: "wasm", module: guestModule() } }),
    sdk.ConflictError,
    409,
    "function_exists",
  );
  await check(
    client.createFunction({ name: "Bad Name", backend: "wasm", source: { type: "wasm", module: guestModule() } }),
    sdk.ValidationError,
    422,
    "validation_failed",
    "name",
  );
  await check(client.invoke("echo", "x".repeat(3000)), sdk.PayloadTooLargeError, 413, "payload_too_large", "input");

  // A failed build: the error carries the deployment and its log.
  await client.createFunction({ name: "nope-fn", backend: "wasm", source: { type: "go", repo, handler: "Nope" } });
  await assert.rejects(client.deployAndWait("nope-fn"), (e) => {
    assert.ok(e instanceof sdk.DeploymentFailedError && e instanceof sdk.ValidationError);
    assert.equal(e.code, "deployment_failed");
    assert.equal(e.deployment.status, "failed");
    assert.match(e.deployment.buildLog, /no function Nope/);
    return true;
  });
});

test("lists iterate across pages", async () => {
  for (let i = 0; i < 5; i++) {
    await client.createFunction({ name: `page-${i}`, backend: "wasm", source: { type: "wasm", module: guestModule() } });
  }
  const first = await client.listFunctions({ limit: 2 });
  assert.equal(first.items.length, 2);
  assert.ok(first.nextCursor);
  const names = [];
  for await (const f of client.listFunctionsAll({ limit: 2 })) names.push(f.name);
  for (let i = 0; i < 5; i++) assert.ok(names.includes(`page-${i}`), names.join());
  assert.equal(new Set(names).size, names.length, "no item twice");
});

test("timeouts and AbortSignal", async () => {
  await assert.rejects(
    client.invoke("echo", { mode: "sleep", ms: 3000 }, { timeoutMs: 200, maxRetries: 0 }),
    (e) => e instanceof sdk.TimeoutError && e.code === "timeout",
  );
  const ac = new AbortController();
  const call = client.invoke("echo", { mode: "sleep", ms: 3000 }, { signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  const started = Date.now();
  await assert.rejects(call, (e) => e instanceof sdk.AbortError && e.code === "aborted");
  assert.ok(Date.now() - started < 2000, "the abort ended the call");
  await assert.rejects(client.getLiveness({ signal: AbortSignal.abort() }), sdk.AbortError);
});

test("50 concurrent calls", async () => {
  const runs = await Promise.all(
    Array.from({ length: 50 }, (_, i) => client.invoke("echo", { mode: "echo", i })),
  );
  runs.forEach((r, i) => {
    assert.equal(r.status, "succeeded");
    assert.equal(r.output.input.i, i);
  });
  assert.equal(new Set(runs.map((r) => r.id)).size, 50);
});

test("the client reads SKYBRIDGE_URL and refuses bad URLs", async () => {
  process.env.SKYBRIDGE_URL = server.url;
  try {
    assert.equal(new Client().url, server.url);
    assert.deepEqual(await new Client().getLiveness(), { status: "ok" });
  } finally {
    delete process.env.SKYBRIDGE_URL;
  }
  assert.throws(() => new Client({ url: "ftp://x" }), sdk.SkybridgeError);
  await assert.rejects(new Client({ url: "http://127.0.0.1:1", maxRetries: 0 }).getLiveness(), sdk.ConnectionError);
});
