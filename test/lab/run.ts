/**
 * `npm run lab`: the REAL program (infra/index.ts) end to end against lab
 * hosts on this machine, twice, then proof from a client, then teardown.
 * See test/lab/program.ts for what this is and is not. Root on Linux.
 *
 *   sudo npm run lab
 *
 * Exit code 0 when both runs succeed, the re-run changes nothing, the
 * clients reach the registry with only the installed trust and, after
 * destroy, no longer trust it; 1 otherwise. The lab is torn down in every
 * case (also on Ctrl-C: the harness registers its cleanup).
 */
import {
  bringUpLab,
  CLIENTS,
  CHECK_ONLY,
  curlAfterDestroy,
  DATA_DIR,
  formatOperation,
  HOSTNAME,
  programLabPrerequisites,
  proveFromClient,
  pushTestImage,
  REGISTRY_HOST,
  resultLine,
  runProgram,
  scrub,
  servedTls,
  summaryTable,
  type ProgramLab,
  type ProgramRun,
} from "./program";

/** Debian packages that provide what the lab runs on this machine (shared/LAB.md). */
const APT_LINE =
  "apt-get install -y iproute2 util-linux openssh-client debootstrap docker-registry golang-go";

const BANNER = `casd-registry lab: the REAL program (infra/index.ts) against real hosts on this machine.
  It is:     the program's own scripts, stdin and SSH connections, run over real SSH with pinned
             host keys against real Debian hosts (network namespaces, sshd, Docker on the registry
             host); the PKI as real X.509; the dev stack pointed at the lab.
  It is not: a Pulumi deployment. No engine, no state, no diff: every step runs on every run and
             reports itself changed or unchanged. Harbor is replaced by a STAND-IN installer built
             from local parts (it keeps the installer's contract and serves a real Distribution /v2/).`;

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

async function pass(p: ProgramLab, title: string): Promise<ProgramRun> {
  console.log(`\n== ${title}`);
  const started = Date.now();
  const run = await runProgram(p, (op) => console.log(formatOperation(op, started, p.secrets)));
  for (const f of run.failures) console.log(scrub(`FAILED: ${f}`, p.secrets));
  console.log(`\n${summaryTable(p.lab, run, title)}`);
  return run;
}

async function main(): Promise<number> {
  console.log(BANNER);
  const missing = programLabPrerequisites();
  if (missing.length > 0) {
    console.error(`\nThe lab cannot run here:\n  - ${missing.join("\n  - ")}`);
    if (missing.some((m) => m.startsWith("command ")))
      console.error(`Install what it needs (Debian 12):\n  ${APT_LINE}`);
    if (missing.some((m) => m.includes("root"))) console.error("Run it as root: sudo npm run lab");
    return 1;
  }
  const t0 = Date.now();
  console.log("\n== lab up");
  const p = await bringUpLab({ log: (l) => console.log(`  ${l}`) });
  const { lab } = p;
  const timing: Record<string, number> = { labUpMs: Date.now() - t0 };
  let failed = false;
  try {
    console.log(
      `  hosts: ${lab.hosts.map((h) => `${h.name} ${h.address}`).join(", ")}; rootfs ${secs(p.timings.rootfsMs)}, stand-in ${secs(p.timings.standinMs)}, hosts ${secs(p.timings.hostsMs)}, dockerd ${secs(p.timings.dockerMs)}`,
    );

    const first = await pass(p, "first run");
    timing.firstRunMs = first.ms;
    if (first.failures.length > 0) return 1;
    console.log(
      `  outputs: endpoint=${String(first.outputs.endpoint)} trustedNodes=${JSON.stringify(first.outputs.trustedNodes)}`,
    );

    const second = await pass(
      p,
      "second run (nothing changed in config: every converging step should be unchanged)",
    );
    timing.secondRunMs = second.ms;
    if (second.failures.length > 0) return 1;
    const changed = second.mocks.operations.filter((o) =>
      (resultLine(o) ?? "").endsWith(": changed"),
    );
    console.log(
      changed.length === 0
        ? "  every step with a result line said unchanged"
        : `  CHANGED on the re-run: ${changed.map((o) => o.resource).join(", ")}`,
    );
    failed ||= changed.length > 0;
    console.log(
      "  steps that only check, on every run (they change nothing, so they always say unchanged):",
    );
    for (const [step, why] of Object.entries(CHECK_ONLY))
      console.log(`    ${step.padEnd(26)} ${why}`);
    console.log(
      "  under the engine a re-run with unchanged config runs only registry-host-preflight (its stdin is the operator's clock);\n" +
        "  here every step runs, and harbor-upload copies again (the engine copies only when the installer's checksum changes)",
    );

    console.log("\n== proof from the clients (only the trust the program installed)");
    await pushTestImage(lab);
    console.log(
      `  pushed ${HOSTNAME}/library/bb:1 from ${REGISTRY_HOST} (busybox from local parts, through the stand-in's /v2/)`,
    );
    for (const host of Object.keys(CLIENTS)) {
      const proof = await proveFromClient(lab, host);
      console.log(
        `  ${host}: curl https://${HOSTNAME}/v2/ -> rc ${proof.curl.replace(" ", ", HTTP ")}`,
      );
      if (proof.skopeo !== undefined)
        console.log(
          `  ${host}: skopeo inspect docker://${HOSTNAME}/library/bb:1 -> ${proof.skopeo}`,
        );
      failed ||=
        proof.curl !== "0 200" || (proof.skopeo !== undefined && !proof.skopeo.startsWith("0 "));
    }

    console.log("\n== destroy (the second run's delete scripts, reverse registration order)");
    const formerTls = servedTls(lab);
    const t = Date.now();
    await second.mocks.deleteAll(async (op) => {
      console.log(formatOperation(op, t, p.secrets));
    });
    timing.destroyMs = Date.now() - t;
    const after = await curlAfterDestroy(lab, formerTls);
    for (const [host, rc] of Object.entries(after)) {
      console.log(
        `  ${host}: curl against the former chain (served by openssl s_server) -> rc ${rc}${rc === 60 ? " (certificate not trusted any more)" : ""}`,
      );
      failed ||= rc !== 60;
    }
    const data = await lab.ssh(REGISTRY_HOST, `test -d ${DATA_DIR} && echo kept || echo gone`);
    console.log(
      `  ${REGISTRY_HOST}: ${DATA_DIR} ${data.stdout.trim()} (registry data is never deleted by destroy)`,
    );
    failed ||= data.stdout.trim() !== "kept";
    return failed ? 1 : 0;
  } catch (e) {
    console.error(`\nlab run failed: ${scrub((e as Error).stack ?? String(e), p.secrets)}`);
    return 1;
  } finally {
    const t = Date.now();
    await lab.destroy();
    timing.teardownMs = Date.now() - t;
    timing.totalMs = Date.now() - t0;
    console.log(
      `\n== timings: lab up ${secs(timing.labUpMs)}, first run ${secs(timing.firstRunMs ?? 0)}, second run ${secs(timing.secondRunMs ?? 0)}, destroy ${secs(timing.destroyMs ?? 0)}, teardown ${secs(timing.teardownMs)}, total ${secs(timing.totalMs)}`,
    );
  }
}

// A failed step rejects many Outputs at once; the harness marks them handled, which Node reports
// as PromiseRejectionHandledWarning one by one. Print every other warning as Node would.
process.removeAllListeners("warning");
process.on("warning", (w) => {
  if (w.name !== "PromiseRejectionHandledWarning") console.error(`(node) ${w.name}: ${w.message}`);
});

// Ctrl-C or a kill: say so and exit; the harness's exit hook then tears the lab down synchronously.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.log(`\n${sig}: stopping; the lab is torn down on exit`);
    process.exit(sig === "SIGINT" ? 130 : 143);
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
