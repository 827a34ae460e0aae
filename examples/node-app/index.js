// Deploys the Go functions in ../go-functions from a local git repository,
// invokes one synchronously and one asynchronously, and handles a function
// that does not exist. Run a server first (bash scripts/serve.sh), then:
//   npm install && node index.js          (SKYBRIDGE_URL picks another server)
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { Client, NotFoundError, DeploymentFailedError } = require("skybridge-client");

/** A git repository holding ../go-functions (or SKYBRIDGE_EXAMPLE_REPO's). */
function localRepo() {
  if (process.env.SKYBRIDGE_EXAMPLE_REPO) return process.env.SKYBRIDGE_EXAMPLE_REPO;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "go-functions-"));
  fs.cpSync(path.join(__dirname, "..", "go-functions"), dir, { recursive: true });
  const git = (...args) => execFileSync("git", args, { cwd: dir, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("-c", "user.name=example", "-c", "user.email=example@example.com", "commit", "-qm", "functions");
  return `file://${dir}`;
}

async function main() {
  const client = new Client(); // SKYBRIDGE_URL, default http://127.0.0.1:3280
  const repo = localRepo();
  const suffix = Date.now().toString(36);
  const geo = `node-geo-${suffix}`;
  const hello = `node-hello-${suffix}`;
  try {
    await client.createFunction({ name: geo, backend: "wasm", source: { type: "go", repo, handler: "Encode" } });
    await client.createFunction({ name: hello, backend: "wasm", source: { type: "go", repo, handler: "Hello" } });
    try {
      await client.deployAndWait(geo);
      await client.deployAndWait(hello);
    } catch (e) {
      if (e instanceof DeploymentFailedError) console.error(e.deployment.buildLog);
      throw e;
    }

    // Sync: the finished execution.
    const run = await client.invoke(geo, [57.64911, 10.40744]);
    console.log(`geohash ${run.output} (${run.durationMs} ms)`);

    // Async: queued at once, then waited for.
    const queued = await client.invokeAsync(hello, "Ada");
    const done = await client.waitFor(queued.id, { timeoutMs: 30000 });
    console.log(`async ${done.output}`);

    // Errors are typed.
    try {
      await client.getFunction("no-such-function");
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      console.log(`not found: ${e.code} (request ${e.requestId})`);
    }
  } finally {
    for (const name of [geo, hello]) await client.deleteFunction(name).catch(() => {});
  }
}

main().catch((e) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
