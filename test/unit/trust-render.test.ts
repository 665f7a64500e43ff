/**
 * The trust room's pure renderers: paths per runtime, hosts.toml,
 * registries.yaml, containerd config fragments, the exact file list, the
 * stdin payload, spec validation, and every rendered script through the real
 * shellcheck. Behaviour of the scripts on real hosts: test/lab/trust*.test.ts.
 */
import { renderStepScript } from "../../infra/remote/script";
import {
  containerdTableKey,
  osCaBaseName,
  PREVIOUS_CA_SEPARATOR,
  registryAuthority,
  renderConfigPathLine,
  renderContainerdConfigPath,
  renderCreatedContainerdConfig,
  renderHostsToml,
  renderRegistriesYaml,
  renderTrustInstallBody,
  renderTrustRemoveBody,
  renderTrustVerifyBody,
  runtimeCaPath,
  trustFiles,
  trustManifestPath,
  trustStdin,
  validateTrustSpec,
  type TrustSpec,
} from "../../infra/trust/render";
import { SHELLCHECK_AVAILABLE, shellcheckFindings } from "../support/shellcheck";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBcurrent\n-----END CERTIFICATE-----";
const OLD = "-----BEGIN CERTIFICATE-----\r\nMIIBold\r\n-----END CERTIFICATE-----\r\n";
const ALL: TrustSpec = {
  hostname: "reg.casd.local",
  port: 5443,
  runtimes: ["docker", "containerd", "podman", "os", "k3s", "rke2"],
  push: false,
  restartContainerd: false,
};

describe("names and paths", () => {
  it.each([
    [
      "reg.casd.local",
      443,
      "reg.casd.local",
      "casd-registry-reg.casd.local",
      "/var/lib/casd-registry/trust/reg.casd.local.manifest",
    ],
    [
      "reg.casd.local",
      5443,
      "reg.casd.local:5443",
      "casd-registry-reg.casd.local-5443",
      "/var/lib/casd-registry/trust/reg.casd.local:5443.manifest",
    ],
  ])("%s port %d: authority %s, OS file %s", (host, port, auth, osBase, manifest) => {
    expect(registryAuthority(host, port)).toBe(auth);
    expect(osCaBaseName(host, port)).toBe(osBase);
    expect(trustManifestPath(host, port)).toBe(manifest);
  });

  it.each([
    ["docker", "/etc/docker/certs.d/reg.casd.local:5443/ca.crt"],
    ["containerd", "/etc/containerd/certs.d/reg.casd.local:5443/ca.crt"],
    ["podman", "/etc/containers/certs.d/reg.casd.local:5443/ca.crt"],
    ["k3s", "/etc/rancher/k3s/certs.d/reg.casd.local:5443/ca.crt"],
    ["rke2", "/etc/rancher/rke2/certs.d/reg.casd.local:5443/ca.crt"],
  ] as const)("%s CA file: %s", (runtime, path) => {
    expect(runtimeCaPath(runtime, "reg.casd.local:5443")).toBe(path);
  });
});

describe("rendered files", () => {
  it("hosts.toml: server, one host with pull and resolve, the CA file", () => {
    expect(
      renderHostsToml({
        authority: "reg.casd.local:5443",
        caPath: "/etc/containerd/certs.d/reg.casd.local:5443/ca.crt",
        push: false,
      }),
    ).toBe(
      [
        'server = "https://reg.casd.local:5443"',
        "",
        '[host."https://reg.casd.local:5443"]',
        'capabilities = [ "pull", "resolve" ]',
        'ca = "/etc/containerd/certs.d/reg.casd.local:5443/ca.crt"',
        "",
      ].join("\n"),
    );
  });

  it("hosts.toml with push adds the push capability, and nothing else", () => {
    expect(renderHostsToml({ authority: "reg.casd.local", caPath: "/x/ca.crt", push: true })).toBe(
      [
        'server = "https://reg.casd.local"',
        "",
        '[host."https://reg.casd.local"]',
        'capabilities = [ "pull", "resolve", "push" ]',
        'ca = "/x/ca.crt"',
        "",
      ].join("\n"),
    );
  });

  it("registries.yaml: configs.<host:port>.tls.ca_file only", () => {
    expect(
      renderRegistriesYaml({
        authority: "reg.casd.local:5443",
        caPath: "/etc/rancher/k3s/certs.d/reg.casd.local:5443/ca.crt",
      }),
    ).toBe(
      "configs:\n  reg.casd.local:5443:\n    tls:\n      ca_file: /etc/rancher/k3s/certs.d/reg.casd.local:5443/ca.crt\n",
    );
  });

  it.each([
    [
      1,
      '[plugins.cri.registry]\nconfig_path = "/etc/containerd/certs.d"\n',
      "[plugins.cri.registry]",
    ],
    [
      2,
      '[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n',
      "[plugins.io.containerd.grpc.v1.cri.registry]",
    ],
    [
      3,
      '[plugins."io.containerd.cri.v1.images".registry]\nconfig_path = "/etc/containerd/certs.d"\n',
      "[plugins.io.containerd.cri.v1.images.registry]",
    ],
  ] as const)("containerd config version %d: config_path table and its key", (v, text, key) => {
    expect(renderContainerdConfigPath(v)).toBe(text);
    expect(containerdTableKey(v)).toBe(key);
  });

  it("containerd: the inserted key line and a created config.toml", () => {
    expect(renderConfigPathLine()).toBe('config_path = "/etc/containerd/certs.d"');
    expect(renderCreatedContainerdConfig()).toBe(
      '# casd-registry: config_path added (created)\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n',
    );
  });

  it("stdin: the current CA, then the previous one after the separator (PEM normalized)", () => {
    expect(trustStdin(CA)).toBe(`${CA}\n`);
    expect(trustStdin(CA, OLD)).toBe(
      `${CA}\n${PREVIOUS_CA_SEPARATOR}\n-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----\n`,
    );
  });

  it("trustFiles: every runtime, Debian OS store, overlap: exact paths, modes and contents", () => {
    const cur = `${CA}\n`;
    const old = "-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----\n";
    const files = trustFiles(ALL, { caCertPem: CA, previousCaCertPem: OLD, osFamily: "debian" });
    expect(files.map((f) => [f.runtime, f.path, f.mode])).toEqual([
      ["docker", "/etc/docker/certs.d/reg.casd.local:5443/ca.crt", "0444"],
      ["containerd", "/etc/containerd/certs.d/reg.casd.local:5443/ca.crt", "0444"],
      ["containerd", "/etc/containerd/certs.d/reg.casd.local:5443/hosts.toml", "0444"],
      ["podman", "/etc/containers/certs.d/reg.casd.local:5443/ca.crt", "0444"],
      ["os", "/usr/local/share/ca-certificates/casd-registry-reg.casd.local-5443.crt", "0444"],
      [
        "os",
        "/usr/local/share/ca-certificates/casd-registry-reg.casd.local-5443-previous.crt",
        "0444",
      ],
      ["k3s", "/etc/rancher/k3s/certs.d/reg.casd.local:5443/ca.crt", "0444"],
      ["k3s", "/etc/rancher/k3s/registries.yaml", "0444"],
      ["rke2", "/etc/rancher/rke2/certs.d/reg.casd.local:5443/ca.crt", "0444"],
      ["rke2", "/etc/rancher/rke2/registries.yaml", "0444"],
    ]);
    const content = Object.fromEntries(files.map((f) => [f.path, f.content]));
    expect(content["/etc/docker/certs.d/reg.casd.local:5443/ca.crt"]).toBe(cur + old);
    expect(content["/usr/local/share/ca-certificates/casd-registry-reg.casd.local-5443.crt"]).toBe(
      cur,
    );
    expect(
      content["/usr/local/share/ca-certificates/casd-registry-reg.casd.local-5443-previous.crt"],
    ).toBe(old);
    expect(content["/etc/containerd/certs.d/reg.casd.local:5443/hosts.toml"]).toBe(
      renderHostsToml({
        authority: "reg.casd.local:5443",
        caPath: "/etc/containerd/certs.d/reg.casd.local:5443/ca.crt",
        push: false,
      }),
    );
    expect(content["/etc/rancher/rke2/registries.yaml"]).toBe(
      renderRegistriesYaml({
        authority: "reg.casd.local:5443",
        caPath: "/etc/rancher/rke2/certs.d/reg.casd.local:5443/ca.crt",
      }),
    );
  });

  it("trustFiles: RHEL anchors, no overlap, port 443", () => {
    const files = trustFiles(
      { ...ALL, port: 443, runtimes: ["os", "podman"] },
      { caCertPem: CA, osFamily: "rhel" },
    );
    expect(files).toEqual([
      {
        runtime: "os",
        path: "/etc/pki/ca-trust/source/anchors/casd-registry-reg.casd.local.crt",
        mode: "0444",
        content: `${CA}\n`,
      },
      {
        runtime: "podman",
        path: "/etc/containers/certs.d/reg.casd.local/ca.crt",
        mode: "0444",
        content: `${CA}\n`,
      },
    ]);
  });

  it("no file and no script ever turns verification off", () => {
    const texts = [
      ...trustFiles(
        { ...ALL, push: true },
        { caCertPem: CA, previousCaCertPem: OLD, osFamily: "rhel" },
      ).map((f) => f.content),
      renderTrustInstallBody(
        { ...ALL, push: true, etcHostsAddress: "10.0.0.5" },
        { root: "/", node: "n", generation: "g" },
      ),
      renderTrustRemoveBody(ALL, { root: "/", node: "n", generation: "g" }),
      renderTrustVerifyBody(ALL, { node: "n" }),
    ];
    for (const t of texts) {
      expect(t).not.toMatch(/skip_verify|insecure|--tls-verify=false|-k |InsecureSkipVerify/i);
    }
  });
});

describe("validateTrustSpec", () => {
  it("accepts a valid spec", () => {
    expect(validateTrustSpec(ALL)).toEqual([]);
  });

  it("lists every problem with the value and the fix", () => {
    expect(
      validateTrustSpec({
        hostname: "reg",
        port: 70000,
        runtimes: [],
        push: false,
        restartContainerd: false,
        etcHostsAddress: "not-ip",
      }),
    ).toEqual([
      'hostname "reg" is not a fully qualified DNS name; use the registry\'s name, e.g. reg.casd.local',
      "port 70000 is not a TCP port; use 1 to 65535 (443 for the default)",
      "runtimes is empty: the node would trust nothing; list docker, containerd, podman, os, k3s or rke2",
      'etcHostsAddress "not-ip" is not an IP address; set the registry\'s address or leave it unset',
    ]);
    expect(validateTrustSpec({ ...ALL, runtimes: ["docker", "docker"] })).toEqual([
      'runtimes ["docker","docker"] lists a runtime twice; list each once',
    ]);
  });
});

describe("rendered scripts", () => {
  const SPECS: [string, TrustSpec][] = [
    [
      "every runtime, pin, push, restart",
      { ...ALL, push: true, etcHostsAddress: "10.0.0.5", restartContainerd: true },
    ],
    ["docker only, port 443", { ...ALL, port: 443, runtimes: ["docker"] }],
    ["os only", { ...ALL, runtimes: ["os"] }],
    ["containerd only", { ...ALL, runtimes: ["containerd"] }],
  ];

  it("shellcheck is installed (a missing binary fails, never skips)", () => {
    expect(SHELLCHECK_AVAILABLE).toBe(true);
  });

  it.each(SPECS)(
    "%s: install, remove and verify pass shellcheck, over SSH and under /host",
    (_label, spec) => {
      for (const root of ["/", "/host"]) {
        const o = { root, node: "node-1", generation: "0123abcd" };
        expect(
          shellcheckFindings(
            renderStepScript({ step: "trust", body: renderTrustInstallBody(spec, o) }),
          ),
        ).toEqual([]);
        expect(
          shellcheckFindings(
            renderStepScript({ step: "untrust", body: renderTrustRemoveBody(spec, o) }),
          ),
        ).toEqual([]);
      }
      expect(
        shellcheckFindings(
          renderStepScript({
            step: "verify",
            body: renderTrustVerifyBody(spec, { node: "node-1" }),
          }),
        ),
      ).toEqual([]);
    },
  );

  it("the install body carries no certificate: the CA travels on stdin", () => {
    const body = renderTrustInstallBody(ALL, { root: "/", node: "node-1", generation: "g" });
    expect(body).not.toContain("BEGIN CERTIFICATE-----\n");
    expect(body).toContain('cat > "$CASD_WORK/in"');
    expect(
      body.startsWith(
        "CASD_ROOT=''\nCASD_NODE='node-1'\nCASD_HOST='reg.casd.local'\nCASD_AUTH='reg.casd.local:5443'\nCASD_GEN='g'\n",
      ),
    ).toBe(true);
    expect(renderTrustInstallBody(ALL, { root: "/host/", node: "n", generation: "g" })).toContain(
      "CASD_ROOT='/host'\n",
    );
  });

  it("the verify body checks each installed CA file alone and the OS store, against https://host:port/v2/", () => {
    const body = renderTrustVerifyBody(
      { ...ALL, runtimes: ["docker", "os", "podman"] },
      { node: "n1" },
    );
    expect(body).toContain("CASD_URL='https://reg.casd.local:5443/v2/'\n");
    expect(body.trimEnd().split("\n").slice(-3)).toEqual([
      "casd_verify '/etc/docker/certs.d/reg.casd.local:5443/ca.crt'",
      "casd_verify os",
      "casd_verify '/etc/containers/certs.d/reg.casd.local:5443/ca.crt'",
    ]);
    expect(body).toContain('--capath "$CASD_EMPTY" --cacert "$trust"');
  });
});
