/**
 * The chart archive check (sha256, gzip'd tar in ustar/pax/GNU form, name and
 * version) and the node-trust renderers: exact manifests, the script through
 * the real shellcheck.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readTar, sha256File, verifyChartArchive } from "../../infra/harbor/helm/chart";
import {
  caInputOf,
  hostPathMounts,
  initCommand,
  nodeTrustSpec,
  renderNodeTrustManifests,
  renderNodeTrustScript,
  WAIT_COMMAND,
} from "../../infra/harbor/helm/node-trust";
import { sha256Hex } from "../../infra/remote/script";
import { PREVIOUS_CA_SEPARATOR } from "../../infra/trust/render";
import { SHELLCHECK_AVAILABLE, shellcheckFindings } from "../support/shellcheck";

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "helm-chart-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function archive(name: string, files: Record<string, string>, format = "gnu"): string {
  const root = fs.mkdtempSync(path.join(tmp, "src-"));
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), c);
  }
  const file = path.join(tmp, name);
  const r = spawnSync("tar", [
    `--format=${format}`,
    "-czf",
    file,
    "-C",
    root,
    ...Object.keys(files),
  ]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return file;
}

const CHART = "apiVersion: v2\nname: harbor\nversion: 1.19.1\nappVersion: 2.15.1\n";

describe("verifyChartArchive", () => {
  it("returns the chart's metadata and values.yaml when the sum, name and version match", () => {
    const f = archive("ok.tgz", {
      "harbor/Chart.yaml": CHART,
      "harbor/values.yaml": "expose:\n  type: ingress\n",
      "harbor/templates/x.yaml": "a: 1\n",
    });
    expect(verifyChartArchive(f, sha256File(f), "1.19.1")).toEqual({
      path: f,
      name: "harbor",
      version: "1.19.1",
      appVersion: "2.15.1",
      valuesYaml: "expose:\n  type: ingress\n",
    });
  });

  it.each(["gnu", "ustar", "pax"])("reads %s archives, long names included", (format) => {
    const long = `harbor/templates/${"d".repeat(120)}/file.yaml`;
    const f = archive(`fmt-${format}.tgz`, {
      "harbor/Chart.yaml": CHART,
      "harbor/values.yaml": "a: 1\n",
      [long]: "long\n",
    });
    const entries = readTar(spawnSync("gzip", ["-dc", f], { maxBuffer: 1 << 24 }).stdout);
    expect(entries.filter((e) => e.type === "0").map((e) => [e.path, e.data.toString()])).toEqual([
      ["harbor/Chart.yaml", CHART],
      ["harbor/values.yaml", "a: 1\n"],
      [long, "long\n"],
    ]);
  });

  it("names the path, the pinned and the actual sum on a mismatch", () => {
    const f = archive("bad-sum.tgz", {
      "harbor/Chart.yaml": CHART,
      "harbor/values.yaml": "a: 1\n",
    });
    expect(() => verifyChartArchive(f, "1".repeat(64), "1.19.1")).toThrow(
      `helm.chartPath: ${f} has sha256 ${sha256File(f)}, but helm.chartSha256 pins ${"1".repeat(64)}. Fix: use the archive from the verified offline bundle (or, after checking it, pin its sum in helm.chartSha256)`,
    );
  });

  it("refuses another chart, an archive without Chart.yaml, and a file that is not a gzip'd tar", () => {
    const other = archive("other.tgz", {
      "redis/Chart.yaml": CHART.replace("harbor", "redis"),
      "redis/values.yaml": "a: 1\n",
    });
    expect(() => verifyChartArchive(other, sha256File(other), "1.19.1")).toThrow(
      `helm.chartPath: ${other} is chart redis 1.19.1, but helm.chartVersion pins harbor 1.19.1. Fix: use harbor-1.19.1.tgz, or change helm.chartVersion (and its sum) deliberately`,
    );
    const empty = archive("empty.tgz", { "harbor/README.md": "x\n" });
    expect(() => verifyChartArchive(empty, sha256File(empty), "1.19.1")).toThrow(
      `helm.chartPath: ${empty} holds no <chart>/Chart.yaml and <chart>/values.yaml. Fix: use the chart .tgz from the offline bundle`,
    );
    const text = path.join(tmp, "plain.tgz");
    fs.writeFileSync(text, "not an archive");
    expect(() => verifyChartArchive(text, sha256File(text), "1.19.1")).toThrow(
      /^helm\.chartPath: .*plain\.tgz is not a gzip'd tar archive \(.*\)\. Fix: use the chart \.tgz from the offline bundle$/,
    );
  });
});

describe("node-trust renderers", () => {
  const spec = nodeTrustSpec({ hostname: "reg.casd.local", port: 443, osStore: false });
  const script = renderNodeTrustScript(spec, "harbor");

  it("builds the trust spec of the DaemonSet", () => {
    expect(spec).toEqual({
      hostname: "reg.casd.local",
      port: 443,
      runtimes: ["containerd"],
      push: false,
      restartContainerd: false,
    });
    expect(
      nodeTrustSpec({ hostname: "reg.casd.local", port: 30003, osStore: true }).runtimes,
    ).toEqual(["containerd", "os"]);
  });

  it("renders a script that passes shellcheck", () => {
    expect(SHELLCHECK_AVAILABLE).toBe(true);
    expect(shellcheckFindings(script)).toEqual([]);
    expect(
      shellcheckFindings(
        renderNodeTrustScript(
          nodeTrustSpec({ hostname: "reg.casd.local", port: 30003, osStore: true }),
          "harbor",
        ),
      ),
    ).toEqual([]);
  });

  it("installs under /host, as one step with one result line, and differs per namespace only in its generation", () => {
    expect(script).toContain("CASD_ROOT='/host'\n");
    expect(script).toContain(
      `if [ "$CASD_CHANGED" = 1 ]; then echo 'casd: node-trust: changed'; else echo 'casd: node-trust: unchanged'; fi\n`,
    );
    const other = renderNodeTrustScript(spec, "registry");
    const diff = script.split("\n").filter((l, i) => other.split("\n")[i] !== l);
    expect(diff).toEqual([expect.stringMatching(/^CASD_GEN='[0-9a-f]{24}'$/)]);
    expect(() => renderNodeTrustScript({ ...spec, hostname: "bad host" }, "harbor")).toThrow(
      'node trust: hostname "bad host" is not a fully qualified DNS name; use the registry\'s name, e.g. reg.casd.local',
    );
  });

  it("mounts only the containerd hosts dir and the trust record, or the node's root for the OS store", () => {
    expect(hostPathMounts(spec)).toEqual([
      {
        name: "containerd-certs",
        hostPath: "/etc/containerd/certs.d",
        mountPath: "/host/etc/containerd/certs.d",
      },
      {
        name: "trust-state",
        hostPath: "/var/lib/casd-registry/trust",
        mountPath: "/host/var/lib/casd-registry/trust",
      },
    ]);
    expect(hostPathMounts({ ...spec, runtimes: ["containerd", "os"] })).toEqual([
      { name: "node-root", hostPath: "/", mountPath: "/host" },
    ]);
  });

  it("renders the exact ConfigMap and DaemonSet", () => {
    const m = renderNodeTrustManifests(
      {
        spec,
        namespace: "harbor",
        name: "harbor-casd-node-trust",
        image: "mirror:5000/casd/node-trust:1.0.0",
        imagePullSecrets: [],
        caFingerprintSha256: "ab12",
        caInput: "CA\n",
        caInputSha256: "cd34",
      },
      script,
    );
    const labels = {
      "app.kubernetes.io/name": "casd-node-trust",
      "app.kubernetes.io/part-of": "casd-registry",
    };
    const sc = {
      runAsUser: 0,
      runAsGroup: 0,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_OVERRIDE", "FOWNER"] },
      seccompProfile: { type: "RuntimeDefault" },
    };
    const resources = { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } };
    expect(m.configMap).toEqual({
      metadata: { name: "harbor-casd-node-trust", namespace: "harbor", labels },
      data: { "node-trust.sh": script, "ca-input.pem": "CA\n" },
    });
    expect(m.daemonSet).toEqual({
      metadata: { name: "harbor-casd-node-trust", namespace: "harbor", labels },
      spec: {
        selector: { matchLabels: labels },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%" } },
        template: {
          metadata: {
            labels,
            annotations: {
              "casd.io/ca-sha256": "ab12",
              "casd.io/ca-input-sha256": "cd34",
              "casd.io/script-sha256": sha256Hex(script),
            },
          },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            tolerations: [{ operator: "Exists" }],
            initContainers: [
              {
                name: "install",
                image: "mirror:5000/casd/node-trust:1.0.0",
                imagePullPolicy: "IfNotPresent",
                command: [
                  "/bin/bash",
                  "-c",
                  "exec /bin/bash /casd/node-trust.sh < /casd/ca-input.pem",
                ],
                securityContext: sc,
                resources,
                volumeMounts: [
                  { name: "script", mountPath: "/casd", readOnly: true },
                  { name: "tmp", mountPath: "/tmp" },
                  { name: "containerd-certs", mountPath: "/host/etc/containerd/certs.d" },
                  { name: "trust-state", mountPath: "/host/var/lib/casd-registry/trust" },
                ],
              },
            ],
            containers: [
              {
                name: "wait",
                image: "mirror:5000/casd/node-trust:1.0.0",
                imagePullPolicy: "IfNotPresent",
                command: WAIT_COMMAND,
                securityContext: {
                  ...sc,
                  runAsUser: 65534,
                  runAsGroup: 65534,
                  runAsNonRoot: true,
                  capabilities: { drop: ["ALL"] },
                },
                resources,
              },
            ],
            volumes: [
              { name: "script", configMap: { name: "harbor-casd-node-trust", defaultMode: 0o444 } },
              { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
              {
                name: "containerd-certs",
                hostPath: { path: "/etc/containerd/certs.d", type: "DirectoryOrCreate" },
              },
              {
                name: "trust-state",
                hostPath: { path: "/var/lib/casd-registry/trust", type: "DirectoryOrCreate" },
              },
            ],
          },
        },
      },
    });
    expect(initCommand()).toEqual([
      "/bin/bash",
      "-c",
      "exec /bin/bash /casd/node-trust.sh < /casd/ca-input.pem",
    ]);
  });

  it("feeds the previous CA after the separator during a rotation, and hashes the input", () => {
    expect(caInputOf("CURRENT\n")).toEqual({ text: "CURRENT\n", sha256: sha256Hex("CURRENT\n") });
    expect(caInputOf("CURRENT", "OLD").text).toBe(`CURRENT\n${PREVIOUS_CA_SEPARATOR}\nOLD\n`);
  });

  it("runs the wait container as a plain loop that exits on SIGTERM", () => {
    expect(WAIT_COMMAND).toEqual([
      "/bin/sh",
      "-c",
      "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
    ]);
    expect(
      shellcheckFindings(
        `#!/bin/sh\n${WAIT_COMMAND[2]}\n`.replace("#!/bin/sh", "#!/usr/bin/env bash"),
      ),
    ).toEqual([]);
  });
});
