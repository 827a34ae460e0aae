// The SDK through `import`, as ESM code uses it.
import { test } from "node:test";
import assert from "node:assert/strict";
import sdkDefault, { Client, NotFoundError, SkybridgeError } from "../index.mjs";
import helpers from "./helpers.js";

test("import gives the same classes as require", async () => {
  assert.equal(sdkDefault.Client, Client);
  const server = await helpers.startServer();
  try {
    const client = new Client({ url: server.url });
    assert.deepEqual(await client.getLiveness(), { status: "ok" });
    await assert.rejects(client.getFunction("nope"), (e) => e instanceof NotFoundError && e instanceof SkybridgeError);
  } finally {
    await server.close();
  }
});
