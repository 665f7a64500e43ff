/**
 * The REAL program (infra/index.ts) end to end on lab hosts: the flow of
 * `npm run lab` as assertions. Live mocks run every remote step of the
 * program over real SSH with pinned host keys; the PKI is real X.509; Harbor
 * is the STAND-IN installer (test/lab/standin, not Harbor). See
 * test/lab/program.ts for what this is and is not.
 *
 * Run: npx jest test/lab/program.test.ts --selectProjects lab --runInBand
 * Needs root on Linux, the packages of shared/LAB.md and Go (the stand-in).
 * Outside CI a missing prerequisite skips this file with a message; with
 * CI=true it fails.
 */
import {
  bringUpLab,
  CHECK_ONLY,
  curlAfterDestroy,
  DATA_DIR,
  HOSTNAME,
  hostOf,
  programLabPrerequisites,
  proveFromClient,
  pushTestImage,
  REGISTRY_HOST,
  results,
  runProgram,
  servedTls,
  type ProgramLab,
  type ProgramRun,
} from "./program";
import { TEST_SECRETS } from "../support/stack";

jest.setTimeout(600_000);

const missing = programLabPrerequisites();
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled) console.warn(`test/lab/program.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

const UPLOAD = "copied /opt/casd-registry/harbor/uploads/harbor-offline-installer-v2.15.1-";

/** The result line of every remote step of the program on a fresh lab, by step. */
const FIRST_RUN: Record<string, string> = {
  "registry-host-ready": "casd: ready: unchanged",
  "registry-host-preflight": "casd: preflight: unchanged",
  "registry-host-dirs": "casd: dirs: changed",
  "registry-host-etc-hosts": "casd: etc-hosts: changed",
  "registry-host-tls": "casd: tls: changed",
  "registry-host-ca-trust": "casd: ca-trust: changed",
  "harbor-layout": "casd: harbor-layout: changed",
  // The host room's dirs step already made the data volume.
  "harbor-data": "casd: harbor-data: unchanged",
  "harbor-upload": UPLOAD,
  "harbor-extract": "casd: harbor-extract: changed",
  "harbor-apply": "casd: harbor-apply: changed",
  "harbor-health": "casd: harbor-health: unchanged",
  "harbor-admin-password": "casd: harbor-admin-password: changed",
  "trust-cli1-install": `casd: trust ${HOSTNAME}: changed`,
  "trust-cli1-verify": `casd: verify ${HOSTNAME}: unchanged`,
  "trust-cli2-install": `casd: trust ${HOSTNAME}: changed`,
  "trust-cli2-verify": `casd: verify ${HOSTNAME}: unchanged`,
};

/** `results()` with the upload's content-addressed file name cut to its stable prefix. */
function stepResults(run: ProgramRun): Record<string, string> {
  const out = results(run);
  if (out["harbor-upload"]?.startsWith(UPLOAD)) out["harbor-upload"] = UPLOAD;
  return out;
}

describeLab("the real program (infra/index.ts) on lab hosts", () => {
  let p: ProgramLab;
  let first: ProgramRun;
  let second: ProgramRun | undefined;
  const timings: Record<string, number> = {};
  const reg = (cmd: string) => p.lab.ssh(REGISTRY_HOST, cmd);
  const containerStarts = async () =>
    (
      await reg(
        "docker ps -q | sort | xargs -r docker inspect --format '{{.Name}} {{.Config.Image}} {{.State.StartedAt}}'",
      )
    ).stdout;

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    const t = Date.now();
    p = await bringUpLab({
      prefix: "casdprg",
      subnet: "10.236.0.0/24",
      log: (l) => console.log(l),
    });
    timings.labUpMs = Date.now() - t;
  }, 900_000);

  afterAll(async () => {
    await p?.lab.destroy();
    console.log(`program lab timings: ${JSON.stringify(timings)}`);
  });

  test("first run: every remote step of the program runs once, succeeds, and reports itself", async () => {
    first = await runProgram(p);
    timings.firstRunMs = first.ms;
    expect(first.failures).toEqual([]);
    expect(first.mocks.operations.filter((o) => !o.ok)).toEqual([]);
    expect(stepResults(first)).toEqual(FIRST_RUN);
    expect(first.mocks.operations).toHaveLength(Object.keys(FIRST_RUN).length);
    // Every step on the host it belongs to.
    const byHost: Record<string, string[]> = {};
    for (const o of first.mocks.operations)
      (byHost[hostOf(p.lab, o.target)] ??= []).push(o.resource);
    expect(Object.fromEntries(Object.entries(byHost).map(([h, rs]) => [h, rs.sort()]))).toEqual({
      reg: Object.keys(FIRST_RUN)
        .filter((s) => !s.startsWith("trust-"))
        .sort(),
      cli1: ["trust-cli1-install", "trust-cli1-verify"],
      cli2: ["trust-cli2-install", "trust-cli2-verify"],
    });
    // Every resource the program declared (stack, components, PKI, steps), and no other.
    expect(first.mocks.resources.map((r) => `${r.type} ${r.name} ${r.status}`).sort()).toEqual(
      [
        "pulumi:pulumi:Stack casd-registry-lab",
        "casd:pki:RegistryPki registry",
        "tls:index/privateKey:PrivateKey registry-ca-key",
        "tls:index/selfSignedCert:SelfSignedCert registry-ca-cert",
        "tls:index/privateKey:PrivateKey registry-server-key",
        "tls:index/certRequest:CertRequest registry-server-csr",
        "tls:index/locallySignedCert:LocallySignedCert registry-server-cert",
        "casd:host:RegistryHost registry-host",
        "casd:harbor:HarborCompose harbor",
        "command:remote:CopyToRemote harbor-upload",
        "casd:trust:ClientTrust trust-cli1",
        "casd:trust:ClientTrust trust-cli2",
        ...Object.keys(FIRST_RUN)
          .filter((s) => s !== "harbor-upload")
          .map((s) => `command:remote:Command ${s}`),
      ]
        .map((r) => `${r} created`)
        .sort(),
    );
    expect(first.outputs).toMatchObject({
      hostname: HOSTNAME,
      deployMode: "compose",
      endpoint: `https://${HOSTNAME}`,
      trustedNodes: [`cli1: ${HOSTNAME}`, `cli2: ${HOSTNAME}`],
      mirrorEndpoint: "none",
    });
    expect(first.outputs.caFingerprintSha256).toMatch(/^[0-9a-f]{64}$/);
    // No secret in any step's output, and none in any script (they travel on stdin).
    for (const secret of p.secrets) {
      for (const o of first.mocks.operations)
        expect(`${o.stdout}${o.stderr}`).not.toContain(secret);
    }
    for (const pw of [TEST_SECRETS.harborAdminPassword, TEST_SECRETS.harborDatabasePassword])
      for (const r of first.mocks.resources)
        expect(String(r.plainInputs.create ?? "")).not.toContain(pw);
  });

  test("the registry host runs the Harbor stand-in 2.15.1, healthy through reg.casd.local and the stack's CA", async () => {
    expect((await reg("docker ps --format '{{.Names}} {{.Image}}' | sort")).stdout).toBe(
      ["core", "jobservice", "nginx", "registry", "trivy-adapter"]
        .map((c) => `standin-${c} casd-standin/harbor:v2.15.1\n`)
        .join(""),
    );
    // The OS store the host room installed is the only CA curl uses here.
    const health = await reg(`curl -sS https://${HOSTNAME}/api/v2.0/health`);
    expect(health.stderr).toBe("");
    expect(JSON.parse(health.stdout)).toMatchObject({ status: "healthy" });
    expect((await reg("cut -d' ' -f2- /var/log/casd-standin.log")).stdout).toBe(
      "install.sh --with-trivy (stand-in 2.15.1)\nprepare --with-trivy (stand-in 2.15.1)\n",
    );
  });

  test("each client's verify step proved TLS with each installed trust alone", () => {
    const verify = (node: string) =>
      first.mocks.operations.find((o) => o.resource === `trust-${node}-verify`)!.stdout;
    const ok = (trust: string) => `casd: verify https://${HOSTNAME}/v2/: ok with ${trust}\n`;
    expect(verify("cli1")).toBe(
      ok(`/etc/docker/certs.d/${HOSTNAME}/ca.crt`) +
        ok(`/etc/containerd/certs.d/${HOSTNAME}/ca.crt`) +
        ok(`/etc/containers/certs.d/${HOSTNAME}/ca.crt`) +
        ok("os") +
        `casd: verify ${HOSTNAME}: unchanged\n`,
    );
    expect(verify("cli2")).toBe(
      ok(`/etc/containerd/certs.d/${HOSTNAME}/ca.crt`) +
        ok("os") +
        `casd: verify ${HOSTNAME}: unchanged\n`,
    );
  });

  test("cli1 pulls an image pushed through the trusted endpoint; both clients get /v2/ with only the installed trust", async () => {
    await pushTestImage(p.lab);
    expect(await proveFromClient(p.lab, "cli1")).toEqual({
      host: "cli1",
      curl: "0 200",
      skopeo: `0 ${HOSTNAME}/library/bb 1 layer(s)`,
    });
    expect(await proveFromClient(p.lab, "cli2")).toEqual({ host: "cli2", curl: "0 200" });
    // skopeo reads /etc/containers/certs.d, which the podman runtime's trust wrote.
    const pull = await p.lab.ssh(
      "cli1",
      `rm -rf /tmp/pulled; skopeo copy --quiet docker://${HOSTNAME}/library/bb:1 dir:/tmp/pulled && ls /tmp/pulled | sort`,
    );
    expect(pull.stderr).toBe("");
    expect(pull.stdout).toMatch(/^(?:[0-9a-f]{64}\n){2}manifest\.json\nversion\n$/);
    // The name resolves on the clients only through the trust room's /etc/hosts pin.
    expect(
      (await p.lab.ssh("cli2", `getent hosts ${HOSTNAME}`)).stdout.split(/\s+/).slice(0, 2),
    ).toEqual([p.lab.host(REGISTRY_HOST).address, HOSTNAME]);
  });

  test("a second run changes nothing: every step reports unchanged and no container restarts", async () => {
    const before = await containerStarts();
    second = await runProgram(p);
    timings.secondRunMs = second.ms;
    expect(second.failures).toEqual([]);
    const unchanged = Object.fromEntries(
      Object.entries(FIRST_RUN).map(([step, line]) => [
        step,
        line.replace(/: changed$/, ": unchanged"),
      ]),
    );
    expect(stepResults(second)).toEqual(unchanged);
    // The check-only steps are exactly those that said unchanged on the first run too (harbor-data aside).
    expect(Object.keys(CHECK_ONLY).sort()).toEqual(
      Object.entries(FIRST_RUN)
        .filter(([step, line]) => line.endsWith(": unchanged") && step !== "harbor-data")
        .map(([step]) => step)
        .sort(),
    );
    expect(second.outputs.caFingerprintSha256).toBe(first.outputs.caFingerprintSha256);
    expect(await containerStarts()).toBe(before);
    expect((await reg("wc -l < /var/log/casd-standin.log")).stdout).toBe("2\n");
  });

  test("destroy: every captured delete in reverse order; the clients no longer trust the registry, the data stays", async () => {
    expect(second).toBeDefined();
    const former = servedTls(p.lab);
    const t = Date.now();
    const deleted = await second!.mocks.deleteAll();
    timings.destroyMs = Date.now() - t;
    expect(deleted.filter((o) => !o.ok)).toEqual([]);
    const order = deleted.map((o) => o.resource);
    expect([...order].sort()).toEqual(
      [
        "harbor-apply",
        "harbor-extract",
        "harbor-data",
        "harbor-layout",
        "registry-host-tls",
        "registry-host-ca-trust",
        "registry-host-etc-hosts",
        "registry-host-dirs",
        "trust-cli1-install",
        "trust-cli2-install",
      ].sort(),
    );
    // Reverse registration order: Harbor goes before the host it runs on, the TLS files before their directory.
    const last = (prefix: string) =>
      Math.max(...order.map((r, i) => (r.startsWith(prefix) ? i : -1)));
    expect(last("harbor-")).toBeLessThan(order.indexOf("registry-host-tls"));
    expect(order.indexOf("harbor-apply")).toBe(0);
    expect(order.indexOf("registry-host-tls")).toBeLessThan(order.indexOf("registry-host-dirs"));
    expect(await curlAfterDestroy(p.lab, former)).toEqual({ cli1: 60, cli2: 60 });
    expect((await reg("docker ps -q | wc -l")).stdout).toBe("0\n");
    expect(
      (
        await reg(
          `ls ${DATA_DIR}/registry/docker/registry/v2/repositories/library; ls /etc/casd-registry/tls 2>&1 | grep -c 'No such file'`,
        )
      ).stdout,
    ).toBe("bb\n1\n");
    for (const node of ["cli1", "cli2"]) {
      const left = await p.lab.ssh(
        node,
        `ls /etc/containerd/certs.d /etc/docker/certs.d /etc/containers/certs.d 2>/dev/null | grep -c ${HOSTNAME}; grep -c ${HOSTNAME} /etc/hosts`,
      );
      expect(left.stdout).toBe("0\n0\n");
    }
  });
});
