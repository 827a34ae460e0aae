// Type-checked by `tsc --strict` (tests/integration/sdks.rs): the published
// types describe the SDK precisely. Lines marked @ts-expect-error must fail to
// type-check, which shows the types are not `any`.
import {
  Client,
  Execution,
  FunctionSpec,
  NotFoundError,
  SkybridgeError,
  DeploymentFailedError,
  SourceInfo,
} from "..";

async function usage(client: Client): Promise<void> {
  const spec: FunctionSpec = {
    name: "geo",
    backend: "wasm",
    source: { type: "go", repo: "github.com/mmcloughlin/geohash", handler: "Encode" },
    limits: { memoryMb: 64 },
    env: { ANY_NAME: "value" },
  };
  const f = await client.createFunction(spec);
  const version: number = f.version;
  const memory: number = f.limits.memoryMb;
  const source: SourceInfo = f.source;
  if (source.type === "go") {
    const repo: string = source.repo;
    void repo;
  }
  const d = await client.deployAndWait("geo", { cacheBust: true, timeoutMs: 600_000 });
  const commit: string | null | undefined = d.resolvedCommit;
  const run: Execution = await client.invoke("geo", [57.6, 10.4], { timeoutMs: 5000 });
  const status: "queued" | "running" | "succeeded" | "failed" | "timed_out" = run.status;
  const queued = await client.invokeAsync("geo", [1, 2]);
  await client.waitFor(queued.id, { timeoutMs: 1000 });
  for await (const item of client.listFunctionsAll({ limit: 10 })) {
    const name: string = item.name;
    void name;
  }
  const page = await client.listExecutions("geo", { status: "failed", limit: 5 });
  const next: string | null | undefined = page.nextCursor;
  const text: string = await client.getMetrics({ signal: AbortSignal.timeout(1000) });
  await client.deleteFunction("geo");
  try {
    await client.getFunction("nope");
  } catch (e) {
    if (e instanceof NotFoundError) {
      const code: string = e.code;
      const requestId: string | null = e.requestId;
      void code, requestId;
    }
    if (e instanceof DeploymentFailedError) {
      const log: string = e.deployment.buildLog;
      void log;
    }
    if (e instanceof SkybridgeError) {
      const s: number | null = e.status;
      void s;
    }
  }
  void version, memory, commit, status, next, text;

  // @ts-expect-error: backends are an enum
  await client.createFunction({ ...spec, backend: "lambda" });
  // @ts-expect-error: a source needs its type
  await client.createFunction({ ...spec, source: { repo: "x" } });
  // @ts-expect-error: limits are numbers
  await client.createFunction({ ...spec, limits: { memoryMb: "64" } });
  // @ts-expect-error: the wire names are not the SDK's
  await client.createFunction({ ...spec, limits: { memory_mb: 64 } });
  // @ts-expect-error: the status filter is an enum
  await client.listExecutions("geo", { status: "done" });
  // @ts-expect-error: options are typed
  await client.getHealth({ timeout: 5 });
}

void usage;
