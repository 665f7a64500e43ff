/**
 * One evaluation of the real program under mocks, in its own process, for
 * benchmarks: reads {config, secrets} (JSON) from env CASD_BENCH_STACK,
 * runs infra/ to completion and prints one JSON line: wall milliseconds from
 * before the program's import to the last export resolved, peak RSS, and the
 * count of resources registered.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { isTlsToken, materializeTls } from "../support/x509";

async function main(): Promise<void> {
  const { config, secrets } = JSON.parse(process.env.CASD_BENCH_STACK ?? "{}") as {
    config: Record<string, unknown>;
    secrets: Record<string, string>;
  };
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(config))
    all[`casd-registry:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(secrets)) all[`casd-registry:${k}`] = v;
  pulumi.runtime.setAllConfig(
    all,
    Object.keys(secrets).map((k) => `casd-registry:${k}`),
  );
  let resources = 0;
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        resources++;
        const state = isTlsToken(args.type)
          ? await materializeTls(args.type, args.inputs)
          : args.inputs;
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        throw new Error(`unmocked provider function ${args.token}`);
      },
    },
    "casd-registry",
    "bench",
    false,
  );
  const start = process.hrtime.bigint();
  await pulumi.runtime.runInPulumiStack(async () => {
    const program = (await import(path.resolve(__dirname, "../../infra"))) as Record<
      string,
      unknown
    >;
    for (const v of Object.values(program)) {
      if (pulumi.Output.isInstance(v)) await new Promise((r) => v.apply(r));
    }
    return program;
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ ms, maxRssMiB: process.resourceUsage().maxRSS / 1024, resources })}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
