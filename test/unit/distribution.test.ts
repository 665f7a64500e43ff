/**
 * DistributionRegistry under pulumi mocks: the exact resources, their
 * inputs (scripts, triggers, stdin, docker provider and container), their
 * options (provider, dependsOn, secrets), secrets kept secret, and the
 * synchronous validation of the arguments.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import type { DistributionRegistryArgs } from "../../infra/distribution";
import * as scripts from "../../infra/distribution/scripts";
import {
  dockerSshOpts,
  dockerHostUrl,
  htpasswdLine,
  parseLoadedImageId,
  resolveDistributionArgs,
} from "../../infra/distribution";
import { remoteInvocation, sha256Hex } from "../../infra/remote/script";
import { containsSecret, RecordingMocks, valueOf } from "../support/mocks";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE9m9e5p3Jq0Yv1Xq1c1n7rS0m7E0fM3M2cQm2vO2r8T";
const SSH_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nc3NoLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n";
const PASSWORD = "Distr1butionPassw0rd";
const IMAGE_ID = `sha256:${"4".repeat(64)}`;
const SHA = "a".repeat(64);
const HSHA = "b".repeat(64);
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "casd-dist-unit-"));
const ARCHIVE = path.join(TMP, "registry-2.8.3.tar");
const HARBOR = path.join(TMP, "harbor.v2.15.1.tar.gz");
fs.writeFileSync(ARCHIVE, "archive");
fs.writeFileSync(HARBOR, "harbor");
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

function baseArgs(over: Partial<DistributionRegistryArgs> = {}): DistributionRegistryArgs {
  return {
    address: "10.50.6.62",
    hostKey: HOST_KEY,
    privateKey: SSH_KEY,
    hostname: "reg.casd.local",
    certPath: "/etc/casd-registry/tls/fullchain.crt",
    keyPath: "/etc/casd-registry/tls/server.key",
    caPath: "/etc/casd-registry/tls/ca.crt",
    image: "registry:2.8.3",
    imageArchivePath: ARCHIVE,
    imageArchiveSha256: SHA,
    password: PASSWORD,
    ...over,
  };
}

interface Built {
  pulumi: typeof pulumiType;
  mocks: RecordingMocks;
  opts: Map<
    string,
    {
      parentName?: string;
      dependsOnNames: string[];
      providerName?: string;
      deleteBeforeReplace?: boolean;
      additionalSecretOutputs?: string[];
    }
  >;
  reg: import("../../infra/distribution").DistributionRegistry;
}

async function build(
  args: (p: typeof pulumiType) => DistributionRegistryArgs,
  name = "registry",
): Promise<Built> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const mocks = new RecordingMocks((a) => {
    if (a.type === "command:remote:Command") {
      const stdout = a.name.endsWith("-load")
        ? `casd: load: image ${IMAGE_ID}\ncasd: load: changed`
        : a.name.endsWith("-harbor-images")
          ? "casd: harbor-images: 10 pushed, 0 already in 10.50.6.62:5443\ncasd: harbor-images: changed"
          : `casd: ${a.name}: unchanged`;
      return { ...a.inputs, stdout, stderr: "" };
    }
    return undefined;
  });
  await pulumi.runtime.setMocks(mocks, "casd-registry", "test", false);
  const opts: Built["opts"] = new Map();
  const record: pulumiType.ResourceTransformation = (a) => {
    const o = a.opts as pulumiType.CustomResourceOptions;
    const deps = ([] as unknown[]).concat(o.dependsOn ?? []) as { __name?: string }[];
    opts.set(a.name, {
      parentName: (o.parent as unknown as { __name?: string })?.__name,
      dependsOnNames: deps.map((d) => d.__name ?? "?"),
      providerName: (o.provider as unknown as { __name?: string })?.__name,
      deleteBeforeReplace: o.deleteBeforeReplace,
      additionalSecretOutputs: o.additionalSecretOutputs,
    });
    return undefined;
  };
  const { DistributionRegistry } = await import("../../infra/distribution");
  const reg = new DistributionRegistry(name, args(pulumi), { transformations: [record] });
  await valueOf(pulumi, reg.ready);
  return { pulumi, mocks, opts, reg };
}

const run = (s: string): string => remoteInvocation(s, { sudo: false });

describe("DistributionRegistry (deploy: distribution, defaults)", () => {
  let b: Built;
  beforeAll(async () => {
    b = await build((p) =>
      baseArgs({
        password: p.secret(PASSWORD),
        ready: p.output(true),
        tlsRevision: "ca-fp+chain-hash",
      }),
    );
  });

  test("registers exactly the component, the docker provider and container, and five steps", () => {
    expect(b.mocks.resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "casd:distribution:DistributionRegistry registry",
        "command:remote:CopyToRemote registry-archive",
        "command:remote:Command registry-load",
        "command:remote:Command registry-config",
        "command:remote:Command registry-auth",
        "pulumi:providers:docker registry-docker",
        "docker:index/container:Container registry-container",
        "command:remote:Command registry-health",
      ].sort(),
    );
  });

  test("children of the component, ordered by dependsOn, the container on the component's own provider", () => {
    const get = (n: string) => b.opts.get(`registry-${n}`)!;
    for (const n of ["archive", "load", "config", "auth", "docker", "container", "health"])
      expect(get(n).parentName).toBe("registry");
    expect(get("load").dependsOnNames).toEqual(["registry-archive"]);
    expect(get("config").dependsOnNames).toEqual([]);
    expect(get("auth").dependsOnNames).toEqual(["registry-config"]);
    expect(get("container").dependsOnNames).toEqual([
      "registry-load",
      "registry-config",
      "registry-auth",
    ]);
    expect(get("container").providerName).toBe("registry-docker");
    expect(get("container").deleteBeforeReplace).toBe(true);
    expect(get("health").dependsOnNames).toEqual(["registry-container"]);
    expect(get("auth").additionalSecretOutputs).toEqual(["stdout", "stderr", "connection"]);
    expect(get("health").additionalSecretOutputs).toEqual(["stdout", "stderr", "connection"]);
    expect(get("load").additionalSecretOutputs).toEqual(["connection"]);
  });

  test("docker provider: ssh URL and options that pin the host key; no private key anywhere in it", () => {
    const p = b.mocks.byName("registry-docker");
    const sshOpts =
      typeof p.inputs.sshOpts === "string" ? JSON.parse(p.inputs.sshOpts) : p.inputs.sshOpts;
    expect(p.inputs.host).toBe("ssh://root@10.50.6.62:22");
    expect(sshOpts).toEqual([
      "-o", "StrictHostKeyChecking=yes",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", `KnownHostsCommand=/bin/echo %H ${HOST_KEY}`,
      "-o", "BatchMode=yes",
      "-o", "ConnectTimeout=15",
    ]); // prettier-ignore
    expect(JSON.stringify(p.inputs)).not.toContain("PRIVATE KEY");
  });

  test("archive upload: the bundle file to a content-named path under the install dir", async () => {
    const c = b.mocks.byName("registry-archive");
    expect(c.inputs.remotePath).toBe(
      `/opt/casd-registry/images/registry-${SHA.slice(0, 16)}-registry-2.8.3.tar`,
    );
    expect(await (c.rawInputs.source as { path: Promise<string> }).path).toBe(ARCHIVE);
    expect(c.inputs.triggers).toEqual([SHA]);
    expect(c.inputs.connection).toEqual({
      host: "10.50.6.62",
      port: 22,
      user: "root",
      hostKey: HOST_KEY,
      privateKey: SSH_KEY,
      dialErrorLimit: 10,
      perDialTimeout: 15,
    });
    expect(containsSecret(c.rawInputs.connection)).toBe(true);
  });

  test("load, config, auth: rendered scripts, deletes and triggers", () => {
    const remote = `/opt/casd-registry/images/registry-${SHA.slice(0, 16)}-registry-2.8.3.tar`;
    const la = {
      journal: "registry-load",
      archivePath: remote,
      sha256: SHA,
      image: "registry:2.8.3",
    };
    const load = b.mocks.byName("registry-load");
    expect(load.inputs.create).toBe(run(scripts.renderLoadScript(la)));
    expect(load.inputs.delete).toBe(run(scripts.renderLoadDeleteScript(la)));
    expect(load.inputs.triggers).toEqual([
      sha256Hex(scripts.renderLoadScript(la), scripts.renderLoadDeleteScript(la)),
    ]);

    const config = scripts.renderRegistryConfig({
      instance: "registry",
      hostname: "reg.casd.local",
      listenPort: 5000,
      debugPort: 5001,
      certFile: "fullchain.crt",
      keyFile: "server.key",
      deleteEnabled: false,
    });
    const ca = {
      journal: "registry-config",
      storageDir: "/data/distribution-registry",
      etcDir: "/opt/casd-registry/distribution-registry/etc",
      configPath: "/opt/casd-registry/distribution-registry/etc/config.yml",
      config,
    };
    const cfg = b.mocks.byName("registry-config");
    expect(cfg.inputs.create).toBe(run(scripts.renderConfigScript(ca)));
    expect(cfg.inputs.delete).toBe(run(scripts.renderConfigDeleteScript(ca)));
    expect(cfg.inputs.triggers).toEqual([
      sha256Hex(scripts.renderConfigScript(ca), scripts.renderConfigDeleteScript(ca)),
    ]);

    const aa = {
      journal: "registry-auth",
      authDir: "/opt/casd-registry/distribution-registry/auth",
      htpasswdPath: "/opt/casd-registry/distribution-registry/auth/htpasswd",
    };
    const auth = b.mocks.byName("registry-auth");
    expect(auth.inputs.create).toBe(run(scripts.renderAuthScript(aa)));
    expect(auth.inputs.delete).toBe(run(scripts.renderAuthDeleteScript(aa)));
  });

  test("htpasswd travels only on stdin, as a secret bcrypt line; the trigger is secret too", () => {
    const auth = b.mocks.byName("registry-auth");
    const line = htpasswdLine("registry", "casd", PASSWORD);
    expect(line).toMatch(/^casd:\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(auth.inputs.stdin).toBe(`${line}\n`);
    expect(containsSecret(auth.rawInputs.stdin)).toBe(true);
    expect(auth.inputs.logging).toBe("none");
    const aa = {
      journal: "registry-auth",
      authDir: "/opt/casd-registry/distribution-registry/auth",
      htpasswdPath: "/opt/casd-registry/distribution-registry/auth/htpasswd",
    };
    expect(auth.inputs.triggers).toEqual([
      sha256Hex(scripts.renderAuthScript(aa), scripts.renderAuthDeleteScript(aa), sha256Hex(line)),
    ]);
    expect(containsSecret(auth.rawInputs.triggers)).toBe(true);
  });

  test("container: the loaded image id, restart always, published port, mounts (certs, auth, config read-only), healthcheck, wait", () => {
    const c = b.mocks.byName("registry-container");
    const line = htpasswdLine("registry", "casd", PASSWORD);
    const aa = {
      journal: "registry-auth",
      authDir: "/opt/casd-registry/distribution-registry/auth",
      htpasswdPath: "/opt/casd-registry/distribution-registry/auth/htpasswd",
    };
    const config = scripts.renderRegistryConfig({
      instance: "registry",
      hostname: "reg.casd.local",
      listenPort: 5000,
      debugPort: 5001,
      certFile: "fullchain.crt",
      keyFile: "server.key",
      deleteEnabled: false,
    });
    expect(c.inputs).toEqual({
      name: "casd-registry",
      image: IMAGE_ID,
      restart: "always",
      mustRun: true,
      networkMode: "bridge",
      ports: [{ internal: 5000, external: 5000, protocol: "tcp" }],
      volumes: [
        { hostPath: "/data/distribution-registry", containerPath: "/var/lib/registry" },
        { hostPath: "/etc/casd-registry/tls", containerPath: "/certs", readOnly: true },
        {
          hostPath: "/opt/casd-registry/distribution-registry/auth",
          containerPath: "/auth",
          readOnly: true,
        },
        {
          hostPath: "/opt/casd-registry/distribution-registry/etc",
          containerPath: "/etc/docker/registry",
          readOnly: true,
        },
      ],
      healthcheck: {
        tests: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5001/debug/health"],
        interval: "10s",
        timeout: "5s",
        retries: 3,
        startPeriod: "10s",
      },
      labels: [
        { label: "casd.room", value: "distribution" },
        { label: "casd.instance", value: "registry" },
        { label: "casd.config-sha256", value: sha256Hex(config) },
        {
          label: "casd.auth-sha256",
          value: sha256Hex(
            scripts.renderAuthScript(aa),
            scripts.renderAuthDeleteScript(aa),
            sha256Hex(line),
          ),
        },
        { label: "casd.tls-revision", value: "ca-fp+chain-hash" },
      ],
      logDriver: "json-file",
      logOpts: { "max-size": "50m", "max-file": "5" },
      wait: true,
      waitTimeout: 120,
      removeVolumes: false,
      destroyGraceSeconds: 30,
    });
    expect(containsSecret(c.rawInputs.labels)).toBe(true);
    expect(containsSecret(c.rawInputs.volumes)).toBe(false);
  });

  test("health: read-only check, password on stdin as a secret, re-run when the container changes", () => {
    const h = b.mocks.byName("registry-health");
    const script = scripts.renderHealthScript({
      container: "casd-registry",
      hostname: "reg.casd.local",
      port: 5000,
      caPath: "/etc/casd-registry/tls/ca.crt",
      username: "casd",
      attempts: 60,
    });
    expect(h.inputs.create).toBe(run(script));
    expect(h.inputs.delete).toBeUndefined();
    expect(h.inputs.stdin).toBe(`${PASSWORD}\n`);
    expect(containsSecret(h.rawInputs.stdin)).toBe(true);
    expect(h.inputs.logging).toBe("none");
    expect(h.inputs.triggers).toEqual([sha256Hex(script), "registry-container-id"]);
  });

  test("no secret in any script, trigger or label text: the password and its hash appear only on stdin", () => {
    const line = htpasswdLine("registry", "casd", PASSWORD);
    const hash = line.split(":")[1];
    for (const r of b.mocks.resources) {
      const { stdin: _stdin, ...rest } = r.inputs;
      const text = JSON.stringify(rest);
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(hash);
    }
  });

  test("outputs: endpoint, image id, container name, storage dir; ready once health passed", async () => {
    const v = <T>(o: pulumiType.Output<T>): Promise<T> => valueOf(b.pulumi, o);
    expect(await v(b.reg.endpoint)).toBe("reg.casd.local:5000");
    expect(await v(b.reg.imageId)).toBe(IMAGE_ID);
    expect(await v(b.reg.containerName)).toBe("casd-registry");
    expect(await v(b.reg.storageDir)).toBe("/data/distribution-registry");
    expect(await v(b.reg.ready)).toBe(true);
    expect(await b.pulumi.isSecret(b.reg.ready)).toBe(false);
    expect(await v(b.reg.harborImagesSummary)).toBe("");
  });
});

describe("DistributionRegistry (mirror mode, host network, non-root user)", () => {
  let b: Built;
  beforeAll(async () => {
    b = await build(
      (p) =>
        baseArgs({
          password: p.secret(PASSWORD),
          hostname: "mirror.casd.local",
          port: 5443,
          debugPort: 5444,
          network: "host",
          user: "deploy",
          sshPort: 2222,
          identityFile: "/home/op/.ssh/casd_ed25519",
          harborImagesArchivePath: HARBOR,
          harborImagesArchiveSha256: HSHA,
        }),
      "mirror",
    );
  });

  test("adds the Harbor archive upload and the push step, after health", () => {
    expect(b.mocks.resources.map((r) => r.name).sort()).toEqual(
      [
        "mirror",
        "mirror-archive",
        "mirror-load",
        "mirror-config",
        "mirror-auth",
        "mirror-docker",
        "mirror-container",
        "mirror-health",
        "mirror-harbor-archive",
        "mirror-harbor-images",
      ].sort(),
    );
    expect(b.opts.get("mirror-harbor-images")!.dependsOnNames).toEqual([
      "mirror-harbor-archive",
      "mirror-health",
    ]);
    expect(b.opts.get("mirror-harbor-images")!.additionalSecretOutputs).toEqual([
      "stdout",
      "stderr",
      "connection",
    ]);
  });

  test("the push script targets <address>:<port> with sudo, password on stdin", () => {
    const p = b.mocks.byName("mirror-harbor-images");
    const remote = `/opt/casd-registry/images/mirror-${HSHA.slice(0, 16)}-harbor.v2.15.1.tar.gz`;
    const script = scripts.renderMirrorPushScript({
      journal: "mirror-harbor-images",
      archivePath: remote,
      sha256: HSHA,
      registry: "10.50.6.62:5443",
      caPath: "/etc/casd-registry/tls/ca.crt",
      username: "casd",
    });
    const del = scripts.renderMirrorPushDeleteScript({
      journal: "mirror-harbor-images",
      archivePath: remote,
    });
    expect(p.inputs.create).toBe(remoteInvocation(script, { sudo: true }));
    expect(p.inputs.delete).toBe(remoteInvocation(del, { sudo: true }));
    expect(p.inputs.triggers).toEqual([sha256Hex(script, del)]);
    expect(p.inputs.stdin).toBe(`${PASSWORD}\n`);
    expect(containsSecret(p.rawInputs.stdin)).toBe(true);
    expect(b.mocks.byName("mirror-harbor-archive").inputs.remotePath).toBe(remote);
  });

  test("host network: no published port, the registry listens on its port, provider on the custom SSH port with the key file", () => {
    const c = b.mocks.byName("mirror-container");
    expect(c.inputs.networkMode).toBe("host");
    expect(c.inputs.ports).toEqual([]);
    expect(c.inputs.healthcheck.tests).toEqual([
      "CMD",
      "wget",
      "-q",
      "-O",
      "/dev/null",
      "http://127.0.0.1:5444/debug/health",
    ]);
    const p = b.mocks.byName("mirror-docker");
    expect(p.inputs.host).toBe("ssh://deploy@10.50.6.62:2222");
    const sshOpts =
      typeof p.inputs.sshOpts === "string" ? JSON.parse(p.inputs.sshOpts) : p.inputs.sshOpts;
    expect(sshOpts.slice(-4)).toEqual([
      "-o",
      "IdentityFile=/home/op/.ssh/casd_ed25519",
      "-o",
      "IdentitiesOnly=yes",
    ]);
    const cfg = b.mocks.byName("mirror-config").inputs.create as string;
    const config = scripts.renderRegistryConfig({
      instance: "mirror",
      hostname: "mirror.casd.local",
      listenPort: 5443,
      debugPort: 5444,
      certFile: "fullchain.crt",
      keyFile: "server.key",
      deleteEnabled: false,
    });
    expect(cfg).toContain(Buffer.from(config).toString("base64"));
  });

  test("summary output from the push step", async () => {
    expect(await valueOf(b.pulumi, b.reg.harborImagesSummary)).toBe(
      "casd: harbor-images: 10 pushed, 0 already in 10.50.6.62:5443",
    );
  });
});

describe("argument validation (synchronous, all problems at once)", () => {
  test("every bad plain argument is reported in one InputPropertiesError", () => {
    expect(() =>
      resolveDistributionArgs("Bad_Name", {
        ...baseArgs(),
        hostname: "10.50.6.62",
        port: 70000,
        debugPort: 5000,
        keyPath: "/etc/other/server.key",
        storageDir: "/opt/casd-registry/data",
        image: "registry:latest",
        imageArchivePath: path.join(TMP, "missing.tar"),
        imageArchiveSha256: "ABC",
        username: "a:b",
        password: "x".repeat(73),
      }),
    ).toThrow(
      [
        "DistributionRegistry Bad_Name: 11 invalid arguments; nothing was created:",
        `  - name: "Bad_Name" must be lowercase letters, digits and inner '-' (at most 42): it names directories, journals and the container`,
        `  - hostname: "10.50.6.62" is not a fully qualified DNS name; use the name in the server certificate, e.g. reg.casd.local`,
        "  - port: 70000 must be a port number from 1 to 65535",
        "  - debugPort: 5000 is the registry's port inside the container (5000); choose another",
        `  - keyPath: "/etc/other/server.key" must be in the certificate's directory (/etc/casd-registry/tls): that directory is mounted read-only into the container`,
        `  - storageDir: "/opt/casd-registry/data" overlaps installDir (/opt/casd-registry); keep registry data apart`,
        `  - image: "registry:latest" must be a repository:tag held by the archive (a pinned tag, not latest), e.g. registry:2.8.3`,
        `  - imageArchivePath: "${path.join(TMP, "missing.tar")}" is not a file on this machine; point it at the archive in the offline bundle`,
        `  - imageArchiveSha256: "ABC" is not a sha256 (64 lowercase hex digits); use the output of sha256sum <archive>`,
        `  - username: "a:b" must be letters, digits, '.', '_' and '-' (no ':')`,
        "  - password: [secret] must be 1 to 72 bytes (bcrypt's limit)",
      ].join("\n"),
    );
  });

  test("a mirror without its sha256, and an empty host key, are refused", () => {
    expect(() =>
      resolveDistributionArgs("mirror", {
        ...baseArgs(),
        hostKey: " ",
        harborImagesArchivePath: HARBOR,
      }),
    ).toThrow(
      [
        "DistributionRegistry mirror: 2 invalid arguments; nothing was created:",
        `  - hostKey: " " is empty; pin the host's key ('<type> <base64>')`,
        `  - harborImagesArchiveSha256: "" is required; use the output of sha256sum <archive>`,
      ].join("\n"),
    );
  });

  test("defaults", () => {
    expect(resolveDistributionArgs("registry", baseArgs())).toEqual({
      user: "root",
      sshPort: 22,
      sudo: false,
      hostname: "reg.casd.local",
      port: 5000,
      debugPort: 5001,
      network: "bridge",
      dataDir: "/data",
      storageDir: "/data/distribution-registry",
      installDir: "/opt/casd-registry",
      certPath: "/etc/casd-registry/tls/fullchain.crt",
      keyPath: "/etc/casd-registry/tls/server.key",
      caPath: "/etc/casd-registry/tls/ca.crt",
      image: "registry:2.8.3",
      imageArchivePath: ARCHIVE,
      imageArchiveSha256: SHA,
      username: "casd",
      deleteEnabled: false,
      containerName: "casd-registry",
      healthTimeoutSeconds: 120,
      identityFile: undefined,
      harborImages: undefined,
    });
  });
});

describe("pure helpers", () => {
  test.each([
    ["root", "10.50.6.62", 22, "ssh://root@10.50.6.62:22"],
    ["deploy", "fd00::62", 2222, "ssh://deploy@[fd00::62]:2222"],
  ])("dockerHostUrl(%s, %s, %d)", (user, address, port, want) => {
    expect(dockerHostUrl(user, address, port)).toBe(want);
  });

  test("dockerSshOpts keeps only type and key of the line, and refuses a non-key", () => {
    expect(dockerSshOpts(`${HOST_KEY} root@reg`)[7]).toBe(
      `KnownHostsCommand=/bin/echo %H ${HOST_KEY}`,
    );
    expect(() => dockerSshOpts("not a key")).toThrow(
      'dockerSshOpts: "not a key" is not an OpenSSH public key line',
    );
  });

  test("htpasswdLine is deterministic per instance, user and password", () => {
    const a = htpasswdLine("registry", "casd", PASSWORD);
    expect(htpasswdLine("registry", "casd", PASSWORD)).toBe(a);
    expect(htpasswdLine("mirror", "casd", PASSWORD)).not.toBe(a);
    expect(htpasswdLine("registry", "casd", `${PASSWORD}x`)).not.toBe(a);
    expect(() => htpasswdLine("r", "u", "é".repeat(37))).toThrow(
      "htpasswdLine: the password is longer than bcrypt's 72 bytes",
    );
  });

  test("parseLoadedImageId reads the load step's line and fails without one", () => {
    expect(parseLoadedImageId(`casd: load: image ${IMAGE_ID}\ncasd: load: unchanged`)).toBe(
      IMAGE_ID,
    );
    expect(() => parseLoadedImageId("casd: load: unchanged")).toThrow(
      "the load step did not report an image id:\ncasd: load: unchanged",
    );
  });
});
