/**
 * HarborCompose on a real lab host, with a Harbor STAND-IN installer built by
 * the test from local parts (test/lab/standin: NOT Harbor; it keeps the
 * installer's contract). Live mocks run every step over real SSH with the
 * pinned host key; dockerd and docker-compose run inside the host.
 *
 * Run: npx jest --selectProjects lab test/lab/compose.test.ts --runInBand
 * Outside CI a missing prerequisite skips this file with a message; with CI=true it fails.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { HarborConfig } from "../../infra/config";
import { HarborCompose, composePaths } from "../../infra/harbor/compose";
import { sshConnection } from "../../infra/remote/connection";
import { ClientTrust } from "../../infra/trust";
import {
  captureRegistrationFailures,
  createLab,
  createLiveMocks,
  ensureRootfs,
  Lab,
  labPrerequisites,
  LiveMocks,
} from "./harness";
import { buildStandinInstaller, StandinInstaller } from "./standin/build";

jest.setTimeout(600_000);

const PREFIX = "casdcmp";
const HOSTNAME = "reg.casd.local";
const ADMIN = "Adm1nPassw0rdForLab";
const ADMIN2 = "R0tatedAdminPassw0rd";
const DB = "Db1PasswordForLab99";
const TLS = "/etc/casd-registry/tls";
const INSTALL_DIR = "/opt/casd-registry";
const DATA = "/data";

const missing = labPrerequisites();
for (const cmd of ["go", "openssl", "tar"]) {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`]);
  } catch {
    missing.push(`command ${cmd} not found`);
  }
}
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled) console.warn(`test/lab/compose.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

/** A CA and a server certificate for reg.casd.local (openssl), as the PKI room would produce. */
function makePki(dir: string): { ca: string; chain: string; key: string; fingerprint: string } {
  const o = (...a: string[]) =>
    execFileSync("openssl", a, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  o(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=casd lab CA (compose)",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  );
  o(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    `/CN=${HOSTNAME}`,
  );
  fs.writeFileSync(
    path.join(dir, "ext.cnf"),
    `subjectAltName=DNS:${HOSTNAME}\nextendedKeyUsage=serverAuth\n`,
  );
  o(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  );
  const ca = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
  const fp = o("x509", "-in", "server.crt", "-noout", "-fingerprint", "-sha256")
    .toString()
    .split("=")[1]
    .replace(/:/g, "")
    .trim()
    .toLowerCase();
  return {
    ca,
    chain: fs.readFileSync(path.join(dir, "server.crt"), "utf8") + ca,
    key: fs.readFileSync(path.join(dir, "server.key"), "utf8"),
    fingerprint: fp,
  };
}

describeLab("HarborCompose with the Harbor stand-in installer on a lab host", () => {
  let lab: Lab;
  let mocks: LiveMocks;
  let work: string;
  let v1: StandinInstaller;
  let v2: StandinInstaller;
  let pki: ReturnType<typeof makePki>;
  /** The live mocks of the last 2.15.1 run: the engine runs their deletes after the upgrade replaced them. */
  let v1Mocks: LiveMocks;
  const timings: Record<string, number> = {};

  function harborConfig(inst: StandinInstaller, over: Partial<HarborConfig> = {}): HarborConfig {
    return {
      version: inst.version,
      installerPath: inst.path,
      installerSha256: inst.sha256,
      httpsPort: 443,
      http: "redirect",
      httpPort: 80,
      withTrivy: true,
      jobserviceWorkers: 10,
      logLevel: "info",
      logRotateCount: 50,
      logRotateSize: "200M",
      metrics: { enabled: false, port: 9090, path: "/metrics" },
      purgeDataOnDestroy: false,
      healthTimeoutSeconds: 120,
      adminPassword: pulumi.secret(ADMIN),
      databasePassword: pulumi.secret(DB),
      ...over,
    };
  }

  /** One `pulumi up` of the room (plus a client node's trust) under fresh live mocks. */
  async function up(inst: StandinInstaller, over: Partial<HarborConfig> = {}, withClient = false) {
    mocks = createLiveMocks({
      netns: lab.controlNs,
      tls: async (t) => {
        throw new Error(`no tls resource expected (${t})`);
      },
    });
    await pulumi.runtime.setMocks(mocks, "casd-registry", "lab", false);
    const reg = lab.connection("reg");
    const compose = new HarborCompose("harbor", {
      connection: sshConnection({
        address: reg.host,
        port: reg.port,
        user: reg.user,
        hostKey: reg.hostKey,
        privateKey: reg.privateKey,
      }),
      hostname: HOSTNAME,
      harbor: harborConfig(inst, over),
      certPath: `${TLS}/server-fullchain.crt`,
      keyPath: `${TLS}/server.key`,
      caPath: `${TLS}/ca.crt`,
      dataDir: DATA,
      installDir: INSTALL_DIR,
      caCertPem: pki.ca,
      certFingerprint: pki.fingerprint,
      prepareImage: inst.prepareImage,
    });
    let trust: ClientTrust | undefined;
    if (withClient) {
      const cli = lab.host("cli");
      trust = new ClientTrust("cli", {
        client: {
          name: "cli",
          address: cli.address,
          port: cli.port,
          user: cli.user,
          hostKey: cli.hostKey,
          runtimes: ["podman"],
          sudo: false,
          restartContainerd: false,
          push: false,
        },
        privateKey: pulumi.secret(lab.clientKey.privateKey),
        hostname: HOSTNAME,
        caCertPem: pki.ca,
        caFingerprintSha256: "cd".repeat(32),
        registryReady: compose.healthyEndpoint,
        verify: true,
      });
    }
    return { compose, trust };
  }

  const reg = (cmd: string) => lab.ssh("reg", cmd);
  async function containers(): Promise<string> {
    const r = await reg("docker ps --format '{{.Names}} {{.Image}}' | sort");
    return r.stdout;
  }
  async function containerStarts(): Promise<string> {
    return (
      await reg(
        "docker ps -q | sort | xargs -r docker inspect --format '{{.Name}} {{.Id}} {{.State.StartedAt}}'",
      )
    ).stdout;
  }
  const opsOf = (name: string) => mocks.operations.filter((o) => o.resource === name);

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
    let t = Date.now();
    const cache = path.join(os.tmpdir(), "casdcmp-standin");
    fs.mkdirSync(cache, { recursive: true });
    v1 = buildStandinInstaller({ version: "2.15.1", outDir: cache });
    v2 = buildStandinInstaller({ version: "2.16.0", outDir: cache });
    timings.standinBuildMs = Date.now() - t;
    pki = makePki(work);
    t = Date.now();
    const rootfs = await ensureRootfs({ log: (l) => console.log(l) });
    lab = await createLab({
      prefix: PREFIX,
      rootfs: rootfs.dir,
      subnet: "10.233.0.0/24",
      hosts: [{ name: "reg", docker: true, aliases: [HOSTNAME] }, { name: "cli" }],
    });
    await lab.startDocker("reg");
    timings.labUpMs = Date.now() - t;
    // What the host room installs before Harbor: the certificate, its key and the CA.
    const put = await reg(
      `set -e; mkdir -p ${TLS}; printf '%s' '${Buffer.from(pki.chain).toString("base64")}' | base64 -d > ${TLS}/server-fullchain.crt; printf '%s' '${Buffer.from(pki.key).toString("base64")}' | base64 -d > ${TLS}/server.key; chmod 600 ${TLS}/server.key; printf '%s' '${Buffer.from(pki.ca).toString("base64")}' | base64 -d > ${TLS}/ca.crt`,
    );
    expect(put.code).toBe(0);
  }, 900_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`compose lab timings: ${JSON.stringify(timings)}`);
  });

  test("first install: uploaded once, verified, installed with --with-trivy, healthy through the real name and CA", async () => {
    const t = Date.now();
    const { compose } = await up(v1);
    expect(await value(compose.healthyEndpoint)).toBe("https://reg.casd.local");
    expect(await value(compose.version)).toBe("2.15.1");
    await mocks.settled();
    timings.firstInstallMs = Date.now() - t;
    const p = composePaths(INSTALL_DIR, "2.15.1", v1.sha256);
    expect(opsOf("harbor-upload")).toEqual([
      expect.objectContaining({ op: "copy", remotePath: p.archive, ok: true }),
    ]);
    expect(mocks.operations.filter((o) => o.op === "copy")).toHaveLength(1);
    expect(opsOf("harbor-extract")[0].stdout).toBe("casd: harbor-extract: changed\n");
    expect(opsOf("harbor-apply")[0].stdout).toBe("casd: harbor-apply: changed\n");
    expect(opsOf("harbor-health")[0].stdout).toBe(
      "casd: harbor healthy at https://reg.casd.local/api/v2.0/health\ncasd: harbor-health: unchanged\n",
    );
    expect(opsOf("harbor-admin-password")[0].stdout).toBe("casd: harbor-admin-password: changed\n");
    expect(await containers()).toBe(
      [
        "standin-core casd-standin/harbor:v2.15.1",
        "standin-jobservice casd-standin/harbor:v2.15.1",
        "standin-nginx casd-standin/harbor:v2.15.1",
        "standin-registry casd-standin/harbor:v2.15.1",
        "standin-trivy-adapter casd-standin/harbor:v2.15.1",
        "",
      ].join("\n"),
    );
    const log = await reg("cut -d' ' -f2- /var/log/casd-standin.log");
    expect(log.stdout).toBe(
      "install.sh --with-trivy (stand-in 2.15.1)\nprepare --with-trivy (stand-in 2.15.1)\n",
    );
    const yml = await reg(
      `stat -c '%a %U %G' ${p.harborDir}/harbor.yml; readlink ${p.current}; grep -c '${DB}' ${p.harborDir}/harbor.yml`,
    );
    expect(yml.stdout).toBe(`600 root root\n${p.installId}\n1\n`);
    // Secrets never in a script or a log line the mocks saw.
    for (const o of mocks.operations) {
      expect(`${o.stdout}${o.stderr}`).not.toContain(DB);
    }
    for (const r of mocks.resources) expect(String(r.plainInputs.create ?? "")).not.toContain(DB);
  });

  test("a re-run with no change restarts no container", async () => {
    const before = await containerStarts();
    const { compose } = await up(v1);
    await value(compose.healthyEndpoint);
    await mocks.settled();
    expect(opsOf("harbor-apply")[0].stdout).toBe("casd: harbor-apply: unchanged\n");
    expect(opsOf("harbor-extract")[0].stdout).toBe("casd: harbor-extract: unchanged\n");
    expect(opsOf("harbor-admin-password")[0].stdout).toBe(
      "casd: harbor-admin-password: unchanged\n",
    );
    expect(await containerStarts()).toBe(before);
    expect((await reg("wc -l < /var/log/casd-standin.log")).stdout).toBe("2\n");
  });

  test("a checksum mismatch is refused before anything changes", async () => {
    const before = await containerStarts();
    const wrong = "f".repeat(64);
    const { failures } = await captureRegistrationFailures(async () => {
      await up(v1, { installerSha256: wrong });
      await mocks.settled();
    });
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(
      /failed to register new resource harbor-extract [\s\S]*casd: error: installer checksum mismatch: \/opt\/casd-registry\/harbor\/uploads\/harbor-offline-installer-v2\.15\.1-f{12}\.tgz has sha256 [0-9a-f]{64} but harbor\.installerSha256 is f{64}; nothing was extracted or changed/,
    );
    expect(mocks.operations.map((o) => o.resource).sort()).toEqual([
      "harbor-data",
      "harbor-extract",
      "harbor-layout",
      "harbor-upload",
    ]);
    expect(await containerStarts()).toBe(before);
    const p = composePaths(INSTALL_DIR, "2.15.1", v1.sha256);
    expect(
      (await reg(`readlink ${p.current}; ls ${INSTALL_DIR}/harbor | grep -c '^v' `)).stdout,
    ).toBe(`${p.installId}\n1\n`);
  });

  test("the health wait fails clearly, naming the unhealthy components", async () => {
    await reg(`printf 'redis\\njobservice\\n' > ${DATA}/standin/unhealthy`);
    try {
      const t = Date.now();
      const { failures } = await captureRegistrationFailures(async () => {
        await up(v1, { healthTimeoutSeconds: 10 });
        await mocks.settled();
      });
      expect(failures).toHaveLength(1);
      expect(failures[0]).toContain(
        "casd: error: harbor is not healthy after 10s at https://reg.casd.local/api/v2.0/health; unhealthy: jobservice=unhealthy redis=unhealthy (docker ps -a and Harbor's logs on the host tell more)",
      );
      expect(opsOf("harbor-apply")[0].stdout).toBe("casd: harbor-apply: unchanged\n");
      expect(opsOf("harbor-admin-password")).toEqual([]);
      timings.unhealthyFailMs = Date.now() - t;
      expect(Date.now() - t).toBeLessThan(30_000);
    } finally {
      await reg(`rm -f ${DATA}/standin/unhealthy`);
    }
  });

  test("admin password rotation goes through the API with the CA", async () => {
    const { compose } = await up(v1, { adminPassword: pulumi.secret(ADMIN2) });
    await value(compose.healthyEndpoint);
    await mocks.settled();
    expect(opsOf("harbor-apply")[0].stdout).toBe("casd: harbor-apply: changed\n"); // harbor.yml rewritten, nothing restarted
    expect(opsOf("harbor-admin-password")[0]).toMatchObject({
      ok: true,
      stdout: "casd: harbor-admin-password: changed\n",
    });
    expect(opsOf("harbor-admin-password")[0].stderr).toContain(
      "casd: admin password rotated through the API",
    );
    expect((await reg(`cat ${DATA}/standin/admin-password`)).stdout).toBe(ADMIN2);
    v1Mocks = mocks;
    expect((await reg("wc -l < /var/log/casd-standin.log")).stdout).toBe("2\n");
  });

  test("a client node trusting the stack's CA pulls through the deployed endpoint", async () => {
    // An image from local parts, pushed through the stand-in's /v2/ (a real Distribution).
    const push = await reg(
      `set -e; mkdir -p /tmp/img/bin; cp /bin/busybox /tmp/img/bin/; tar -C /tmp/img -c . | docker import - lab/bb:1 >/dev/null; docker save lab/bb:1 -o /tmp/bb.tar; mkdir -p /tmp/cd; cp ${TLS}/ca.crt /tmp/cd/ca.crt; skopeo copy --quiet --dest-cert-dir /tmp/cd docker-archive:/tmp/bb.tar docker://${HOSTNAME}/library/bb:1`,
    );
    expect(push.stderr).toBe("");
    expect(push.code).toBe(0);
    const { compose, trust } = await up(v1, { adminPassword: pulumi.secret(ADMIN2) }, true);
    await value(compose.healthyEndpoint);
    await mocks.settled();
    v1Mocks = mocks;
    expect(trust).toBeDefined();
    const pull = await lab.ssh(
      "cli",
      `skopeo copy --quiet docker://${HOSTNAME}/library/bb:1 dir:/tmp/pulled && ls /tmp/pulled | grep -c .`,
    );
    expect(pull.stderr).toBe("");
    expect(Number(pull.stdout.trim())).toBeGreaterThanOrEqual(3);
    const noTrust = await lab.ssh(
      "cli",
      `skopeo inspect --cert-dir /nonexistent docker://${HOSTNAME}/library/bb:1 >/dev/null 2>&1 || echo refused; curl -sS -o /dev/null https://${HOSTNAME}/v2/ 2>&1 | grep -c 'certificate'`,
    );
    expect(noTrust.stdout.split("\n")[1]).toBe("1");
  });

  test("a version bump stops Harbor, backs up the install and the database, migrates, installs, and is healthy", async () => {
    const t = Date.now();
    const { compose } = await up(v2, { adminPassword: pulumi.secret(ADMIN2) });
    expect(await value(compose.version)).toBe("2.16.0");
    await mocks.settled();
    timings.upgradeMs = Date.now() - t;
    const p1 = composePaths(INSTALL_DIR, "2.15.1", v1.sha256);
    const p2 = composePaths(INSTALL_DIR, "2.16.0", v2.sha256);
    const out = opsOf("harbor-apply")[0];
    expect(out.stdout).toMatch(
      new RegExp(
        `^casd: upgraded harbor 2\\.15\\.1 to 2\\.16\\.0; backup: ${INSTALL_DIR}/harbor/backups/\\d{8}T\\d{6}Z-${p1.installId}-to-${p2.installId}\ncasd: harbor-apply: changed\n$`,
      ),
    );
    const backup = /backup: (\S+)/.exec(out.stdout)![1];
    const files = await reg(
      `cd ${backup} && ls; tar -tzf database.tgz; grep '^_version' harbor.yml.migrated; tar -tzf install.tgz | grep -c 'harbor.v2.15.1.tar.gz' || true`,
    );
    expect(files.stdout).toBe(
      "database.tgz\nharbor.yml.migrated\nharbor.yml.previous\ninstall.tgz\ndatabase/\ndatabase/PG_VERSION\n_version: 2.16.0\n0\n",
    );
    expect((await reg(`readlink ${p2.current}`)).stdout).toBe(`${p2.installId}\n`);
    expect(await containers()).toContain("standin-registry casd-standin/harbor:v2.16.0\n");
    expect(await containers()).not.toContain("v2.15.1");
    // What the engine does after the replacement: the 2.15.1 steps' deletes. They leave 2.16.0 running.
    expect((await v1Mocks.runDelete("harbor-apply"))?.stdout).toBe(
      "casd: harbor-apply-delete: unchanged\n",
    );
    expect((await v1Mocks.runDelete("harbor-extract"))?.stdout).toBe(
      "casd: harbor-extract-delete: changed\n",
    );
    expect(
      (await reg(`ls ${INSTALL_DIR}/harbor | grep -c '^v2.15.1'; readlink ${p2.current}`)).stdout,
    ).toBe(`0\n${p2.installId}\n`);
    expect(await containers()).toContain("standin-nginx casd-standin/harbor:v2.16.0\n");
    // The data survived: the pushed image still pulls.
    expect(
      (
        await lab.ssh(
          "cli",
          `skopeo inspect docker://${HOSTNAME}/library/bb:1 --format '{{.Name}}'`,
        )
      ).stdout,
    ).toBe(`${HOSTNAME}/library/bb\n`);
  });

  test("destroy stops Harbor and keeps the data", async () => {
    const deleted = await mocks.deleteAll();
    expect(deleted.every((o) => o.ok)).toBe(true);
    expect(deleted.map((o) => o.resource)).toEqual([
      "harbor-apply",
      "harbor-extract",
      "harbor-data",
      "harbor-layout",
    ]);
    expect(await containers()).toBe("");
    const kept = await reg(
      `ls ${DATA}/database ${DATA}/registry/docker/registry/v2/repositories/library; ls ${INSTALL_DIR}/harbor | grep -c '^v'; ls ${INSTALL_DIR}/harbor/backups | wc -l`,
    );
    expect(kept.stdout).toBe(
      `${DATA}/database:\nPG_VERSION\n\n${DATA}/registry/docker/registry/v2/repositories/library:\nbb\n0\n1\n`,
    );
  });
});
