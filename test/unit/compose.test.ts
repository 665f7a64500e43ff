/**
 * HarborCompose under mocks: exact resources, order, commands, triggers,
 * secrets hidden from argv and logs, and synchronous validation.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import type { HarborConfig } from "../../infra/config";
import { RecordingMocks, containsSecret, valueOf } from "../support/mocks";
import { sshKeyPair } from "../support/ssh-keys";

const SHA = "0123456789abcdef".repeat(4);
const ADMIN = "Adm1nPassw0rdForTests";
const DB = "Db1PasswordForTests9";
const CA =
  "-----BEGIN CERTIFICATE-----\nMIIBcTCCARegAwIBAgIUQ2FzZFRlc3RDQQ==\n-----END CERTIFICATE-----\n";
const FP = "ab".repeat(32);
const KEY = sshKeyPair();
const HOST_KEY = sshKeyPair().publicKey;

let tmp: string;
let installer: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "casd-compose-unit-"));
  installer = path.join(tmp, "harbor-offline-installer-v2.15.1.tgz");
  fs.writeFileSync(installer, "not really an installer");
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run {
  pulumi: typeof pulumiType;
  mocks: RecordingMocks;
  options: Map<
    string,
    {
      dependsOn: string[];
      deleteBeforeReplace?: boolean;
      additionalSecretOutputs?: string[];
      parent?: string;
    }
  >;
  component: import("../../infra/harbor/compose").HarborCompose;
  mod: typeof import("../../infra/harbor/compose");
  script: typeof import("../../infra/remote/script");
}

function harborConfig(p: typeof pulumiType, over: Partial<HarborConfig> = {}): HarborConfig {
  return {
    version: "2.15.1",
    installerPath: installer,
    installerSha256: SHA,
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
    healthTimeoutSeconds: 600,
    adminPassword: p.secret(ADMIN),
    databasePassword: p.secret(DB),
    ...over,
  };
}

async function build(
  over: (p: typeof pulumiType) => Partial<HarborConfig> = () => ({}),
  extra: Record<string, unknown> = {},
): Promise<Run> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const mocks = new RecordingMocks((args, inputs) => {
    if (args.type === "command:remote:Command")
      return { ...args.inputs, stdout: `casd: ${args.name}: changed`, stderr: "" };
    void inputs;
    return undefined;
  });
  await pulumi.runtime.setMocks(mocks, "casd-registry", "unit", false);
  const mod = await import("../../infra/harbor/compose");
  const script = await import("../../infra/remote/script");
  const { sshConnection } = await import("../../infra/remote/connection");
  const options: Run["options"] = new Map();
  let component!: Run["component"];
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((a) => {
      const deps = (a.opts.dependsOn ?? []) as unknown[];
      options.set(a.name, {
        dependsOn: (Array.isArray(deps) ? deps : [deps]).map(
          (d) => (d as { __name?: string }).__name ?? "?",
        ),
        deleteBeforeReplace: (a.opts as { deleteBeforeReplace?: boolean }).deleteBeforeReplace,
        additionalSecretOutputs: (a.opts as { additionalSecretOutputs?: string[] })
          .additionalSecretOutputs,
        parent: (a.opts.parent as unknown as { __name?: string })?.__name,
      });
      return undefined;
    });
    component = new mod.HarborCompose("harbor", {
      connection: sshConnection({
        address: "10.50.6.62",
        hostKey: HOST_KEY,
        privateKey: KEY.privateKey,
      }),
      hostname: "reg.casd.local",
      harbor: harborConfig(pulumi, over(pulumi)),
      certPath: "/etc/casd-registry/tls/server-fullchain.crt",
      keyPath: "/etc/casd-registry/tls/server.key",
      caPath: "/etc/casd-registry/tls/ca.crt",
      dataDir: "/data",
      installDir: "/opt/casd-registry",
      caCertPem: CA,
      certFingerprint: FP,
      ...extra,
    });
    return {};
  });
  await valueOf(pulumi, component.healthyEndpoint);
  await valueOf(pulumi, component.harborDir);
  // Let the last registrations (admin password) land.
  await new Promise((r) => setTimeout(r, 50));
  return { pulumi, mocks, options, component, mod, script };
}

describe("HarborCompose under mocks", () => {
  let run: Run;
  beforeAll(async () => {
    run = await build();
  });

  it("registers exactly the seven steps, all children of the component", () => {
    expect(
      run.mocks.resources
        .filter((r) => r.type !== "pulumi:pulumi:Stack")
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual(
      [
        "casd:harbor:HarborCompose harbor",
        "command:remote:Command harbor-layout",
        "command:remote:Command harbor-data",
        "command:remote:CopyToRemote harbor-upload",
        "command:remote:Command harbor-extract",
        "command:remote:Command harbor-apply",
        "command:remote:Command harbor-health",
        "command:remote:Command harbor-admin-password",
      ].sort(),
    );
    for (const n of ["layout", "data", "upload", "extract", "apply", "health", "admin-password"]) {
      expect(run.options.get(`harbor-${n}`)?.parent).toBe("harbor");
    }
  });

  it("orders the steps: layout, data and upload, extract, apply, health, admin password", () => {
    const deps = Object.fromEntries(
      [...run.options].filter(([n]) => n !== "harbor").map(([n, o]) => [n, o.dependsOn]),
    );
    expect(deps).toEqual({
      "harbor-layout": [],
      "harbor-data": ["harbor-layout"],
      "harbor-upload": ["harbor-layout"],
      "harbor-extract": ["harbor-upload"],
      "harbor-apply": ["harbor-extract", "harbor-data"],
      "harbor-health": ["harbor-apply"],
      "harbor-admin-password": ["harbor-health"],
    });
    const order = run.mocks.resources.map((r) => r.name);
    const at = (n: string) => order.indexOf(`harbor-${n}`);
    expect(at("layout")).toBeLessThan(at("upload"));
    expect(at("upload")).toBeLessThan(at("extract"));
    expect(at("extract")).toBeLessThan(at("apply"));
    expect(at("data")).toBeLessThan(at("apply"));
    expect(at("apply")).toBeLessThan(at("health"));
    expect(at("health")).toBeLessThan(at("admin-password"));
  });

  it("runs each step's exact rendered script, as root without sudo", () => {
    const { mod, script } = run;
    const p = mod.composePaths("/opt/casd-registry", "2.15.1", SHA);
    const inv = (s: string) => script.remoteInvocation(s, { sudo: false });
    const cmd = (n: string) => run.mocks.byName(`harbor-${n}`).inputs;
    expect(cmd("layout")).toMatchObject({
      create: inv(mod.renderLayoutScript(p)),
      delete: inv(mod.renderLayoutDelete(p)),
      triggers: ["/opt/casd-registry/harbor"],
    });
    const d = {
      dataVolume: "/data",
      purgeOnDestroy: false,
      adminState: "/opt/casd-registry/harbor/admin-password",
    };
    expect(cmd("data")).toMatchObject({
      create: inv(mod.renderDataScript(d)),
      delete: inv(mod.renderDataDelete(d)),
      triggers: ["/data", false],
    });
    expect(cmd("extract")).toMatchObject({
      create: inv(mod.renderExtractScript({ paths: p, version: "2.15.1", sha256: SHA })),
      delete: inv(mod.renderExtractDelete(p)),
      triggers: [SHA, "2.15.1", "unsigned"],
    });
    expect(cmd("apply").create).toBe(
      inv(
        mod.renderApplyScript({
          paths: p,
          version: "2.15.1",
          schemaVersion: "2.15.0",
          withTrivy: true,
          certPath: "/etc/casd-registry/tls/server-fullchain.crt",
          keyPath: "/etc/casd-registry/tls/server.key",
          dataVolume: "/data",
          prepareImage: "goharbor/prepare:v2.15.1",
          certFingerprint: FP,
        }),
      ),
    );
    expect(cmd("apply").delete).toBe(inv(mod.renderApplyDelete(p)));
    expect(cmd("health").create).toBe(
      inv(
        mod.renderHealthScript({
          hostname: "reg.casd.local",
          httpsPort: 443,
          caCertPem: CA,
          timeoutSeconds: 600,
        }),
      ),
    );
    expect(cmd("admin-password").create).toBe(
      inv(
        mod.renderAdminPasswordScript({
          hostname: "reg.casd.local",
          httpsPort: 443,
          caCertPem: CA,
          statePath: "/opt/casd-registry/harbor/admin-password",
        }),
      ),
    );
    expect(cmd("health").delete).toBeUndefined();
    expect(cmd("admin-password").delete).toBeUndefined();
    expect(cmd("apply").create).toContain("./install.sh --with-trivy");
    expect(cmd("apply").create).toContain("./prepare --with-trivy");
  });

  it("uploads the installer once per sha256 into its own path", async () => {
    const up = run.mocks.byName("harbor-upload");
    expect(up.inputs.remotePath).toBe(
      `/opt/casd-registry/harbor/uploads/harbor-offline-installer-v2.15.1-${SHA.slice(0, 12)}.tgz`,
    );
    expect(up.inputs.triggers).toEqual([SHA]);
    // Assets reach the mocks with their path as a promise.
    expect(await (up.rawInputs.source as { path: Promise<string> }).path).toBe(installer);
  });

  it("sends harbor.yml and the admin password only through stdin, as secrets, with logging off", () => {
    const apply = run.mocks.byName("harbor-apply");
    const expected = run.mod.renderHarborYml({
      hostname: "reg.casd.local",
      version: "2.15.1",
      httpsPort: 443,
      httpPort: 80,
      certificatePath: "/etc/casd-registry/tls/server-fullchain.crt",
      privateKeyPath: "/etc/casd-registry/tls/server.key",
      adminPassword: ADMIN,
      databasePassword: DB,
      dataVolume: "/data",
      jobserviceWorkers: 10,
      logLevel: "info",
      logRotateCount: 50,
      logRotateSize: "200M",
      metrics: { enabled: false, port: 9090, path: "/metrics" },
    });
    expect(apply.inputs.stdin).toBe(expected);
    expect(containsSecret(apply.rawInputs.stdin)).toBe(true);
    expect(apply.inputs.logging).toBe("none");
    const admin = run.mocks.byName("harbor-admin-password");
    expect(admin.inputs.stdin).toBe(ADMIN);
    expect(containsSecret(admin.rawInputs.stdin)).toBe(true);
    expect(admin.inputs.logging).toBe("none");
    for (const n of ["harbor-apply", "harbor-admin-password"])
      expect(run.options.get(n)?.additionalSecretOutputs).toEqual([
        "stdout",
        "stderr",
        "connection",
      ]);
    // No password in any script, trigger or other input, anywhere.
    for (const r of run.mocks.resources) {
      const { stdin: _s, ...rest } = r.inputs;
      const text = JSON.stringify(rest);
      expect(text).not.toContain(ADMIN);
      expect(text).not.toContain(DB);
    }
  });

  it("triggers apply on the install directory, a secret hash of harbor.yml without the admin password, the certificate and trivy", async () => {
    const apply = run.mocks.byName("harbor-apply");
    const hash = run.script.sha256Hex(
      run.mod.renderHarborYmlForTrigger({
        hostname: "reg.casd.local",
        version: "2.15.1",
        httpsPort: 443,
        httpPort: 80,
        certificatePath: "/etc/casd-registry/tls/server-fullchain.crt",
        privateKeyPath: "/etc/casd-registry/tls/server.key",
        adminPassword: "ignored",
        databasePassword: DB,
        dataVolume: "/data",
        jobserviceWorkers: 10,
        logLevel: "info",
        logRotateCount: 50,
        logRotateSize: "200M",
        metrics: { enabled: false, port: 9090, path: "/metrics" },
      }),
    );
    expect(apply.inputs.triggers).toEqual([`v2.15.1-${SHA.slice(0, 12)}`, hash, FP, true]);
    // One secret element makes the whole trigger list secret in state.
    expect(containsSecret(apply.rawInputs.triggers)).toBe(true);
    expect(containsSecret(run.mocks.byName("harbor-extract").rawInputs.triggers)).toBe(false);
    expect(run.options.get("harbor-apply")?.deleteBeforeReplace).toBe(true);
    const health = run.mocks.byName("harbor-health");
    expect(health.inputs.triggers).toEqual([
      `v2.15.1-${SHA.slice(0, 12)}`,
      hash,
      FP,
      true,
      run.script.sha256Hex(CA),
    ]);
    const admin = run.mocks.byName("harbor-admin-password");
    expect(admin.inputs.triggers).toEqual([run.script.sha256Hex("harbor-admin", ADMIN)]);
    expect(containsSecret(admin.rawInputs.triggers)).toBe(true);
  });

  it("pins the host key on every connection and keeps the private key secret", () => {
    for (const r of run.mocks.resources.filter((x) => x.type.startsWith("command:"))) {
      expect(r.inputs.connection).toMatchObject({
        host: "10.50.6.62",
        port: 22,
        user: "root",
        hostKey: HOST_KEY,
        privateKey: KEY.privateKey,
      });
      expect(containsSecret(r.rawInputs.connection)).toBe(true);
    }
  });

  it("exports the endpoint and version once health passed", async () => {
    expect(await valueOf(run.pulumi, run.component.healthyEndpoint)).toBe("https://reg.casd.local");
    expect(await valueOf(run.pulumi, run.component.version)).toBe("2.15.1");
    expect(await valueOf(run.pulumi, run.component.harborDir)).toBe(
      `/opt/casd-registry/harbor/v2.15.1-${SHA.slice(0, 12)}/harbor`,
    );
  });
});

describe("HarborCompose options", () => {
  it("uses sudo -n, another port, no trivy, purge on destroy and a given prepare image", async () => {
    const run = await build(
      () => ({ httpsPort: 8443, httpPort: 8080, withTrivy: false, purgeDataOnDestroy: true }),
      { sudo: true, prepareImage: "casd-standin/prepare:v2.15.1" },
    );
    const apply = run.mocks.byName("harbor-apply").inputs;
    expect(apply.create.startsWith("sudo -n bash -c '#!/usr/bin/env bash")).toBe(true);
    expect(apply.create).toContain("./install.sh\n");
    expect(apply.create).not.toContain("--with-trivy");
    expect(apply.create).toContain("casd-standin/prepare:v2.15.1");
    expect(apply.triggers[3]).toBe(false);
    expect(run.mocks.byName("harbor-data").inputs.delete).toContain("-xdev -mindepth 1 -delete");
    expect(run.mocks.byName("harbor-data").inputs.triggers).toEqual(["/data", true]);
    expect(run.mocks.byName("harbor-health").inputs.create).toContain(
      "https://reg.casd.local:8443/api/v2.0/health",
    );
    expect(await valueOf(run.pulumi, run.component.healthyEndpoint)).toBe(
      "https://reg.casd.local:8443",
    );
    for (const r of run.mocks.resources.filter((x) => x.type === "command:remote:Command"))
      expect(r.inputs.create.startsWith("sudo -n bash -c ")).toBe(true);
  });

  it("embeds the signature check when a signature and pinned key are given", async () => {
    const asc = path.join(tmp, "installer.asc");
    const key = path.join(tmp, "key.asc");
    fs.writeFileSync(
      asc,
      "-----BEGIN PGP SIGNATURE-----\n\niQ==\n=abcd\n-----END PGP SIGNATURE-----\n",
    );
    fs.writeFileSync(
      key,
      "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ2Nhc2Q=\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n",
    );
    const run = await build(() => ({ signaturePath: asc, signingKeyPath: key }));
    const extract = run.mocks.byName("harbor-extract").inputs;
    expect(extract.create).toContain("gpgv --keyring");
    expect(extract.triggers).toEqual([
      SHA,
      "2.15.1",
      run.script.sha256Hex(
        fs.readFileSync(asc, "utf8"),
        Buffer.from("mDMEZ2Nhc2Q=", "base64").toString("base64"),
      ),
    ]);
  });

  it("refuses bad input before creating anything, naming every key, value and fix", async () => {
    jest.resetModules();
    const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "casd-registry", "unit", false);
    const mod = await import("../../infra/harbor/compose");
    const { sshConnection } = await import("../../infra/remote/connection");
    const make = () =>
      new mod.HarborCompose("harbor", {
        connection: sshConnection({
          address: "10.50.6.62",
          hostKey: HOST_KEY,
          privateKey: KEY.privateKey,
        }),
        hostname: "reg.casd.local",
        harbor: harborConfig(pulumi, {
          installerPath: path.join(tmp, "missing.tgz"),
          installerSha256: "abc",
          http: "off",
          signaturePath: path.join(tmp, "x.asc"),
        }),
        certPath: "/etc/casd-registry/tls/server-fullchain.crt",
        keyPath: "/etc/casd-registry/tls/server.key",
        dataDir: "/data",
        installDir: "opt",
        caCertPem: CA,
        certFingerprint: FP,
      });
    expect(make).toThrow(
      new Error(
        [
          "HarborCompose harbor: 6 invalid inputs; nothing was changed:",
          `  - harbor.installerPath: '${path.join(tmp, "missing.tgz")}' does not exist on this machine: point it at the offline installer in the bundle`,
          "  - harbor.installerSha256: 'abc' is not a sha256: pulumi config set --path harbor.installerSha256 $(sha256sum <installer> | cut -d' ' -f1)",
          "  - harbor.http: 'off' cannot be honoured by the offline installer: Harbor's nginx always listens on the http port and redirects to https; set harbor.http to redirect (and close harbor.httpPort at the host firewall if it must not answer)",
          "  - harbor.signingKeyPath: is required with the other: set both the .asc and the pinned public key file, or neither",
          `  - harbor.signaturePath: '${path.join(tmp, "x.asc")}' does not exist on this machine: point it at the file in the bundle`,
          "  - installDir: 'opt' is not an absolute path: use registryHost.installDir such as /opt/casd-registry",
        ].join("\n"),
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(mocks.resources.filter((r) => r.type.startsWith("command:"))).toEqual([]);
  });
});

describe("pgpKeyring", () => {
  it("removes ASCII armor (headers, checksum) and keeps binary keys as they are", async () => {
    const { pgpKeyring } = await import("../../infra/harbor/compose");
    const bin = Buffer.from([0x99, 0x01, 0x0d, 1, 2, 3]);
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n${bin.toString("base64")}\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    expect(pgpKeyring(Buffer.from(armored))).toEqual(bin);
    expect(pgpKeyring(bin)).toEqual(bin);
    expect(() => pgpKeyring(Buffer.from("hello"))).toThrow(
      "is neither an armored nor a binary OpenPGP public key: export it with gpg --export --armor <key id>",
    );
  });
});
