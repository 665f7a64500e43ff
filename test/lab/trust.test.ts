/**
 * Client trust on real hosts. Three client hosts (c1, c2, c3) and a lab
 * registry (Debian's Distribution, `docker-registry serve`, run by this test
 * in the `reg` host's network namespace) serving a server certificate made
 * by the project's own PKI (RegistryPki under live mocks: real X.509).
 * ClientTrust runs through live mocks: each node's install and verify are
 * real SSH commands with the program's own scripts, stdin and pinned keys.
 *
 * Who reads what (every client runs INSIDE its host, so it reads that
 * host's /etc, i.e. the files the install step wrote):
 * - curl without --cacert reads the OS store (/etc/ssl/certs, rebuilt by
 *   update-ca-certificates from /usr/local/share/ca-certificates);
 * - skopeo and podman read /etc/containers/certs.d/<host:port>/ca.crt (and
 *   /etc/docker/certs.d); c2 has neither the OS store nor Docker trust, so
 *   its pulls prove the containers certs.d file;
 * - `ctr --hosts-dir /etc/containerd/certs.d` reads hosts.toml and the CA it
 *   names; on c2 nothing else trusts the CA;
 * - c3 has no lab alias for reg.casd.local: it resolves the name only
 *   through the /etc/hosts pin the install step writes.
 *
 * Run: npx jest --selectProjects lab test/lab/trust.test.ts --runInBand
 */
import * as pulumi from "@pulumi/pulumi";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import type { ClientConfig, Runtime } from "../../infra/config";
import { RegistryPki } from "../../infra/pki";
import {
  ClientTrust,
  registryAuthority,
  trustFiles,
  trustManifestPath,
  type TrustSpec,
} from "../../infra/trust";
import { hostProcess } from "./harness/proc";
import {
  captureRegistrationFailures,
  createLab,
  createLiveMocks,
  ensureRootfs,
  Lab,
  labPrerequisites,
  LiveMocks,
  runSync,
} from "./harness";

jest.setTimeout(600_000);

const PREFIX = "casdtr";
const SUBNET = "10.233.0.0/24";
const HOST = "reg.casd.local";
const PORT = 5443;
const AUTH = registryAuthority(HOST, PORT);
const RUNTIMES: Record<string, Runtime[]> = {
  c1: ["docker", "containerd", "podman", "os"],
  c2: ["containerd", "podman", "k3s"],
  c3: ["os", "docker"],
};
const TOOLS = ["docker-registry", "umoci", "skopeo"];
const missing = [
  ...labPrerequisites(),
  ...TOOLS.filter((t) => runSync(["sh", "-c", `command -v ${t}`]).code !== 0).map(
    (t) => `command ${t} not found`,
  ),
];
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled) console.warn(`test/lab/trust.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

interface Pems {
  ca: string;
  fingerprint: string;
  chain: string;
  key: string;
}

describeLab("ClientTrust on three lab hosts", () => {
  let lab: Lab;
  let work: string;
  let registry: ChildProcess | undefined;
  let pki1: Pems;
  let pki2: Pems;
  let firstRun: LiveMocks;
  let lastRun: LiveMocks;
  const before: Record<string, string> = {};
  const timings: Record<string, number> = {};

  function client(name: string): ClientConfig {
    const h = lab.host(name);
    return {
      name,
      address: h.address,
      port: h.port,
      user: h.user,
      hostKey: h.hostKey,
      runtimes: RUNTIMES[name],
      sudo: false,
      restartContainerd: false,
      push: name === "c2",
      etcHostsAddress: name === "c3" ? lab.host("reg").address : undefined,
    };
  }

  function spec(name: string): TrustSpec {
    const c = client(name);
    return {
      hostname: HOST,
      port: PORT,
      runtimes: c.runtimes,
      push: c.push,
      etcHostsAddress: c.etcHostsAddress,
      restartContainerd: false,
    };
  }

  /** The project's PKI under live mocks: a CA and the registry's server certificate, real X.509. */
  async function makePki(name: string): Promise<Pems> {
    const mocks = createLiveMocks({ netns: lab.controlNs });
    await pulumi.runtime.setMocks(mocks, "casd-registry", `trust-${name}`, false);
    const pki = new RegistryPki(name, {
      hostname: HOST,
      ipAddresses: [lab.host("reg").address],
      caKey: { algorithm: "ECDSA", ecdsaCurve: "P384", rsaBits: 3072 },
      caCommonName: `Lab CA ${name}`,
      caOrganization: "CASD",
      caOrganizationalUnit: "Lab",
      caValidityHours: 240,
      protectCa: false,
      serverKey: { algorithm: "ECDSA", ecdsaCurve: "P256", rsaBits: 3072 },
      serverOrganization: "CASD",
      serverValidityHours: 48,
      serverEarlyRenewalHours: 12,
    });
    const out = {
      ca: await value(pki.caCertPem),
      fingerprint: await value(pki.caFingerprintSha256),
      chain: await value(pki.fullChainPem),
      key: await value(pki.serverKeyPem),
    };
    await mocks.settled();
    return out;
  }

  /** (Re)starts the lab registry with a certificate and key; waits until it answers TLS for the name. */
  async function startRegistry(p: Pems): Promise<void> {
    stopRegistry();
    fs.writeFileSync(path.join(work, "chain.pem"), p.chain);
    fs.writeFileSync(path.join(work, "key.pem"), p.key, { mode: 0o600 });
    fs.writeFileSync(path.join(work, "ca.pem"), p.ca);
    const config = {
      version: 0.1,
      log: { level: "warn" },
      storage: {
        filesystem: { rootdirectory: path.join(work, "data") },
        delete: { enabled: true },
      },
      http: {
        addr: `${lab.host("reg").address}:${PORT}`,
        tls: { certificate: path.join(work, "chain.pem"), key: path.join(work, "key.pem") },
      },
    };
    fs.writeFileSync(path.join(work, "registry.yml"), YAML.stringify(config));
    const log = fs.openSync(path.join(work, "registry.log"), "a");
    registry = spawn(
      "ip",
      [
        "netns",
        "exec",
        lab.host("reg").netns,
        "docker-registry",
        "serve",
        path.join(work, "registry.yml"),
      ],
      { stdio: ["ignore", log, log] },
    );
    for (let i = 0; i < 50; i++) {
      const r = await lab.run([
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        path.join(work, "ca.pem"),
        `https://${AUTH}/v2/`,
      ]);
      if (r.code === 0 && r.stdout === "200") return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(
      `lab registry did not come up: ${fs.readFileSync(path.join(work, "registry.log"), "utf8")}`,
    );
  }

  function stopRegistry(): void {
    if (registry?.pid && registry.exitCode === null) {
      const pid = registry.pid;
      process.kill(pid, "SIGTERM");
      runSync([
        "sh",
        "-c",
        `for i in $(seq 50); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${pid}`,
      ]);
    }
    registry = undefined;
  }

  /** The program: one ClientTrust per client host, as the composition root wires them. */
  async function program(
    stack: string,
    p: Pems,
    previous?: Pems,
  ): Promise<{ mocks: LiveMocks; trusts: Record<string, ClientTrust> }> {
    const mocks = createLiveMocks({ netns: lab.controlNs });
    await pulumi.runtime.setMocks(mocks, "casd-registry", stack, false);
    const trusts: Record<string, ClientTrust> = {};
    for (const name of Object.keys(RUNTIMES)) {
      trusts[name] = new ClientTrust(`trust-${name}`, {
        client: client(name),
        privateKey: pulumi.secret(lab.clientKey.privateKey),
        hostname: HOST,
        port: PORT,
        caCertPem: p.ca,
        caFingerprintSha256: p.fingerprint,
        previousCaCertPem: previous?.ca,
        registryReady: true,
        verify: true,
      });
    }
    for (const t of Object.values(trusts)) await value(t.verifyStdout);
    await mocks.settled();
    return { mocks, trusts };
  }

  const exec = (host: string, cmd: string, stdin?: string) =>
    lab.exec(host, cmd, { stdin, timeoutMs: 180_000 });

  /** Files, links, modes and contents of what the trust may touch on a host. */
  async function snapshot(host: string): Promise<string> {
    const r = await exec(
      host,
      // /etc/cni/net.d/cni.lock is podman's (its first pull creates it), not the trust's.
      "find /etc /usr/local/share /var/lib/casd-registry -xdev -path /etc/cni -prune -o -printf '%y %m %u %p %l\\n' 2>/dev/null | sort; find /etc /usr/local/share -xdev -path /etc/cni -prune -o -type f -exec sha256sum {} + | sort -k2",
    );
    return r.stdout;
  }

  const CTR = "ctr --address /tmp/ctd/sock";
  const PODMAN =
    "podman --root /tmp/pm/root --runroot /tmp/pm/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend file";

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    let t = Date.now();
    const rootfs = await ensureRootfs({ log: (l) => console.log(l) });
    lab = await createLab({
      prefix: PREFIX,
      subnet: SUBNET,
      rootfs: rootfs.dir,
      hosts: [{ name: "reg", aliases: [HOST] }, { name: "c1" }, { name: "c2" }, { name: "c3" }],
    });
    timings.labUpMs = Date.now() - t;
    work = fs.mkdtempSync(path.join(os.tmpdir(), "casd-trust-lab-"));
    // c3 resolves the registry only through the pin ClientTrust writes.
    const c3hosts = path.join(lab.host("c3").rootDir, "etc/hosts");
    fs.writeFileSync(c3hosts, fs.readFileSync(c3hosts, "utf8").replace(` reg ${HOST}\n`, " reg\n"));
    // containerd daemons (state in /tmp) on c1 and c2 for ctr pulls.
    for (const h of ["c1", "c2"]) {
      const r = await exec(
        h,
        'mkdir -p /tmp/ctd && printf \'version = 2\\nroot = "/tmp/ctd/root"\\nstate = "/tmp/ctd/state"\\n[grpc]\\naddress = "/tmp/ctd/sock"\\n\' > /tmp/ctd/config.toml && (setsid containerd --config /tmp/ctd/config.toml > /tmp/ctd/log 2>&1 &) && for i in $(seq 50); do [ -S /tmp/ctd/sock ] && exit 0; sleep 0.1; done; cat /tmp/ctd/log; exit 1',
      );
      expect(r.code).toBe(0);
    }
    t = Date.now();
    pki1 = await makePki("lab1");
    timings.pkiMs = Date.now() - t;
    await startRegistry(pki1);
    for (const h of Object.keys(RUNTIMES)) before[h] = await snapshot(h);
  });

  afterAll(async () => {
    stopRegistry();
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`trust lab timings: ${JSON.stringify(timings)}`);
  });

  async function expectUntrusted(): Promise<void> {
    for (const h of ["c1", "c2"]) {
      const r = await exec(h, `curl -sS -o /dev/null https://${AUTH}/v2/`);
      expect(r.code).toBe(60);
      expect(r.stderr.split("\n")[0]).toBe(
        "curl: (60) SSL certificate problem: self-signed certificate in certificate chain",
      );
    }
    const c3 = await exec(
      "c3",
      `curl -sS -o /dev/null --resolve ${AUTH}:${lab.host("reg").address} https://${AUTH}/v2/`,
    );
    expect(c3.code).toBe(60);
    const skopeo = await exec("c2", `skopeo inspect --raw docker://${AUTH}/lab/any:1`);
    expect(skopeo.code).not.toBe(0);
    expect(skopeo.stderr).toMatch(/x509: certificate signed by unknown authority/);
    const ctr = await exec(
      "c2",
      `${CTR} images pull --hosts-dir /etc/containerd/certs.d ${AUTH}/lab/any:1`,
    );
    expect(ctr.code).not.toBe(0);
    expect(ctr.stderr + ctr.stdout).toMatch(/x509: certificate signed by unknown authority/);
    const podman = await exec("c2", `${PODMAN} pull ${AUTH}/lab/any:1`);
    expect(podman.code).not.toBe(0);
    expect(podman.stderr).toMatch(/x509: certificate signed by unknown authority/);
  }

  test("before install: curl fails with rc 60, skopeo, ctr and podman with x509 errors", async () => {
    await expectUntrusted();
  });

  test("install: one SSH command per node plus one verification, files exactly as rendered, verified from each node", async () => {
    const t = Date.now();
    const { mocks, trusts } = await program("trust-1", pki1);
    timings.installAndVerify3NodesMs = Date.now() - t;
    firstRun = mocks;
    lastRun = mocks;
    expect(mocks.operations.map((o) => `${o.op} ${o.resource} ${o.exitCode}`).sort()).toEqual(
      ["c1", "c2", "c3"]
        .flatMap((h) => [`create trust-${h}-install 0`, `create trust-${h}-verify 0`])
        .sort(),
    );
    for (const h of ["c1", "c2", "c3"]) {
      const out = await value(trusts[h].installStdout);
      expect(out.split("\n").pop()).toBe(`casd: trust ${AUTH}: changed`);
      const verify = (await value(trusts[h].verifyStdout)).split("\n");
      expect(verify.slice(0, -1)).toEqual(
        RUNTIMES[h].map(
          (r) =>
            `casd: verify https://${AUTH}/v2/: ok with ${r === "os" ? "os" : trustFiles(spec(h), { caCertPem: pki1.ca }).find((f) => f.runtime === r)!.path}`,
        ),
      );
      // Each file as trustFiles renders it: content, 0444, root.
      for (const f of trustFiles(spec(h), { caCertPem: pki1.ca, osFamily: "debian" })) {
        const p = path.join(lab.host(h).rootDir, f.path);
        expect([f.path, fs.readFileSync(p, "utf8")]).toEqual([f.path, f.content]);
        const st = fs.statSync(p);
        expect([f.path, (st.mode & 0o777).toString(8), st.uid, st.gid]).toEqual([
          f.path,
          "444",
          0,
          0,
        ]);
      }
    }
    // c2 runs containerd: the step says a restart is needed (restartContainerd is false).
    expect(await value(trusts.c2.installStdout)).toContain(
      "casd: note: containerd restart needed: config_path = /etc/containerd/certs.d was set in /etc/containerd/config.toml",
    );
    const ctdConfig = fs.readFileSync(
      path.join(lab.host("c2").rootDir, "etc/containerd/config.toml"),
      "utf8",
    );
    expect(ctdConfig).toContain('config_path = "/etc/containerd/certs.d"');
    const cfgPath = await exec(
      "c2",
      "containerd --config /etc/containerd/config.toml config dump 2>/dev/null | grep -F config_path",
    );
    expect(cfgPath.stdout.trim()).toBe('config_path = "/etc/containerd/certs.d"');
    // c3: the pin is the only mapping of the name.
    expect(fs.readFileSync(path.join(lab.host("c3").rootDir, "etc/hosts"), "utf8")).toContain(
      `\n${lab.host("reg").address} ${HOST} # casd-registry ${AUTH}\n`,
    );
  });

  test("after install: curl, skopeo push and pull, ctr --hosts-dir and podman pulls; OCI, Docker v2 and an OCI artifact", async () => {
    // c1 and c3 through the OS store; c2 (no OS store trust) with the containers certs.d file alone.
    for (const [h, extra] of [
      ["c1", ""],
      ["c3", ""],
      ["c2", `--capath /nonexistent --cacert /etc/containers/certs.d/${AUTH}/ca.crt `],
    ]) {
      const r = await exec(
        h,
        `curl -sS -o /dev/null -w '%{http_code}' ${extra}https://${AUTH}/v2/`,
      );
      expect([h, r.code, r.stdout, r.stderr]).toEqual([h, 0, "200", ""]);
    }
    const c2os = await exec("c2", `curl -sS -o /dev/null https://${AUTH}/v2/`);
    expect(c2os.code).toBe(60);
    // An OCI image built locally with umoci, copied into c2, pushed by skopeo from c2 (containers certs.d only).
    const layout = path.join(work, "layout");
    const bundle = path.join(work, "bundle");
    for (const argv of [
      ["umoci", "init", "--layout", layout],
      ["umoci", "new", "--image", `${layout}:1`],
      ["umoci", "unpack", "--image", `${layout}:1`, bundle],
      ["sh", "-c", `echo casd-lab > ${bundle}/rootfs/hello.txt`],
      ["umoci", "repack", "--image", `${layout}:1`, bundle],
    ]) {
      const r = runSync(argv);
      expect([argv.join(" "), r.code, r.stderr]).toEqual([argv.join(" "), 0, r.stderr]);
    }
    fs.cpSync(layout, path.join(lab.host("c2").rootDir, "tmp/layout"), { recursive: true });
    const accept =
      "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    const c2ca = `--capath /nonexistent --cacert /etc/containers/certs.d/${AUTH}/ca.crt`;
    const push = await exec(
      "c2",
      `skopeo copy --quiet oci:/tmp/layout:1 docker://${AUTH}/lab/oci:1 && skopeo copy --quiet --format v2s2 oci:/tmp/layout:1 docker://${AUTH}/lab/docker:1 && ` +
        `skopeo copy --quiet docker://${AUTH}/lab/docker:1 oci:/tmp/pulled:1 && ls /tmp/pulled/index.json && ` +
        `for r in oci docker; do curl -sS -o /tmp/m.json -w '%{content_type}\\n' ${c2ca} -H '${accept}' https://${AUTH}/v2/lab/$r/manifests/1; done && skopeo inspect --raw docker://${AUTH}/lab/docker:1`,
    );
    expect([push.code, push.stderr]).toEqual([0, ""]);
    const [pulled, ociType, dockerType, dockerManifest] = push.stdout.trim().split("\n");
    expect(pulled).toBe("/tmp/pulled/index.json");
    expect(ociType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(dockerType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(JSON.parse(dockerManifest).mediaType).toBe(
      "application/vnd.docker.distribution.manifest.v2+json",
    );

    // An OCI artifact with its own config media type, pushed and read with plain HTTP from c1 (OS store trust).
    const config = '{"casd":"lab artifact"}';
    const blob = "hello from the trusted endpoint\n";
    const digest = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.casd.lab.artifact.v1",
      config: {
        mediaType: "application/vnd.casd.lab.config.v1+json",
        digest: digest(config),
        size: Buffer.byteLength(config),
      },
      layers: [
        {
          mediaType: "application/vnd.casd.lab.file.v1",
          digest: digest(blob),
          size: Buffer.byteLength(blob),
        },
      ],
    });
    const artifact = await exec(
      "c1",
      [
        "set -euo pipefail",
        `R=https://${AUTH}; N=lab/artifact`,
        `echo ${Buffer.from(config).toString("base64")} | base64 -d > /tmp/config.json`,
        `echo ${Buffer.from(blob).toString("base64")} | base64 -d > /tmp/blob.txt`,
        "push_blob() {",
        "  local f=$1 d loc sep",
        '  d="sha256:$(sha256sum "$f" | cut -d" " -f1)"',
        "  loc=$(curl -sS -f -D - -o /dev/null -X POST \"$R/v2/$N/blobs/uploads/\" | awk 'tolower($1) == \"location:\" { print $2 }' | tr -d '\\r')",
        '  case "$loc" in http*) ;; *) loc="$R$loc" ;; esac',
        "  sep='?'; case \"$loc\" in *\\?*) sep='&' ;; esac",
        '  curl -sS -f -o /dev/null -X PUT -H "Content-Type: application/octet-stream" --data-binary @"$f" "$loc${sep}digest=$d"',
        "}",
        "push_blob /tmp/config.json; push_blob /tmp/blob.txt",
        'curl -sS -f -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary @- "$R/v2/$N/manifests/v1"',
        'curl -sS -f -D /tmp/headers -H "Accept: application/vnd.oci.image.manifest.v1+json" "$R/v2/$N/manifests/v1"; echo',
        "grep -i '^content-type:' /tmp/headers | tr -d '\\r'",
        `curl -sS -f "$R/v2/$N/blobs/${digest(blob)}"`,
      ].join("\n"),
      manifest,
    );
    expect([artifact.code, artifact.stderr]).toEqual([0, ""]);
    const lines = artifact.stdout.split("\n");
    const got = JSON.parse(lines[0]);
    expect(got.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(got.config.mediaType).toBe("application/vnd.casd.lab.config.v1+json");
    expect(got.artifactType).toBe("application/vnd.casd.lab.artifact.v1");
    expect(lines[1].toLowerCase()).toBe("content-type: application/vnd.oci.image.manifest.v1+json");
    expect(lines.slice(2).join("\n")).toBe(blob);

    // containerd pulls through the hosts.toml the step wrote (c2: no other trust of the CA).
    for (const h of ["c1", "c2"]) {
      const r = await exec(
        h,
        `${CTR} images pull --hosts-dir /etc/containerd/certs.d ${AUTH}/lab/oci:1 >/dev/null && ${CTR} images ls -q`,
      );
      expect([h, r.code, r.stderr, r.stdout]).toEqual([h, 0, "", `${AUTH}/lab/oci:1\n`]);
    }
    // podman pulls the Docker v2 image through /etc/containers/certs.d.
    const podman = await exec(
      "c2",
      `${PODMAN} pull -q ${AUTH}/lab/docker:1 && ${PODMAN} images --format '{{.Repository}}:{{.Tag}}'`,
    );
    expect([podman.code, podman.stdout.trim().split("\n").pop()]).toEqual([
      0,
      `${AUTH}/lab/docker:1`,
    ]);
  });

  test("a second run with the same CA changes nothing", async () => {
    const { trusts, mocks } = await program("trust-again", pki1);
    for (const h of ["c1", "c2", "c3"])
      expect((await value(trusts[h].installStdout)).split("\n").pop()).toBe(
        `casd: trust ${AUTH}: unchanged`,
      );
    lastRun = mocks;
  });

  test("rotation: the overlap trusts both CAs, the end of the overlap removes the old one, an old delete touches nothing", async () => {
    pki2 = await makePki("lab2");
    expect(pki2.fingerprint).not.toBe(pki1.fingerprint);
    await startRegistry(pki2);
    const t = Date.now();
    const overlap = await program("trust-overlap", pki2, pki1);
    timings.rotate3NodesMs = Date.now() - t;
    for (const f of trustFiles(spec("c1"), {
      caCertPem: pki2.ca,
      previousCaCertPem: pki1.ca,
      osFamily: "debian",
    })) {
      expect([f.path, fs.readFileSync(path.join(lab.host("c1").rootDir, f.path), "utf8")]).toEqual([
        f.path,
        f.content,
      ]);
    }
    for (const h of ["c1", "c2", "c3"])
      expect((await value(overlap.trusts[h].installStdout)).split("\n").pop()).toBe(
        `casd: trust ${AUTH}: changed`,
      );

    const done = await program("trust-rotated", pki2);
    lastRun = done.mocks;
    const c1Root = lab.host("c1").rootDir;
    expect(
      fs.existsSync(
        path.join(
          c1Root,
          "usr/local/share/ca-certificates/casd-registry-reg.casd.local-5443-previous.crt",
        ),
      ),
    ).toBe(false);
    for (const h of ["c1", "c2", "c3"]) {
      for (const f of trustFiles(spec(h), { caCertPem: pki2.ca, osFamily: "debian" })) {
        expect([f.path, fs.readFileSync(path.join(lab.host(h).rootDir, f.path), "utf8")]).toEqual([
          f.path,
          f.content,
        ]);
      }
    }
    // The old CA no longer verifies the registry from the OS store's point of view: only the new one is there.
    const bundle = fs.readFileSync(path.join(c1Root, "etc/ssl/certs/ca-certificates.crt"), "utf8");
    expect(bundle.includes(pki2.ca.trim())).toBe(true);
    expect(bundle.includes(pki1.ca.trim())).toBe(false);

    // The first run's delete belongs to an older generation: it removes nothing.
    const stale = await firstRun.runDelete("trust-c1-install");
    expect(stale?.exitCode).toBe(0);
    expect(stale?.stdout).toBe(
      `casd: note: the trust of ${AUTH} on node c1 belongs to another generation now: nothing removed\ncasd: untrust ${AUTH}: unchanged\n`,
    );
    expect(fs.existsSync(path.join(c1Root, trustManifestPath(HOST, PORT)))).toBe(true);
    const curl = await exec("c1", `curl -sS -o /dev/null -w '%{http_code}' https://${AUTH}/v2/`);
    expect([curl.code, curl.stdout]).toEqual([0, "200"]);
  });

  test("delete removes exactly what was added, refreshes the OS store, and the failures are back", async () => {
    for (const h of ["c1", "c2", "c3"]) {
      const op = await lastRun.runDelete(`trust-${h}-install`);
      expect([h, op?.exitCode, op?.stdout.split("\n").filter(Boolean).pop()]).toEqual([
        h,
        0,
        `casd: untrust ${AUTH}: changed`,
      ]);
      expect([h, await snapshot(h)]).toEqual([h, before[h]]);
    }
    await expectUntrusted();
    const c3 = await exec("c3", `curl -sS -o /dev/null https://${AUTH}/v2/`);
    expect(c3.code).toBe(6);
    // A second delete is tolerant: nothing recorded, nothing removed.
    const again = await lastRun.runDelete("trust-c1-install");
    expect(again?.stdout).toBe(
      `casd: note: no trust recorded for ${AUTH} on node c1: nothing to remove\ncasd: untrust ${AUTH}: unchanged\n`,
    );
  });

  test("a node that does not trust the served certificate fails verification, naming the node and the TLS error", async () => {
    // The registry serves the second CA's certificate; c1 is told to trust only the first CA.
    if (!pki2) {
      pki2 = await makePki("lab2");
      await startRegistry(pki2);
    }
    const mocks = createLiveMocks({ netns: lab.controlNs });
    // The component's registerOutputs carries the failed verification too (as `pulumi up` reports it):
    // collect that rejection here instead of letting it end the test process.
    const outputFailures: string[] = [];
    const onRejection = (reason: unknown, promise: Promise<unknown>) => {
      const m = reason instanceof Error ? reason.message : String(reason);
      if (!m.startsWith('error serializing property "outputs"')) return;
      promise.catch(() => undefined);
      outputFailures.push(m);
    };
    hostProcess().on("unhandledRejection", onRejection);
    const { failures } = await captureRegistrationFailures(async () => {
      await pulumi.runtime.setMocks(mocks, "casd-registry", "trust-wrong", false);
      const t = new ClientTrust("trust-c1", {
        client: client("c1"),
        privateKey: pulumi.secret(lab.clientKey.privateKey),
        hostname: HOST,
        port: PORT,
        caCertPem: pki1.ca,
        caFingerprintSha256: pki1.fingerprint,
        registryReady: true,
      });
      await expect(value(t.verifyStdout)).rejects.toThrow(/Process exited with status 1/);
      expect((await value(t.installStdout)).split("\n").pop()).toBe(`casd: trust ${AUTH}: changed`);
      await mocks.settled();
      await new Promise((res) => setTimeout(res, 1000)); // let the SDK report the failed registration
    });
    hostProcess().removeListener("unhandledRejection", onRejection);
    const message = `casd: error: node c1: TLS verification of https://${AUTH}/v2/ with /etc/docker/certs.d/${AUTH}/ca.crt failed (rc 60): curl: (60) SSL certificate problem: self-signed certificate in certificate chain`;
    // The engine sees the failed registration (directly, or through the component's outputs), with the node's message.
    const reported = [...failures, ...outputFailures];
    expect(reported.length).toBeGreaterThan(0);
    for (const f of reported)
      expect(f).toContain(
        `failed to register new resource trust-c1-verify [command:remote:Command]: Process exited with status 1`,
      );
    for (const f of reported) expect(f).toContain(message);
    const verifyOp = mocks.operations.find((o) => o.resource === "trust-c1-verify");
    expect([verifyOp?.exitCode, verifyOp?.stderr]).toEqual([1, `${message}\n`]);
    const cleanup = await mocks.runDelete("trust-c1-install");
    expect(cleanup?.exitCode).toBe(0);
    expect([await snapshot("c1")]).toEqual([before.c1]);
  });
});
