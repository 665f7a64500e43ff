/**
 * Client trust benchmarks.
 *
 * 1. Lab (root, Linux): remote operations and wall time to trust 1 node and
 *    8 nodes (lab hosts, live mocks, real SSH), printed with their ratio.
 *    Verification is off here (no registry): one install per node.
 * 2. Mocks: evaluating the program (ClientTrust per node) under mocks with
 *    50 and with 500 client nodes, each in its own process: time and peak
 *    memory (max RSS), and their ratios.
 *
 * Run: npx ts-node --transpile-only test/bench/trust-bench.ts [--mocks-only | --lab-only]
 */
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { benchClient, trustFleet } from "./trust-program";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBbench\n-----END CERTIFICATE-----\n";

/** One mocks evaluation of N nodes in this process; prints a JSON line. */
async function mocksRun(n: number): Promise<void> {
  let resources = 0;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        resources++;
        return {
          id: `${args.name}-id`,
          state:
            args.type === "command:remote:Command"
              ? { ...args.inputs, stdout: "casd: ok", stderr: "" }
              : args.inputs,
        };
      },
      call: (args) => {
        throw new Error(`unmocked ${args.token}`);
      },
    },
    "casd-registry",
    "bench",
    false,
  );
  const t0 = process.hrtime.bigint();
  await pulumi.runtime.runInPulumiStack(async () => {
    const fleet = trustFleet({
      clients: Array.from({ length: n }, (_, i) => benchClient(i)),
      caCertPem: CA,
      caFingerprintSha256: "c".repeat(64),
      registryReady: true,
    });
    await Promise.all(
      fleet.map(
        (t) => new Promise((res) => pulumi.all([t.installStdout, t.verifyStdout]).apply(res)),
      ),
    );
    return {};
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(
    JSON.stringify({
      nodes: n,
      resources,
      ms: Math.round(ms),
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
}

function mocksBench(): void {
  const results = [50, 500].map((n) => {
    const r = spawnSync(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", __filename, "--mocks-child", String(n)],
      {
        cwd: path.resolve(__dirname, "../.."),
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    if (r.status !== 0) throw new Error(`mocks run of ${n} nodes failed: ${r.stderr}`);
    const line = r.stdout.trim().split("\n").pop()!;
    return JSON.parse(line) as { nodes: number; resources: number; ms: number; maxRssMB: number };
  });
  const [a, b] = results;
  for (const r of results)
    console.log(
      `mocks: ${r.nodes} nodes -> ${r.resources} resources registered in ${r.ms} ms, peak RSS ${r.maxRssMB} MB`,
    );
  console.log(
    `mocks ratio 500/50 nodes: time x${(b.ms / a.ms).toFixed(2)}, peak RSS x${(b.maxRssMB / a.maxRssMB).toFixed(2)} (nodes x10; resources x${(b.resources / a.resources).toFixed(2)})`,
  );
}

async function labBench(): Promise<void> {
  const h = await import("../lab/harness");
  const missing = h.labPrerequisites();
  if (missing.length > 0) throw new Error(`lab benchmark needs: ${missing.join("; ")}`);
  const { ClientTrust } = await import("../../infra/trust");
  const names = Array.from({ length: 8 }, (_, i) => `n${i + 1}`);
  const rootfs = await h.ensureRootfs();
  const lab = await h.createLab({
    prefix: "casdtb",
    subnet: "10.234.0.0/24",
    rootfs: rootfs.dir,
    hosts: names.map((name) => ({ name })),
  });
  try {
    const results: { nodes: number; ops: number; ms: number }[] = [];
    const ca = benchCa();
    for (const count of [1, 8]) {
      const mocks = h.createLiveMocks({ netns: lab.controlNs, maxConcurrentSsh: 8 });
      await pulumi.runtime.setMocks(mocks, "casd-registry", `bench-${count}`, false);
      const t0 = Date.now();
      const trusts = names.slice(0, count).map((name) => {
        const host = lab.host(name);
        return new ClientTrust(`trust-${name}`, {
          client: {
            name,
            address: host.address,
            port: host.port,
            user: host.user,
            hostKey: host.hostKey,
            runtimes: ["docker", "containerd", "podman", "os"],
            sudo: false,
            restartContainerd: false,
            push: false,
          },
          privateKey: pulumi.secret(lab.clientKey.privateKey),
          hostname: "reg.casd.local",
          port: 5443,
          caCertPem: ca,
          caFingerprintSha256: "d".repeat(64),
          verify: false,
        });
      });
      await Promise.all(trusts.map((t) => new Promise((res) => t.installStdout.apply(res))));
      const ms = Date.now() - t0;
      await mocks.settled();
      results.push({ nodes: count, ops: mocks.operations.length, ms });
      for (const name of names.slice(0, count)) {
        const op = await mocks.runDelete(`trust-${name}-install`);
        if (op?.exitCode !== 0) throw new Error(`delete of ${name} failed: ${op?.stderr}`);
      }
    }
    const [one, eight] = results;
    for (const r of results)
      console.log(
        `lab: trust ${r.nodes} node(s): ${r.ops} remote operation(s) (SSH commands), wall ${r.ms} ms`,
      );
    console.log(
      `lab ratio 8/1 nodes: operations x${(eight.ops / one.ops).toFixed(1)}, wall time x${(eight.ms / one.ms).toFixed(2)}`,
    );
  } finally {
    await lab.destroy();
  }
}

/** A real self-signed CA certificate (the install step checks that the CA parses). */
function benchCa(): string {
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "/dev/null",
      "-subj",
      "/CN=casd bench CA",
      "-days",
      "2",
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--mocks-child") return mocksRun(Number(args[1]));
  if (args[0] !== "--lab-only") mocksBench();
  if (args[0] !== "--mocks-only") await labBench();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
