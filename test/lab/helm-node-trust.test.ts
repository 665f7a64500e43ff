/**
 * Lab: the node-trust DaemonSet's script, extracted from the manifests the
 * real HarborHelm component sends to Kubernetes (under mocks, with the real
 * RegistryPki's certificates materialized as X.509), is run the way the
 * kubelet would run its init container: the image is the lab's Debian rootfs
 * (without containerd), read-only, with the ConfigMap, an emptyDir /tmp and
 * the hostPath volumes bound from a node root directory, the capabilities of
 * its securityContext, and the very command of the manifest.
 *
 * Then this machine's containerd, with `ctr images pull --hosts-dir
 * <node root>/etc/containerd/certs.d` (and the node's view of
 * /etc/containerd, where hosts.toml's absolute `ca` path points), pulls from
 * a lab registry (Debian's docker-registry, serving the stack's server
 * certificate): it fails with an x509 error before the script ran, succeeds
 * after, and a second run of the script changes nothing.
 *
 * Everything runs in the network namespace `hlm8-reg` (loopback only) and a
 * work dir under $TMPDIR/casd-lab/hlm8-*, both removed at the end (and by
 * cleanStale after a killed run).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import { ensureRootfs } from "./harness/rootfs";
import { procStartTime, run, sleep } from "./harness/proc";
import { cleanStale, labTmpBase, type LabState, teardownSync, track } from "./harness/teardown";
import type { RecordingMocks, Registered } from "../support/mocks";

jest.setTimeout(600_000);

const PREFIX = "hlm8";
const NS = `${PREFIX}-reg`;
const HOSTNAME = "reg.casd.local";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8vC4gnyCIIXNA9qd1G7mKX8r1ebwNZV+5ZLuhKIKQJ";
const IMAGE_REF = `${HOSTNAME}/lab/hello:1`;

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root");
  for (const bin of [
    "containerd",
    "ctr",
    "docker-registry",
    "umoci",
    "skopeo",
    "unshare",
    "chroot",
    "ip",
    "tar",
    "mount",
  ]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) missing.push(bin);
  }
  return missing;
}

const MISSING = missingPrerequisites();
const CI = process.env.CI === "true";
const suite = MISSING.length > 0 && !CI ? describe.skip : describe;

if (MISSING.length > 0 && CI) {
  it("has its lab prerequisites", () => {
    throw new Error(
      `lab prerequisites missing: ${MISSING.join(", ")} (install them as .ci/run does; run as root)`,
    );
  });
}

interface Rendered {
  script: string;
  caInput: string;
  daemonSet: Registered["inputs"];
  caCertPem: string;
  fullChainPem: string;
  serverKeyPem: string;
}

/** Runs RegistryPki + HarborHelm under mocks and returns what the cluster would receive. */
async function renderThroughComponent(chartFile: string, chartSha: string): Promise<Rendered> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const { RecordingMocks: Mocks } = await import("../support/mocks");
  const mocks: RecordingMocks = new Mocks((args) =>
    args.type === "kubernetes:helm.sh/v3:Release"
      ? { ...args.inputs, status: { status: "deployed" } }
      : undefined,
  );
  await pulumi.runtime.setMocks(mocks, "casd-registry", "lab", false);
  const { parseStackConfig } = await import("../../infra/config");
  const secrets: Record<string, string> = {
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    harborAdminPassword: "Adm1nPassw0rdForLab",
    harborDatabasePassword: "Db1PasswordForLab99",
    harborInternalSeed: "lab-seed-0123456789-abcdefghijklmnopqrstuvwxyz",
  };
  const cfg = parseStackConfig({
    values: {
      hostname: HOSTNAME,
      deploy: "helm",
      registryHost: { address: "10.50.6.62", hostKey: HOST_KEY },
      pki: { ca: { protect: false } },
      helm: {
        chartPath: chartFile,
        chartSha256: chartSha,
        kubeContext: "lab",
        mirrorRegistry: "mirror.casd.local:5000",
      },
    },
    secrets,
    encryptedKeys: new Set(Object.keys(secrets)),
  });
  const { RegistryPki } = await import("../../infra/pki");
  const { HarborHelm } = await import("../../infra/harbor/helm");
  const pki = new RegistryPki("registry", {
    hostname: cfg.hostname,
    extraDnsNames: [],
    ipAddresses: ["127.0.0.1"],
    caKey: cfg.pki.ca,
    caCommonName: cfg.pki.ca.commonName,
    caOrganization: cfg.pki.ca.organization,
    caOrganizationalUnit: cfg.pki.ca.organizationalUnit,
    caValidityHours: cfg.pki.ca.validityHours,
    protectCa: false,
    serverKey: cfg.pki.server,
    serverOrganization: cfg.pki.server.organization,
    serverValidityHours: cfg.pki.server.validityHours,
    serverEarlyRenewalHours: cfg.pki.server.earlyRenewalHours,
  });
  const harbor = new HarborHelm("harbor", {
    hostname: cfg.hostname,
    helm: cfg.helm,
    harbor: cfg.harbor,
    caCertPem: pki.caCertPem,
    fullChainPem: pki.fullChainPem,
    serverKeyPem: pki.serverKeyPem,
    caFingerprintSha256: pki.caFingerprintSha256,
  });
  const get = <T>(o: pulumiType.Output<T>) =>
    new Promise<T>((resolve) => o.apply((v) => resolve(v)));
  const [caCertPem, fullChainPem, serverKeyPem] = await Promise.all([
    get(pki.caCertPem),
    get(pki.fullChainPem),
    get(pki.serverKeyPem),
  ]);
  await get(harbor.releaseStatus);
  for (
    let i = 0;
    i < 500 && !mocks.resources.some((r) => r.type === "kubernetes:apps/v1:DaemonSet");
    i++
  )
    await sleep(10);
  const cm = mocks.byName("harbor-node-trust-script").inputs;
  return {
    script: cm.data["node-trust.sh"],
    caInput: cm.data["ca-input.pem"],
    daemonSet: mocks.byName("harbor-node-trust").inputs,
    caCertPem,
    fullChainPem,
    serverKeyPem,
  };
}

interface Volume {
  name: string;
  configMap?: { name: string; defaultMode: number };
  emptyDir?: object;
  hostPath?: { path: string; type: string };
}

/**
 * A bash driver doing what the kubelet does for the init container: the
 * image (overlay on the rootfs, containerd removed, read-only root), the
 * volumes from the manifest, the capabilities of its securityContext, then
 * exec of the manifest's command in a chroot. Runs in a private mount
 * namespace (`unshare --mount`), so every mount dies with it.
 */
function kubeletDriver(w: string, rootfs: string, ds: Rendered["daemonSet"]): string {
  const pod = ds.spec.template.spec;
  const c = pod.initContainers[0];
  const volumes = new Map<string, Volume>(pod.volumes.map((v: Volume) => [v.name, v]));
  const q = (s: string) => `'${s.replace(/'/g, `'"'"'`)}'`;
  const lines = [
    "set -euo pipefail",
    `W=${q(w)}`,
    `mkdir -p "$W/image" "$W/image-upper" "$W/image-work"`,
    `mount -t overlay overlay -o lowerdir=${q(rootfs)},upperdir="$W/image-upper",workdir="$W/image-work" "$W/image"`,
    `rm -f "$W/image/usr/bin/containerd" "$W/image/usr/bin/ctr"  # the node-trust image has no containerd`,
  ];
  const binds: string[] = [];
  for (const m of c.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`volumeMount ${m.name} has no volume`);
    lines.push(`mkdir -p "$W/image"${q(m.mountPath)}`);
    if (v.configMap) {
      binds.push(
        `mount --bind "$W/configmap" "$W/image"${q(m.mountPath)}`,
        `mount -o remount,bind,ro "$W/image"${q(m.mountPath)}`,
      );
    } else if (v.emptyDir) {
      binds.push(`mount -t tmpfs -o size=16m tmpfs "$W/image"${q(m.mountPath)}`);
    } else if (v.hostPath) {
      if (v.hostPath.type !== "DirectoryOrCreate")
        throw new Error(`hostPath type ${v.hostPath.type} not simulated`);
      binds.push(
        `mkdir -p "$W/node"${q(v.hostPath.path)}`,
        `mount --bind "$W/node"${q(v.hostPath.path)} "$W/image"${q(m.mountPath)}`,
      );
    }
  }
  if (c.securityContext.readOnlyRootFilesystem) lines.push(`mount -o remount,ro "$W/image"`);
  lines.push(...binds, `mount --bind /dev "$W/image/dev"`);
  const caps = [
    "-all",
    ...(c.securityContext.capabilities.add as string[]).map((x) => `+${x.toLowerCase()}`),
  ].join(",");
  const argv = (c.command as string[]).map(q).join(" ");
  lines.push(
    `exec chroot --userspec=${c.securityContext.runAsUser}:${c.securityContext.runAsGroup} "$W/image" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=node1 /usr/bin/setpriv --bounding-set ${caps} --no-new-privs -- ${argv}`,
  );
  return lines.join("\n") + "\n";
}

suite("node-trust DaemonSet on a lab node, proven with containerd", () => {
  const state: LabState = {
    prefix: PREFIX,
    workDir: "",
    namespaces: [],
    links: [],
    pids: [],
    closers: [],
    destroyed: false,
  };
  let w: string;
  let rendered: Rendered;
  let rootfs: string;
  let sock: string;

  const inNs = (argv: string[], stdin?: string) =>
    run(["ip", "netns", "exec", NS, ...argv], { stdin, timeoutMs: 120_000 });
  /** ctr pull from inside the lab namespace, with the node's /etc/containerd in place (hosts.toml's `ca` is absolute). */
  const pull = () =>
    inNs([
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount --bind "$1/node/etc/containerd" /etc/containerd && exec ctr --address "$2" images pull --snapshotter native --hosts-dir "$1/node/etc/containerd/certs.d" "$3"`,
      "pull",
      w,
      sock,
      IMAGE_REF,
    ]);
  const runDaemonSetScript = () =>
    run(["unshare", "--mount", "--propagation", "private", "bash", path.join(w, "kubelet.sh")], {
      timeoutMs: 120_000,
    });

  const spawnTracked = (argv: string[], log: string) => {
    const out = fs.openSync(log, "a");
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", out, out], detached: false });
    fs.closeSync(out);
    if (child.pid === undefined) throw new Error(`cannot start ${argv.join(" ")}`);
    state.pids.push({ pid: child.pid, start: procStartTime(child.pid) });
    return child.pid;
  };

  beforeAll(async () => {
    cleanStale(PREFIX);
    fs.mkdirSync(labTmpBase(), { recursive: true });
    w = fs.mkdtempSync(path.join(labTmpBase(), `${PREFIX}-`));
    state.workDir = w;
    fs.writeFileSync(path.join(w, "owner"), `${process.pid} ${procStartTime(process.pid) ?? ""}\n`);
    track(state);
    rootfs = (await ensureRootfs()).dir;

    // A chart archive shaped like the bundle's, with chart 1.19.1's documented values.
    const chartDir = path.join(w, "chart");
    fs.mkdirSync(path.join(chartDir, "harbor"), { recursive: true });
    fs.writeFileSync(
      path.join(chartDir, "harbor", "Chart.yaml"),
      "apiVersion: v2\nname: harbor\nversion: 1.19.1\nappVersion: 2.15.1\n",
    );
    fs.copyFileSync(
      path.resolve(__dirname, "../../../shared/reference/harbor-helm-1.19.1.values.yaml"),
      path.join(chartDir, "harbor", "values.yaml"),
    );
    const chartFile = path.join(w, "harbor-1.19.1.tgz");
    expect(spawnSync("tar", ["-czf", chartFile, "-C", chartDir, "harbor"]).status).toBe(0);
    rendered = await renderThroughComponent(
      chartFile,
      createHash("sha256").update(fs.readFileSync(chartFile)).digest("hex"),
    );

    // The ConfigMap as the kubelet projects it, and the driver.
    fs.mkdirSync(path.join(w, "configmap"));
    fs.writeFileSync(path.join(w, "configmap", "node-trust.sh"), rendered.script, { mode: 0o444 });
    fs.writeFileSync(path.join(w, "configmap", "ca-input.pem"), rendered.caInput, { mode: 0o444 });
    fs.writeFileSync(path.join(w, "kubelet.sh"), kubeletDriver(w, rootfs, rendered.daemonSet));

    // The lab registry: loopback of its own namespace, reg.casd.local -> 127.0.0.1, port 443.
    state.namespaces.push(NS);
    expect((await run(["ip", "netns", "add", NS])).code).toBe(0);
    expect((await run(["ip", "-n", NS, "link", "set", "lo", "up"])).code).toBe(0);
    fs.mkdirSync(`/etc/netns/${NS}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${NS}/hosts`, `127.0.0.1 localhost\n127.0.0.1 ${HOSTNAME}\n`);
    const reg = path.join(w, "registry");
    fs.mkdirSync(path.join(reg, "storage"), { recursive: true });
    fs.writeFileSync(path.join(reg, "chain.crt"), rendered.fullChainPem);
    fs.writeFileSync(path.join(reg, "server.key"), rendered.serverKeyPem, { mode: 0o600 });
    fs.writeFileSync(
      path.join(reg, "config.yml"),
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${reg}/storage\nhttp:\n  addr: 127.0.0.1:443\n  tls:\n    certificate: ${reg}/chain.crt\n    key: ${reg}/server.key\n`,
    );
    spawnTracked(
      ["ip", "netns", "exec", NS, "docker-registry", "serve", path.join(reg, "config.yml")],
      path.join(reg, "log"),
    );
    fs.mkdirSync(path.join(w, "pushcerts"));
    fs.writeFileSync(path.join(w, "pushcerts", "ca.crt"), rendered.caCertPem);
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up =
        (
          await inNs([
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--cacert",
            path.join(w, "pushcerts", "ca.crt"),
            `https://${HOSTNAME}/v2/`,
          ])
        ).code === 0;
      if (!up) await sleep(100);
    }
    expect(up).toBe(true);

    // A small image pushed with skopeo (trusting the CA explicitly).
    const oci = path.join(w, "oci");
    const sh = async (cmd: string) => {
      const r = await run(["sh", "-c", cmd], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    await sh(
      `umoci init --layout ${oci} && umoci new --image ${oci}:1 && umoci unpack --rootless --image ${oci}:1 ${w}/bundle >/dev/null`,
    );
    fs.writeFileSync(path.join(w, "bundle", "rootfs", "hello"), "hello from the lab\n");
    await sh(`umoci repack --image ${oci}:1 ${w}/bundle`);
    const push = await inNs([
      "skopeo",
      "copy",
      "--dest-cert-dir",
      path.join(w, "pushcerts"),
      `oci:${oci}:1`,
      `docker://${IMAGE_REF}`,
    ]);
    expect([push.code, push.code === 0 ? "" : push.stderr]).toEqual([0, ""]);

    // This machine's containerd, with its own root, state and socket.
    const ctd = path.join(w, "containerd");
    fs.mkdirSync(ctd);
    sock = path.join(ctd, "containerd.sock");
    fs.writeFileSync(
      path.join(ctd, "config.toml"),
      `version = 2\nroot = "${ctd}/root"\nstate = "${ctd}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${sock}"\n`,
    );
    spawnTracked(
      ["ip", "netns", "exec", NS, "containerd", "--config", path.join(ctd, "config.toml")],
      path.join(ctd, "log"),
    );
    for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(50);
    expect(fs.existsSync(sock)).toBe(true);
    // The node root starts without any trust.
    fs.mkdirSync(path.join(w, "node", "etc", "containerd"), { recursive: true });
  });

  afterAll(() => {
    if (state.workDir) teardownSync(state);
  });

  it("extracts the script and its command from the rendered manifests", () => {
    expect(
      rendered.script.startsWith("#!/usr/bin/env bash\n# casd-registry step: node-trust\n"),
    ).toBe(true);
    expect(rendered.daemonSet.spec.template.spec.initContainers[0].command).toEqual([
      "/bin/bash",
      "-c",
      "exec /bin/bash /casd/node-trust.sh < /casd/ca-input.pem",
    ]);
    expect(rendered.caInput).toBe(rendered.caCertPem);
  });

  it("containerd refuses the lab registry before the script ran (x509)", async () => {
    const r = await pull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/x509: certificate signed by unknown authority/);
  });

  it("the DaemonSet's script writes hosts.toml and the CA through the hostPath mounts", async () => {
    const r = await runDaemonSetScript();
    expect([r.code, r.stdout]).toEqual([
      0,
      "casd: note: containerd is not installed: hosts.toml written, /etc/containerd/config.toml left alone\ncasd: node-trust: changed\n",
    ]);
    const { trustFiles } = await import("../../infra/trust/render");
    const { nodeTrustSpec } = await import("../../infra/harbor/helm/node-trust");
    const expected = trustFiles(nodeTrustSpec({ hostname: HOSTNAME, port: 443, osStore: false }), {
      caCertPem: rendered.caCertPem,
    });
    expect(expected.map((f) => f.path)).toEqual([
      `/etc/containerd/certs.d/${HOSTNAME}/ca.crt`,
      `/etc/containerd/certs.d/${HOSTNAME}/hosts.toml`,
    ]);
    for (const f of expected) {
      const onNode = path.join(w, "node", f.path);
      expect([
        f.path,
        fs.readFileSync(onNode, "utf8"),
        (fs.statSync(onNode).mode & 0o777).toString(8),
      ]).toEqual([f.path, f.content, "444"]);
    }
    expect(
      fs.readFileSync(
        path.join(w, "node", "var/lib/casd-registry/trust", `${HOSTNAME}.manifest`),
        "utf8",
      ),
    ).toContain(`file /etc/containerd/certs.d/${HOSTNAME}/hosts.toml\n`);
  });

  it("containerd then pulls from the lab registry through the written files", async () => {
    const r = await pull();
    expect([r.code, r.stderr.split("\n").filter((l) => /error|x509/.test(l))]).toEqual([0, []]);
    const ls = await inNs(["ctr", "--address", sock, "images", "ls", "-q"]);
    expect(ls.stdout.trim().split("\n")).toEqual([IMAGE_REF]);
  });

  it("a second run of the script (a pod restart) changes nothing", async () => {
    const r = await runDaemonSetScript();
    expect([r.code, r.stdout.trim().split("\n").pop()]).toEqual([0, "casd: node-trust: unchanged"]);
  });
});
