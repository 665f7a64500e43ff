/**
 * The Distribution room on real lab hosts: `deploy: distribution` plus the
 * Helm path's bootstrap mirror, driven by live mocks.
 *
 * - Hosts: `reg` (Docker engine; names reg.casd.local and mirror.casd.local)
 *   and `cli` (Docker engine, skopeo, curl: a client node).
 * - The "offline bundle" is built by the test: a STAND-IN Distribution image
 *   (Debian's docker-registry 2.8.2 binary with its libc, busybox for the
 *   healthcheck's wget, the upstream image's entrypoint contract), imported
 *   on `reg` and saved as an archive; and a STAND-IN Harbor image archive
 *   (two busybox images tagged goharbor/harbor-core and
 *   goharbor/registry-photon v2.15.1, saved and gzipped like
 *   harbor.v<version>.tar.gz). Both are removed from the engine before the
 *   program runs, so the program's load steps really load them.
 * - The program: the stack config (deploy distribution, mirror enabled) parsed
 *   by infra/config.ts, the PKI room, RegistryHost (registryHostArgs), two
 *   DistributionRegistry ("registry" and "mirror", wired by
 *   distributionRegistryArgs / mirrorRegistryArgs) and ClientTrust for `cli`
 *   (trust room). `command:*` and `tls:*` run through the harness's live
 *   mocks; the docker provider and Container through
 *   ./distribution-docker-mocks (Engine API over SSH with the provider's own
 *   pinned-key options). The lab's dockerd has no default bridge, so the
 *   registries join a user-defined bridge network ("casdlab") and publish
 *   their ports, as `network: bridge` does on a normal host.
 * - Clients on `cli`, trusting the CA only through what the trust room
 *   installed: skopeo pushes an OCI image, docker pushes a Docker v2 image and
 *   pulls the OCI one, curl pushes an OCI artifact (custom config media type
 *   and artifactType); the registry's answers are classified by
 *   infra/distribution/media-types.ts.
 *
 * Run: npx jest test/lab/distribution.test.ts --selectProjects lab --runInBand
 * Needs root on Linux, the packages of shared/LAB.md (docker-registry,
 * busybox-static, umoci, skopeo). Outside CI a missing prerequisite skips
 * this file with a message; with CI=true it fails.
 */
import type * as pulumiType from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  createLab,
  ensureRootfs,
  Lab,
  labPrerequisites,
  mustSucceed,
  runSync,
  shq,
  statefulTls,
  type LiveMocks,
} from "./harness";
import type { DockerLiveMocks } from "./distribution-docker-mocks";
import { devStack } from "../support/stack";
import {
  ACCEPT_ALL_MANIFESTS,
  classifyManifestText,
  MEDIA_TYPES,
} from "../../infra/distribution/media-types";
import { dockerSshOpts } from "../../infra/distribution";
import { renderLoadScript } from "../../infra/distribution/scripts";

jest.setTimeout(900_000);

const PREFIX = "casddist";
const SUBNET = "10.236.0.0/24";
const HOSTNAME = "reg.casd.local";
const MIRROR = "mirror.casd.local";
const CERT_DIR = "/etc/casd-registry/tls";
const PASSWORD = "Lab-Distr1bution-Passw0rd";
const IMAGE = "casd-standin/registry:2.8.2";
const HARBOR_TAGS = ["goharbor/harbor-core:v2.15.1", "goharbor/registry-photon:v2.15.1"];
const REGISTRY_STEPS = ["archive", "load", "config", "auth", "health"];

function prerequisites(): string[] {
  const missing = labPrerequisites();
  for (const f of [
    "/usr/bin/docker-registry",
    "/bin/busybox",
    "/usr/bin/umoci",
    "/usr/bin/skopeo",
  ]) {
    if (!fs.existsSync(f))
      missing.push(`${f} not found (packages docker-registry, busybox-static, umoci, skopeo)`);
  }
  return missing;
}
const missing = prerequisites();
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled)
  console.warn(`test/lab/distribution.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

const sha256File = (f: string): string =>
  createHash("sha256").update(fs.readFileSync(f)).digest("hex");

/** TLS "state" across the runs of this file: the same inputs give the same certificates, as state would. */
const labTls = statefulTls();

function value<T>(o: pulumiType.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

interface Run {
  live: LiveMocks;
  docker: DockerLiveMocks;
  failures: string[];
  ms: number;
  summary: string;
  caPem: string;
}

describeLab("Distribution registry and bootstrap mirror on lab hosts", () => {
  let lab: Lab;
  let bundle: string;
  let first: Run;
  const timings: Record<string, number> = {};

  const reg = () => lab.host("reg");
  const cli = () => lab.host("cli");

  /** Runs bash on a host (nsenter, no SSH), failing the test on a non-zero exit. */
  async function sh(host: string, cmd: string, stdin?: string): Promise<string> {
    const r = await lab.exec(host, `set -euo pipefail\n${cmd}`, { stdin, timeoutMs: 300_000 });
    if (r.code !== 0)
      throw new Error(
        `on ${host}: exit ${r.code}\n${cmd}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`,
      );
    return r.stdout;
  }

  /** Builds the stand-in bundle: the Distribution image archive and Harbor's image archive. */
  async function buildBundle(): Promise<{ image: string; harbor: string }> {
    bundle = path.join(lab.workDir, "bundle");
    const root = path.join(lab.workDir, "standin-root");
    for (const d of [
      "bin",
      "lib/x86_64-linux-gnu",
      "lib64",
      "etc/docker/registry",
      "var/lib/registry",
      "tmp",
    ])
      fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.mkdirSync(bundle, { recursive: true });
    fs.copyFileSync("/usr/bin/docker-registry", path.join(root, "bin/registry"));
    fs.copyFileSync(
      "/lib/x86_64-linux-gnu/libc.so.6",
      path.join(root, "lib/x86_64-linux-gnu/libc.so.6"),
    );
    fs.copyFileSync("/lib64/ld-linux-x86-64.so.2", path.join(root, "lib64/ld-linux-x86-64.so.2"));
    fs.copyFileSync("/bin/busybox", path.join(root, "bin/busybox"));
    for (const l of ["sh", "wget"]) fs.symlinkSync("busybox", path.join(root, "bin", l));
    fs.chmodSync(path.join(root, "tmp"), 0o1777);
    mustSucceed(
      runSync(["tar", "-C", root, "-cf", path.join(reg().rootDir, "root/standin-root.tar"), "."]),
      "tar stand-in root",
    );
    await sh(
      "reg",
      `docker import --change 'ENTRYPOINT ["/bin/registry","serve"]' --change 'CMD ["/etc/docker/registry/config.yml"]' /root/standin-root.tar ${IMAGE} >/dev/null
docker save -o /root/standin-image.tar ${IMAGE}
docker image rm ${IMAGE} >/dev/null
mkdir -p /tmp/h1/bin /tmp/h2/bin
cp /bin/busybox /tmp/h1/bin/; cp /bin/busybox /tmp/h2/bin/
echo harbor-core-standin > /tmp/h1/STANDIN; echo registry-photon-standin > /tmp/h2/STANDIN
tar -C /tmp/h1 -c . | docker import - ${HARBOR_TAGS[0]} >/dev/null
tar -C /tmp/h2 -c . | docker import - ${HARBOR_TAGS[1]} >/dev/null
docker save ${HARBOR_TAGS.join(" ")} | gzip -1 > /root/harbor.v2.15.1.tar.gz
docker image rm ${HARBOR_TAGS.join(" ")} >/dev/null
rm -rf /tmp/h1 /tmp/h2 /root/standin-root.tar`,
    );
    const image = path.join(bundle, "registry-standin-2.8.2.tar");
    const harbor = path.join(bundle, "harbor.v2.15.1.tar.gz");
    fs.copyFileSync(path.join(reg().rootDir, "root/standin-image.tar"), image);
    fs.copyFileSync(path.join(reg().rootDir, "root/harbor.v2.15.1.tar.gz"), harbor);
    await sh("reg", "rm -f /root/standin-image.tar /root/harbor.v2.15.1.tar.gz");
    return { image, harbor };
  }

  let archives: { image: string; harbor: string };

  /** One `pulumi up` of the lab program (fresh modules, fresh mocks). */
  async function up(): Promise<Run> {
    const stack = devStack();
    const r = reg();
    const c = cli();
    const config: Record<string, unknown> = {
      ...stack.config,
      deploy: "distribution",
      hostname: HOSTNAME,
      registryHost: {
        address: r.address,
        port: r.port,
        user: r.user,
        hostKey: r.hostKey,
        dataDir: "/data",
        certDir: CERT_DIR,
        installDir: "/opt/casd-registry",
        minFreeGiB: 1,
        etcHosts: true,
      },
      pki: {
        caSource: "generate",
        ca: {
          keyAlgorithm: "ECDSA",
          ecdsaCurve: "P384",
          commonName: "CASD Lab CA",
          organization: "CASD",
          organizationalUnit: "Lab",
          validityHours: 8760,
          protect: false,
        },
        server: {
          keyAlgorithm: "ECDSA",
          ecdsaCurve: "P256",
          validityHours: 48,
          earlyRenewalHours: 12,
          extraDnsNames: [MIRROR],
        },
      },
      distribution: {
        imageArchivePath: archives.image,
        imageArchiveSha256: sha256File(archives.image),
        image: IMAGE,
        port: 5000,
        network: "casdlab",
        identityFile: lab.clientKey.path,
        mirror: {
          enabled: true,
          hostname: MIRROR,
          port: 5443,
          harborImagesArchivePath: archives.harbor,
          harborImagesArchiveSha256: sha256File(archives.harbor),
        },
      },
      clients: [
        {
          name: "cli",
          address: c.address,
          port: c.port,
          user: c.user,
          hostKey: c.hostKey,
          runtimes: ["docker", "podman", "os"],
        },
      ],
    };
    const secrets = { sshPrivateKey: lab.clientKey.privateKey, distributionPassword: PASSWORD };
    let result: Run | undefined;
    await jest.isolateModulesAsync(async () => {
      const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
      const harness = await import("./harness");
      const { DockerLiveMocks } = await import("./distribution-docker-mocks");
      const all: Record<string, string> = {};
      for (const [k, v] of Object.entries(config))
        all[`casd-registry:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
      for (const [k, v] of Object.entries(secrets)) all[`casd-registry:${k}`] = v;
      pulumi.runtime.setAllConfig(
        all,
        Object.keys(secrets).map((k) => `casd-registry:${k}`),
      );
      const live = harness.createLiveMocks({ netns: lab.controlNs, tls: labTls });
      const docker = new DockerLiveMocks(live, { netns: lab.controlNs });
      await pulumi.runtime.setMocks(docker, "casd-registry", "lab", false);
      const started = Date.now();
      const { value: out, failures } = await harness.captureRegistrationFailures(async () => {
        const { loadStackConfig } = await import("../../infra/config");
        const { RegistryPki, registryPkiArgs } = await import("../../infra/pki");
        const { RegistryHost, registryHostArgs } = await import("../../infra/host");
        const { DistributionRegistry, distributionRegistryArgs, mirrorRegistryArgs } =
          await import("../../infra/distribution");
        const { ClientTrust } = await import("../../infra/trust");
        const cfg = loadStackConfig();
        const pki = new RegistryPki("registry", registryPkiArgs(cfg));
        const host = new RegistryHost("registry-host", registryHostArgs(cfg, pki));
        const wiring = {
          hostReady: host.ready,
          caFingerprintSha256: pki.caFingerprintSha256,
          fullChainPem: pki.fullChainPem,
        };
        const registry = new DistributionRegistry(
          "registry",
          distributionRegistryArgs(cfg, wiring),
        );
        const mirror = new DistributionRegistry("mirror", mirrorRegistryArgs(cfg, wiring));
        // Two ClientTrust on one node run one after the other (as infra/index.ts orders them):
        // both may edit containerd's config.
        const trusts = cfg.clients.flatMap((client) => {
          const forRegistry = new ClientTrust(`trust-${client.name}-registry`, {
            client,
            privateKey: cfg.sshPrivateKey,
            hostname: cfg.hostname,
            port: cfg.distribution.port,
            caCertPem: pki.caCertPem,
            caFingerprintSha256: pki.caFingerprintSha256,
            registryReady: registry.ready,
          });
          const forMirror = new ClientTrust(
            `trust-${client.name}-mirror`,
            {
              client: { ...client, runtimes: ["docker", "podman"] },
              privateKey: cfg.sshPrivateKey,
              hostname: cfg.distribution.mirror.hostname,
              port: cfg.distribution.mirror.port,
              caCertPem: pki.caCertPem,
              caFingerprintSha256: pki.caFingerprintSha256,
              registryReady: mirror.ready,
            },
            { dependsOn: [forRegistry] },
          );
          return [forRegistry, forMirror];
        });
        await live.settled(500);
        try {
          const all = Promise.all([
            value(registry.ready),
            value(mirror.ready),
            ...trusts.map((t) => value(t.verifyStdout)),
          ]);
          const timer = new Promise<never>((_, reject) => {
            const t = setTimeout(
              () =>
                reject(
                  new Error(
                    `program did not finish in 300 s; done: ${live.operations.map((o) => o.resource).join(", ")}; containers: ${docker.containerOps.map((o) => o.name).join(", ")}`,
                  ),
                ),
              300_000,
            );
            t.unref();
          });
          await Promise.race([all, timer]);
          return {
            summary: await value(mirror.harborImagesSummary),
            caPem: await value(pki.caCertPem),
          };
        } catch (e) {
          console.log(`lab program: ${(e as Error).message.slice(0, 2000)}`);
          return { summary: "", caPem: "" };
        }
      });
      result = { live, docker, failures, ms: Date.now() - started, ...out };
    });
    return result!;
  }

  /** The result line of each create of a room's steps: `{ "registry-load": "casd: load: changed", ... }`. */
  function results(r: Run, prefix: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const op of r.live.operations) {
      const step = op.resource.slice(prefix.length + 1);
      if (
        op.resource.startsWith(`${prefix}-`) &&
        [...REGISTRY_STEPS, "harbor-archive", "harbor-images"].includes(step) &&
        (op.op === "create" || op.op === "copy")
      ) {
        out[op.resource] = op.op === "copy" ? "copied" : op.stdout.trim().split("\n").slice(-1)[0];
      }
    }
    return out;
  }

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    let t = Date.now();
    const rootfs = await ensureRootfs();
    lab = await createLab({
      prefix: PREFIX,
      rootfs: rootfs.dir,
      subnet: SUBNET,
      hosts: [
        { name: "reg", docker: true, aliases: [HOSTNAME, MIRROR] },
        { name: "cli", docker: true },
      ],
    });
    await Promise.all([lab.startDocker("reg"), lab.startDocker("cli")]);
    timings.labUpMs = Date.now() - t;
    // The lab's dockerd runs with --bridge=none: a user-defined bridge network gives published ports (docker-proxy).
    await sh(
      "reg",
      "docker network create --driver bridge -o com.docker.network.bridge.name=casdlab0 casdlab >/dev/null",
    );
    t = Date.now();
    archives = await buildBundle();
    timings.bundleMs = Date.now() - t;
  });

  afterAll(async () => {
    await lab?.destroy();
    console.log(`distribution lab timings: ${JSON.stringify(timings)}`);
  });

  test("up: PKI, host, registry, mirror and client trust; every step of both registries ran", async () => {
    first = await up();
    timings.firstUpMs = first.ms;
    expect(first.failures).toEqual([]);
    const { "registry-load": registryLoad, ...registryRest } = results(first, "registry");
    expect(registryRest).toEqual({
      "registry-archive": "copied",
      "registry-config": "casd: config: changed",
      "registry-auth": "casd: auth: changed",
      "registry-health": "casd: health: unchanged",
    });
    const { "mirror-load": _mirrorLoad, ...mirrorRest } = results(first, "mirror");
    expect(mirrorRest).toEqual({
      "mirror-archive": "copied",
      "mirror-harbor-archive": "copied",
      "mirror-config": "casd: config: changed",
      "mirror-auth": "casd: auth: changed",
      "mirror-health": "casd: health: unchanged",
      "mirror-harbor-images": "casd: harbor-images: changed",
    });
    // Both instances load the same image concurrently: at least one of them loads it.
    expect([registryLoad, _mirrorLoad].sort()).toEqual([
      "casd: load: changed",
      _mirrorLoad === registryLoad ? "casd: load: changed" : "casd: load: unchanged",
    ]);
    expect(registryLoad === "casd: load: changed" || _mirrorLoad === "casd: load: changed").toBe(
      true,
    );
    expect(first.summary).toBe(`casd: harbor-images: 2 pushed, 0 already in ${reg().address}:5443`);
    expect(first.docker.containerOps.map((o) => `${o.op} ${o.name} ${o.target}`).sort()).toEqual([
      `create casd-mirror ${reg().address}:22`,
      `create casd-registry ${reg().address}:22`,
    ]);
    for (const s of REGISTRY_STEPS)
      expect(first.live.operations.some((o) => o.resource === `registry-${s}` && o.ok)).toBe(true);
  });

  test("the container runs the loaded image with restart always, healthy, files mounted read-only, data on the host", async () => {
    const out = await sh(
      "reg",
      `docker inspect --format '{{.Config.Image}}|{{.HostConfig.RestartPolicy.Name}}|{{.State.Health.Status}}|{{.HostConfig.NetworkMode}}|{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}' casd-registry
docker image inspect --format '{{.Id}}' ${IMAGE}
stat -c '%a %U %n' /opt/casd-registry/distribution-registry/auth/htpasswd /opt/casd-registry/distribution-registry/etc/config.yml /data/distribution-registry`,
    );
    const [inspect, id, ...stats] = out.trim().split("\n");
    const [image, restart, health, network, mounts] = inspect.split("|");
    expect([image, restart, health, network]).toEqual([id, "always", "healthy", "casdlab"]);
    expect(mounts.trim().split(" ").sort()).toEqual(
      [
        "/data/distribution-registry:/var/lib/registry:true",
        `${CERT_DIR}:/certs:false`,
        "/opt/casd-registry/distribution-registry/auth:/auth:false",
        "/opt/casd-registry/distribution-registry/etc:/etc/docker/registry:false",
      ].sort(),
    );
    expect(stats).toEqual([
      "400 root /opt/casd-registry/distribution-registry/auth/htpasswd",
      "444 root /opt/casd-registry/distribution-registry/etc/config.yml",
      "755 root /data/distribution-registry",
    ]);
  });

  test("the docker provider's ssh options pin the host key: the right key reaches the engine, another is refused", async () => {
    const r = reg();
    const ssh = (hostKey: string) =>
      lab.run([
        "ssh",
        ...dockerSshOpts(hostKey, lab.clientKey.path),
        "-l",
        "root",
        "-p",
        "22",
        "--",
        r.address,
        "docker version --format '{{.Server.APIVersion}}'",
      ]);
    const ok = await ssh(r.hostKey);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^1\.\d+\n$/);
    const bad = await ssh(cli().hostKey);
    expect(bad.code).toBe(255);
    expect(bad.stderr).toContain("Host key verification failed");
  });

  test("clients trusting only the installed CA push and pull an OCI image, a Docker v2 image and an OCI artifact; each is served with its media type", async () => {
    const t = Date.now();
    // OCI image layout built here with umoci, pushed from cli by skopeo (trust: /etc/containers/certs.d from the trust room).
    const layout = path.join(lab.workDir, "oci");
    const bundleDir = path.join(lab.workDir, "oci-bundle");
    for (const argv of [
      ["umoci", "init", "--layout", layout],
      ["umoci", "new", "--image", `${layout}:v1`],
      ["umoci", "unpack", "--image", `${layout}:v1`, bundleDir],
    ])
      mustSucceed(runSync(argv), argv.join(" "));
    fs.mkdirSync(path.join(bundleDir, "rootfs/bin"), { recursive: true });
    fs.copyFileSync("/bin/busybox", path.join(bundleDir, "rootfs/bin/busybox"));
    mustSucceed(runSync(["umoci", "repack", "--image", `${layout}:v1`, bundleDir]), "umoci repack");
    mustSucceed(runSync(["cp", "-a", layout, path.join(cli().rootDir, "root/oci")]), "copy layout");
    await sh(
      "cli",
      `skopeo login --username casd --password-stdin ${HOSTNAME}:5000 >/dev/null
skopeo copy --quiet oci:/root/oci:v1 docker://${HOSTNAME}:5000/lab/oci-image:v1`,
      PASSWORD,
    );
    // Docker v2 image: docker (20.10) on cli, trust from /etc/docker/certs.d; it also pulls the OCI image.
    await sh(
      "cli",
      `docker login --username casd --password-stdin ${HOSTNAME}:5000 >/dev/null
mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/
tar -C /tmp/bb -c . | docker import - ${HOSTNAME}:5000/lab/docker-image:v1 >/dev/null
docker push ${HOSTNAME}:5000/lab/docker-image:v1 >/dev/null
docker image rm ${HOSTNAME}:5000/lab/docker-image:v1 >/dev/null
docker pull -q ${HOSTNAME}:5000/lab/docker-image:v1 >/dev/null
docker pull -q ${HOSTNAME}:5000/lab/oci-image:v1 >/dev/null
docker run --rm --network none ${HOSTNAME}:5000/lab/oci-image:v1 /bin/busybox echo oci-image-runs`,
      PASSWORD,
    );
    // OCI artifact by plain HTTP calls (curl trusts the OS store the trust room filled).
    const artifact = await sh(
      "cli",
      `umask 077; IFS= read -r pw; printf 'machine ${HOSTNAME} login casd password %s\\n' "$pw" > /root/.netrc
base=https://${HOSTNAME}:5000/v2/lab/artifact
put_blob() { # FILE -> digest
  local d loc; d=sha256:$(sha256sum "$1" | cut -d' ' -f1)
  loc=$(curl -sS -f --netrc-file /root/.netrc -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in *\\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
  curl -sS -f --netrc-file /root/.netrc -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" "$loc" >/dev/null
  printf '%s' "$d"
}
printf '{"casd":"lab"}' > /tmp/config.json; printf 'hello artifact\\n' > /tmp/layer.txt
cd=$(put_blob /tmp/config.json); ld=$(put_blob /tmp/layer.txt)
printf '{"schemaVersion":2,"mediaType":"${MEDIA_TYPES.ociManifest}","artifactType":"application/vnd.casd.lab.artifact.v1","config":{"mediaType":"application/vnd.casd.lab.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.casd.lab.file.v1","digest":"%s","size":%d}]}' "$cd" "$(stat -c %s /tmp/config.json)" "$ld" "$(stat -c %s /tmp/layer.txt)" > /tmp/manifest.json
curl -sS -f --netrc-file /root/.netrc -X PUT -H 'Content-Type: ${MEDIA_TYPES.ociManifest}' --data-binary @/tmp/manifest.json "$base/manifests/v1" -D - -o /dev/null | tr -d '\\r' | sed -n 's/^docker-content-digest: //Ip'`,
      `${PASSWORD}\n`,
    );
    expect(artifact.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    // What the registry serves back, to a client that accepts every manifest type.
    const fetch = async (
      repo: string,
      ref: string,
      accept = ACCEPT_ALL_MANIFESTS,
    ): Promise<{ status: string; type: string; body: string }> => {
      const out = await sh(
        "cli",
        `curl -sS --netrc-file /root/.netrc -H ${JSON.stringify(`Accept: ${accept}`)} -D /tmp/h -o /tmp/b -w '%{http_code}' https://${HOSTNAME}:5000/v2/${repo}/manifests/${ref}; echo; tr -d '\\r' < /tmp/h | sed -n 's/^Content-Type: //Ip'; cat /tmp/b`,
      );
      const [status, type, ...body] = out.split("\n");
      return { status, type, body: body.join("\n") };
    };
    const oci = await fetch("lab/oci-image", "v1");
    const dock = await fetch("lab/docker-image", "v1");
    const art = await fetch("lab/artifact", "v1");
    expect([oci.status, oci.type, classifyManifestText(oci.body).kind]).toEqual([
      "200",
      MEDIA_TYPES.ociManifest,
      "oci-image",
    ]);
    expect([dock.status, dock.type, classifyManifestText(dock.body).kind]).toEqual([
      "200",
      MEDIA_TYPES.dockerManifest,
      "docker-v2-image",
    ]);
    expect([art.status, art.type]).toEqual(["200", MEDIA_TYPES.ociManifest]);
    expect(classifyManifestText(art.body)).toEqual({
      kind: "oci-artifact",
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: "application/vnd.casd.lab.artifact.v1",
      referrer: false,
    });
    // Distribution 2.8: an OCI manifest asked for with only Docker types is not found; there is no referrers API.
    expect((await fetch("lab/artifact", "v1", MEDIA_TYPES.dockerManifest)).status).toBe("404");
    const referrers = await sh(
      "cli",
      `curl -sS --netrc-file /root/.netrc -o /dev/null -w '%{http_code}' https://${HOSTNAME}:5000/v2/lab/artifact/referrers/${artifact.trim()}`,
    );
    expect(referrers).toBe("404");
    // Stored on the host's data directory.
    expect(
      (await sh("reg", "ls /data/distribution-registry/docker/registry/v2/repositories/lab"))
        .split("\n")
        .filter(Boolean)
        .sort(),
    ).toEqual(["artifact", "docker-image", "oci-image"]);
    timings.clientsMs = Date.now() - t;
  });

  test("the mirror holds Harbor's images under goharbor/, and a node pulls them", async () => {
    const out = await sh(
      "cli",
      `docker login --username casd --password-stdin ${MIRROR}:5443 >/dev/null
for t in ${HARBOR_TAGS.join(" ")}; do docker pull -q ${MIRROR}:5443/$t >/dev/null; done
docker run --rm --network none ${MIRROR}:5443/${HARBOR_TAGS[0]} /bin/busybox cat /STANDIN
docker run --rm --network none ${MIRROR}:5443/${HARBOR_TAGS[1]} /bin/busybox cat /STANDIN`,
      PASSWORD,
    );
    expect(out).toBe("harbor-core-standin\nregistry-photon-standin\n");
  });

  test("a bad archive checksum stops the load step before anything changes, naming the fix", async () => {
    const archive = (await sh("reg", "ls /opt/casd-registry/images/registry-*")).trim();
    const script = renderLoadScript({
      journal: "probe-load",
      archivePath: archive,
      sha256: "0".repeat(64),
      image: IMAGE,
    });
    const r = await lab.ssh("reg", `bash -c ${shq(script)}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `casd: error: ${archive} has sha256 ${sha256File(archives.image)}, expected ${"0".repeat(64)}: the bundle is corrupt or not the one configured`,
    );
  });

  test("a second up changes nothing: same containers, nothing loaded or pushed again", async () => {
    const again = await up();
    timings.secondUpMs = again.ms;
    expect(again.failures).toEqual([]);
    expect(results(again, "registry")).toEqual({
      "registry-archive": "copied",
      "registry-load": "casd: load: unchanged",
      "registry-config": "casd: config: unchanged",
      "registry-auth": "casd: auth: unchanged",
      "registry-health": "casd: health: unchanged",
    });
    expect(results(again, "mirror")["mirror-harbor-images"]).toBe("casd: harbor-images: unchanged");
    expect(again.summary).toBe(`casd: harbor-images: 0 pushed, 2 already in ${reg().address}:5443`);
    expect(again.docker.containerOps.map((o) => `${o.op} ${o.name}`).sort()).toEqual([
      "same casd-mirror",
      "same casd-registry",
    ]);
    first = again;
  });

  test("destroy removes containers, files, loaded images and archives, and keeps the registry data", async () => {
    const t = Date.now();
    await first.docker.deleteContainers();
    const deletes = await first.live.deleteAll();
    timings.destroyMs = Date.now() - t;
    expect(deletes.every((d) => d.ok)).toBe(true);
    const out = await sh(
      "reg",
      `docker ps -a --format '{{.Names}}' | grep -c casd- || true
docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -c -e standin -e goharbor || true
{ ls -A /opt/casd-registry 2>/dev/null || true; } | wc -l
ls /data/distribution-registry/docker/registry/v2/repositories /data/distribution-mirror/docker/registry/v2/repositories 2>&1 | tr '\\n' ' ' || true`,
    );
    expect(out).toBe(
      "0\n0\n0\n/data/distribution-mirror/docker/registry/v2/repositories: goharbor  /data/distribution-registry/docker/registry/v2/repositories: lab ",
    );
  });
});
