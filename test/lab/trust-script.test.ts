/**
 * The install and remove bodies under a root prefix (as the Helm room's
 * node-trust DaemonSet runs them with /host), on this machine as root: the
 * real `containerd` binary checks and reads the edited config.toml. Covers
 * how containerd's config_path is set (created, replaced, inserted,
 * appended, left alone) and taken back byte for byte, refusals that change
 * nothing, idempotence, and the manifest.
 *
 * Run: npx jest --selectProjects lab test/lab/trust-script.test.ts --runInBand
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderStepScript } from "../../infra/remote/script";
import {
  renderTrustInstallBody,
  renderTrustRemoveBody,
  trustFiles,
  trustStdin,
  type TrustSpec,
} from "../../infra/trust/render";

const CA = spawnSync(
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
    "/CN=script test CA",
    "-days",
    "2",
  ],
  { encoding: "utf8" },
).stdout;
const missing = [
  ...(process.getuid?.() === 0 ? [] : ["root (the scripts chown to root)"]),
  ...["containerd", "openssl"]
    .filter((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0)
    .map((c) => `command ${c}`),
];
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled)
  console.warn(`test/lab/trust-script.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

const SPEC: TrustSpec = {
  hostname: "reg.casd.local",
  port: 5443,
  runtimes: ["containerd", "docker", "podman"],
  push: false,
  restartContainerd: false,
  etcHostsAddress: "10.9.9.9",
};
const CFG = "etc/containerd/config.toml";

describeLab("trust scripts under a root prefix", () => {
  let root: string;

  function run(body: string, stdin = ""): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync("bash", ["-c", renderStepScript({ step: "t", body })], {
      input: stdin,
      encoding: "utf8",
    });
    return {
      code: r.status,
      stdout: r.stdout
        .split("\n")
        .filter(
          (l) =>
            !l.startsWith("casd: note: containerd restart needed") &&
            !l.startsWith("casd: note: containerd is not running"),
        )
        .join("\n"),
      stderr: r.stderr,
    };
  }
  const install = (spec = SPEC, gen = "g1", ca = CA) =>
    run(renderTrustInstallBody(spec, { root, node: "n1", generation: gen }), trustStdin(ca));
  const remove = (spec = SPEC, gen = "g1") =>
    run(renderTrustRemoveBody(spec, { root, node: "n1", generation: gen }));
  const read = (p: string) => fs.readFileSync(path.join(root, p), "utf8");
  const tree = () =>
    spawnSync("sh", ["-c", `cd ${root} && find . -printf '%y %m %p\\n' | sort`], {
      encoding: "utf8",
    }).stdout;

  beforeEach(() => {
    if (missing.length > 0)
      throw new Error(
        `prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    root = fs.mkdtempSync(path.join(os.tmpdir(), "casd-trust-root-"));
    fs.mkdirSync(path.join(root, "etc"));
    fs.writeFileSync(path.join(root, "etc/hosts"), "127.0.0.1 localhost\n");
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test("no config.toml: creates one with config_path, files as rendered; a re-run is unchanged; remove leaves the root as it was", () => {
    const before = tree();
    expect(install()).toEqual({ code: 0, stdout: "casd: t: changed\n", stderr: "" });
    expect(read(CFG)).toBe(
      '# casd-registry: config_path added (created)\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n',
    );
    for (const f of trustFiles(SPEC, { caCertPem: CA })) {
      expect([
        f.path,
        read(f.path),
        (fs.statSync(path.join(root, f.path)).mode & 0o777).toString(8),
      ]).toEqual([f.path, f.content, "444"]);
    }
    expect(read("etc/hosts")).toBe(
      "127.0.0.1 localhost\n10.9.9.9 reg.casd.local # casd-registry reg.casd.local:5443\n",
    );
    expect(
      read("var/lib/casd-registry/trust/reg.casd.local:5443.manifest")
        .split("\n")
        .filter((l) => !l.startsWith("dir ") && !l.startsWith("#")),
    ).toEqual([
      "generation g1",
      "file /etc/containerd/certs.d/reg.casd.local:5443/ca.crt",
      "file /etc/containerd/certs.d/reg.casd.local:5443/hosts.toml",
      "file /etc/docker/certs.d/reg.casd.local:5443/ca.crt",
      "file /etc/containers/certs.d/reg.casd.local:5443/ca.crt",
      "hosts-pin 10.9.9.9",
      "containerd-config created",
      "",
    ]);
    expect(install()).toEqual({ code: 0, stdout: "casd: t: unchanged\n", stderr: "" });
    expect(remove()).toEqual({ code: 0, stdout: "casd: t: changed\n", stderr: "" });
    expect(tree()).toBe(before);
    expect(read("etc/hosts")).toBe("127.0.0.1 localhost\n");
  });

  test.each([
    ['replaced (containerd config default has config_path = "")', "default", "replaced"],
    [
      "inserted under an existing registry table",
      'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry.auths]\n\n  [plugins."io.containerd.grpc.v1.cri".registry]\n    foo = 1\n',
      "inserted",
    ],
    [
      "appended to a config without the table",
      'version = 2\nroot = "/var/lib/containerd"\n',
      "appended",
    ],
  ])("config_path %s, read back by containerd, removed byte for byte", (_label, original, mode) => {
    const text =
      original === "default"
        ? spawnSync("containerd", ["config", "default"], { encoding: "utf8" }).stdout
        : original;
    fs.mkdirSync(path.join(root, "etc/containerd"));
    fs.writeFileSync(path.join(root, CFG), text, { mode: 0o640 });
    expect(install().code).toBe(0);
    const dump = spawnSync("containerd", ["--config", path.join(root, CFG), "config", "dump"], {
      encoding: "utf8",
    }).stdout;
    expect(dump).toMatch(
      /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\n\s+config_path = "\/etc\/containerd\/certs\.d"\n/,
    );
    expect(read(CFG)).toContain(`# casd-registry: config_path added (${mode})`);
    expect(read("var/lib/casd-registry/trust/reg.casd.local:5443.manifest")).toContain(
      `\ncontainerd-config ${mode}\n`,
    );
    expect((fs.statSync(path.join(root, CFG)).mode & 0o777).toString(8)).toBe("640");
    expect(remove().code).toBe(0);
    expect(read(CFG)).toBe(text);
  });

  test("a config_path set by someone else is left alone and said so", () => {
    fs.mkdirSync(path.join(root, "etc/containerd"));
    const text =
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/opt/hosts"\n';
    fs.writeFileSync(path.join(root, CFG), text);
    const r = install();
    expect(r.stdout).toBe(
      "casd: note: containerd config_path is /opt/hosts (not set by casd-registry, left alone): CRI does not read /etc/containerd/certs.d; add it to config_path yourself\ncasd: t: changed\n",
    );
    expect(read(CFG)).toBe(text);
    expect(read("var/lib/casd-registry/trust/reg.casd.local:5443.manifest")).not.toContain(
      "containerd-config",
    );
  });

  test("dropping containerd from the runtimes takes back its files and config_path; a stale generation's remove touches nothing", () => {
    expect(install().code).toBe(0);
    const spec2: TrustSpec = { ...SPEC, runtimes: ["docker"], etcHostsAddress: undefined };
    expect(install(spec2, "g2").code).toBe(0);
    expect(fs.existsSync(path.join(root, "etc/containerd"))).toBe(false);
    expect(fs.existsSync(path.join(root, "etc/containers"))).toBe(false);
    expect(read("etc/hosts")).toBe("127.0.0.1 localhost\n");
    expect(remove(SPEC, "g1")).toEqual({
      code: 0,
      stdout:
        "casd: note: the trust of reg.casd.local:5443 on node n1 belongs to another generation now: nothing removed\ncasd: t: unchanged\n",
      stderr: "",
    });
    expect(read("etc/docker/certs.d/reg.casd.local:5443/ca.crt")).toBe(CA);
  });

  test.each([
    [
      "a registries.yaml that is not ours",
      () => {
        fs.mkdirSync(path.join(root, "etc/rancher/k3s"), { recursive: true });
        fs.writeFileSync(path.join(root, "etc/rancher/k3s/registries.yaml"), "mirrors: {}\n");
      },
      { ...SPEC, runtimes: ["docker", "k3s"] as TrustSpec["runtimes"] },
      'casd: error: node n1: /etc/rancher/k3s/registries.yaml exists and was not written by casd-registry; add configs."reg.casd.local:5443".tls.ca_file: /etc/rancher/k3s/certs.d/reg.casd.local:5443/ca.crt to it yourself and remove k3s from the node\'s runtimes; nothing was changed\n',
    ],
    [
      "/etc/hosts already maps the name",
      () => fs.appendFileSync(path.join(root, "etc/hosts"), "10.1.1.1 reg.casd.local\n"),
      SPEC,
      "casd: error: node n1: /etc/hosts already maps reg.casd.local (10.1.1.1 reg.casd.local); remove that line or unset etcHostsAddress; nothing was changed\n",
    ],
    [
      "a containerd config that containerd cannot read",
      () => {
        fs.mkdirSync(path.join(root, "etc/containerd"));
        fs.writeFileSync(path.join(root, CFG), "version = [\n");
      },
      SPEC,
      undefined,
    ],
  ])("refuses %s before changing anything", (_label, arrange, spec, message) => {
    arrange();
    const before = tree();
    const r = install(spec as TrustSpec);
    expect(r.code).toBe(1);
    if (message) expect(r.stderr).toBe(message);
    else
      expect(r.stderr).toMatch(
        /^casd: error: node n1: containerd cannot read .*config\.toml: .*; nothing was changed\n$/,
      );
    expect(tree()).toBe(before);
  });

  test("a CA that is not PEM is refused before anything changes", () => {
    const before = tree();
    const r = install(SPEC, "g1", "not a certificate");
    expect([r.code, r.stderr]).toEqual([
      1,
      "casd: error: node n1: the current CA on stdin is not a PEM certificate; nothing was changed\n",
    ]);
    expect(tree()).toBe(before);
  });
});
