"use strict";

// Test helpers: a real `skybridge serve` on 127.0.0.1 with a fresh data dir,
// and git repositories made from the repository's Go fixtures.

const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const net = require("node:net");

const ROOT = path.resolve(__dirname, "..", "..");

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run these tests through \`cargo test --test integration sdk_node\` (scripts/test.sh does)`);
  }
  return v;
}

/** A port that was free a moment ago. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

class TestServer {
  constructor(env = {}, { port = 0 } = {}) {
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skybridge-node-test-"));
    this.env = env;
    this.port = port;
  }

  async start() {
    const child = spawn(required("SKYBRIDGE_BIN"), ["serve"], {
      env: {
        PATH: process.env.PATH,
        SKYBRIDGE_SERVER_LISTEN: `127.0.0.1:${this.port}`,
        SKYBRIDGE_SERVER_DATA_DIR: this.dataDir,
        SKYBRIDGE_LOG: "warn",
        SKYBRIDGE_GO_BINARY: required("SKYBRIDGE_GO"),
        SKYBRIDGE_GO_CACHE_DIR: path.join(ROOT, "target", "go-cache"),
        ...this.env,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    const line = await new Promise((resolve, reject) => {
      const rl = readline.createInterface({ input: child.stdout });
      rl.once("line", (l) => {
        rl.close();
        resolve(l);
      });
      child.once("exit", (code) => reject(new Error(`skybridge exited with ${code} before listening`)));
    });
    const m = /^skybridge listening on (http:\/\/\S+)$/.exec(line);
    if (!m) throw new Error(`unexpected first line from skybridge: ${line}`);
    this.url = m[1];
    this.port = Number(new URL(this.url).port);
    return this;
  }

  /** SIGKILL, as a crash. */
  async kill() {
    if (!this.child) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGKILL");
    await exited;
    this.child = null;
  }

  /** SIGTERM and wait for the clean shutdown (SIGKILL after 20 s). */
  async stop() {
    if (!this.child) return;
    const child = this.child;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const hung = setTimeout(() => child.kill("SIGKILL"), 20000);
    await exited;
    clearTimeout(hung);
    this.child = null;
  }

  /** The same data dir and port, again. */
  async restart(extraEnv = {}) {
    await this.stop();
    Object.assign(this.env, extraEnv);
    return this.start();
  }

  /** A clean stop: a SIGKILL would leave this instance's jail cgroups
   * behind for a next start that never comes. */
  async close() {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function startServer(env = {}, options = {}) {
  return new TestServer(env, options).start();
}

/** A git repository whose first commit is tests/fixtures/<fixture>; its file:// URL. */
function gitRepo(fixture) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "skybridge-node-repo-"));
  fs.cpSync(path.join(ROOT, "tests", "fixtures", fixture), dir, { recursive: true });
  const git = (...args) => execFileSync("git", args, { cwd: dir, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "initial");
  return `file://${dir}`;
}

/** The test guest module (tests/fixtures/guest, built for WASI by the Rust harness), base64. */
function guestModule() {
  return fs.readFileSync(required("SKYBRIDGE_TEST_GUEST")).toString("base64");
}

module.exports = { startServer, freePort, gitRepo, guestModule, ROOT };
