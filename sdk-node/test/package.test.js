"use strict";

// `npm pack` makes a package that installs into a fresh project with no
// network and works through `require` and `import`.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { startServer } = require("./helpers");

const SDK = path.resolve(__dirname, "..");

test("npm pack installs offline and works with require and import", async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "skybridge-pack-"));
  const server = await startServer();
  try {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", work], { cwd: SDK, encoding: "utf8" });
    const [{ filename, files }] = JSON.parse(out);
    const packed = files.map((f) => f.path);
    for (const f of ["index.js", "index.mjs", "index.d.ts", "generated.js", "errors.js", "package.json", "README.md"]) {
      assert.ok(packed.includes(f), `${f} is not in the package: ${packed.join(", ")}`);
    }
    assert.ok(packed.some((f) => f.endsWith(".node")), "the native addon is in the package");
    assert.ok(!packed.some((f) => f.startsWith("src/") || f.startsWith("test/")), packed.join(", "));

    const app = path.join(work, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", path.join(work, filename)], {
      cwd: app,
      stdio: "inherit",
    });
    const cjs = `const { Client } = require("skybridge-client");
      new Client({ url: process.argv[1] }).getLiveness().then((r) => console.log(r.status));`;
    const esm = `import { Client, NotFoundError } from "skybridge-client";
      const c = new Client({ url: process.argv[2] });
      try { await c.getFunction("nope"); } catch (e) { console.log(e instanceof NotFoundError ? "not found" : e.name); }`;
    assert.equal(execFileSync(process.execPath, ["-e", cjs, server.url], { cwd: app, encoding: "utf8" }).trim(), "ok");
    fs.writeFileSync(path.join(app, "check.mjs"), esm);
    assert.equal(
      execFileSync(process.execPath, ["check.mjs", server.url], { cwd: app, encoding: "utf8" }).trim(),
      "not found",
    );
  } finally {
    await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});
