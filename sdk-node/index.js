"use strict";

// The Skybridge Node SDK: a Client with one method per API operation
// (generated.js, from the OpenAPI document), camelCase models, typed errors,
// async iterators over lists, per-call timeouts and AbortSignals. Requests are
// made by the Rust client (skybridge-client) in the native addon.

const path = require("node:path");
const errors = require("./errors");
const { methods, fromWire } = require("./generated");

const ADDON = `skybridge.${process.platform}-${process.arch}.node`;

function loadNative() {
  const file = path.join(__dirname, ADDON);
  try {
    return require(file);
  } catch (e) {
    const err = new Error(
      `the Skybridge native addon ${ADDON} does not load (${e.message}); ` +
        "packages built by sdk-node/build.sh include it for linux-x64, and `bash sdk-node/build.sh` builds it from source",
    );
    err.cause = e;
    throw err;
  }
}

const native = loadNative();

/** Reads a response body of `kind` ("json", "text", "empty"). */
function decode(outcome, kind) {
  if (kind === "json") return JSON.parse(outcome.body);
  if (kind === "text") return outcome.body;
  return undefined;
}

class Client {
  #native;

  /**
   * @param {{url?: string, token?: string, timeoutMs?: number, maxRetries?: number}} [options]
   */
  constructor(options = {}) {
    const url = options.url || process.env.SKYBRIDGE_URL || "http://127.0.0.1:3280";
    const token = options.token ?? (process.env.SKYBRIDGE_TOKEN || undefined);
    this.url = url.replace(/\/+$/, "");
    try {
      this.#native = new native.NativeClient({
        url: this.url,
        token: token || undefined,
        timeoutMs: options.timeoutMs,
        maxRetries: options.maxRetries,
      });
    } catch (e) {
      throw new errors.SkybridgeError(e.message, { code: "invalid_request" });
    }
  }

  /** Runs a native call with the call options; resolves with its outcome or throws. */
  async #run(start, options = {}) {
    const { signal } = options;
    if (signal?.aborted) {
      throw new errors.AbortError("the call was aborted", { code: "aborted" });
    }
    const handle = signal ? new native.CancelHandle() : undefined;
    const onAbort = () => handle.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    let outcome;
    try {
      outcome = await start(handle);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (!outcome.ok) {
      const e = outcome.error;
      if (e.code === "deployment_failed" && e.detail) {
        const deployment = fromWire.Deployment(JSON.parse(e.detail));
        throw new errors.DeploymentFailedError(e.message, fields(e), deployment);
      }
      if (e.code === "wait_timeout" && e.detail) {
        const execution = fromWire.Execution(JSON.parse(e.detail));
        throw new errors.WaitTimeoutError(e.message, fields(e), execution);
      }
      throw errors.fromNative(e);
    }
    return outcome;
  }

  /**
   * Calls an operation by its operationId with wire-format parameters
   * (`{path, query, body}` in the API's snake_case). The generated methods use
   * this; it is also the escape hatch for anything they do not cover.
   */
  async _call(operationId, params, kind, options = {}) {
    const outcome = await this.#run(
      (handle) =>
        this.#native.call(
          operationId,
          JSON.stringify(params),
          options.timeoutMs,
          options.maxRetries,
          handle,
        ),
      options,
    );
    return decode(outcome, kind);
  }

  /** Deploys and returns the ready deployment; a failed build throws DeploymentFailedError with the log. */
  async deployAndWait(name, options = {}) {
    const outcome = await this.#run(
      (handle) => this.#native.deployAndWait(name, Boolean(options.cacheBust), options.timeoutMs, handle),
      options,
    );
    return fromWire.Deployment(JSON.parse(outcome.body));
  }

  /** Invokes and waits for the finished execution (check its `status`). */
  invoke(name, input = null, options = {}) {
    return this.invokeFunction(name, { input, async: false }, options);
  }

  /** Queues an invocation and returns the `queued` execution at once. */
  invokeAsync(name, input = null, options = {}) {
    return this.invokeFunction(name, { input, async: true }, options);
  }

  /** Polls an execution until it has finished; throws WaitTimeoutError after `timeoutMs` (default 60000). */
  async waitFor(id, options = {}) {
    const deadline = options.timeoutMs ?? 60000;
    const outcome = await this.#run((handle) => this.#native.waitFor(id, deadline, handle), options);
    return fromWire.Execution(JSON.parse(outcome.body));
  }
}

function fields(e) {
  return {
    status: e.status ?? null,
    code: e.code,
    field: e.field ?? null,
    requestId: e.requestId ?? null,
    deploymentId: e.deploymentId ?? null,
    executionId: e.executionId ?? null,
  };
}

// The generated methods, defined like class methods (not enumerable).
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Client.prototype, name, { value: fn, writable: true, configurable: true });
}

const { fromNative: _internal, ...errorClasses } = errors;
module.exports = { Client, ...errorClasses };
