import { noTlsVerificationBypass } from "../../policies/no-tls-verification-bypass";
import { HARBOR_YML, RELEASE } from "./harbor-fixture";
import { runResource, stringAsset, UNKNOWN_STRING, withField } from "./support";

const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const RELEASE_TYPE = "kubernetes:helm.sh/v3:Release";
const CONFIGMAP = "kubernetes:core/v1:ConfigMap";
const CONNECTION = { host: "10.50.6.62", user: "deploy", hostKey: "ssh-ed25519 AAAA" };

const HOSTS_TOML = `server = "https://reg.casd.local"

[host."https://reg.casd.local"]
  capabilities = ["pull", "resolve", "push"]
  ca = "/etc/containerd/certs.d/reg.casd.local/ca.crt"
`;
const VERIFY = `set -euo pipefail
curl -fsS --cacert /etc/casd/ca.crt https://reg.casd.local/v2/ -o /dev/null
skopeo inspect --cert-dir /etc/containers/certs.d/reg.casd.local docker://reg.casd.local/library/pause:3.10
ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d reg.casd.local/library/pause:3.10
sort -k2 /etc/hosts >/dev/null
`;
const TRUST = {
  connection: CONNECTION,
  create: VERIFY,
  stdin: HOSTS_TOML,
  logging: "stdoutAndStderr",
};

const run = (type: string, props: Record<string, unknown>) =>
  runResource(noTlsVerificationBypass, { type, props });
const BYPASS = (path: string, what: string) =>
  `${path} disables TLS verification (${what}); trust the registry's CA instead.`;

describe("no-tls-verification-bypass", () => {
  it("is mandatory", () => {
    expect(noTlsVerificationBypass.enforcementLevel).toBe("mandatory");
  });

  it("accepts trust files and commands that verify", async () => {
    expect(await run(COMMAND, TRUST)).toEqual([]);
    expect(await run(COMMAND, { connection: CONNECTION, stdin: HARBOR_YML })).toEqual([]);
    expect(await run(RELEASE_TYPE, RELEASE)).toEqual([]);
  });

  it.each([
    [
      "skip_verify in hosts.toml",
      { stdin: HOSTS_TOML + "  skip_verify = true\n" },
      BYPASS("stdin", "skip_verify"),
    ],
    [
      "insecure in registries.conf",
      { stdin: '[[registry]]\nlocation = "reg.casd.local"\ninsecure = true\n' },
      BYPASS("stdin", "insecure = true"),
    ],
    [
      "insecure-registries in daemon.json",
      { stdin: '{ "insecure-registries": ["reg.casd.local"] }' },
      BYPASS("stdin", "insecure-registries"),
    ],
    [
      "insecureskipverify in YAML",
      { stdin: "tls:\n  insecureskipverify: true\n" },
      BYPASS("stdin", "insecure_skip_verify"),
    ],
    ["curl -k", { create: "curl -fsSk https://reg.casd.local/v2/" }, BYPASS("create", "-k")],
    [
      "curl --insecure",
      { create: "curl --insecure https://reg.casd.local/v2/" },
      BYPASS("create", "--insecure"),
    ],
    [
      "skopeo --tls-verify=false",
      { create: "skopeo copy --dest-tls-verify=false a b" },
      BYPASS("create", "--tls-verify=false"),
    ],
    [
      "podman --tls-verify=false",
      { update: "podman pull --tls-verify=false reg.casd.local/x:1" },
      BYPASS("update", "--tls-verify=false"),
    ],
    [
      "ctr --skip-verify",
      { create: "ctr images pull --skip-verify reg.casd.local/x:1" },
      BYPASS("create", "--skip-verify"),
    ],
    [
      "ctr --plain-http",
      { create: "ctr images pull --plain-http reg.casd.local/x:1" },
      BYPASS("create", "--plain-http"),
    ],
    [
      "dockerd --insecure-registry",
      { create: "dockerd --insecure-registry reg.casd.local" },
      BYPASS("create", "--insecure-registry"),
    ],
    [
      "wget --no-check-certificate",
      { create: "wget --no-check-certificate https://reg.casd.local/" },
      BYPASS("create", "--no-check-certificate"),
    ],
    [
      "NODE_TLS_REJECT_UNAUTHORIZED=0",
      {
        environment: { NODE_TLS_REJECT_UNAUTHORIZED: "0" },
        create: "NODE_TLS_REJECT_UNAUTHORIZED=0 node check.js",
      },
      BYPASS("create", "NODE_TLS_REJECT_UNAUTHORIZED=0"),
    ],
  ])("refuses %s", async (_label, change, message) => {
    expect(await run(COMMAND, { ...TRUST, ...change })).toEqual([message]);
  });

  it("reads copied trust files", async () => {
    const props = {
      connection: CONNECTION,
      remotePath: "/tmp/hosts.toml",
      source: stringAsset(HOSTS_TOML.replace("capabilities", "skip_verify = true\n  capabilities")),
    };
    expect(await run(COPY, props)).toEqual([BYPASS("source.text", "skip_verify")]);
  });

  it("refuses insecure flags in chart values and Kubernetes objects", async () => {
    expect(
      await run(RELEASE_TYPE, withField(RELEASE, ["values", "trivy", "insecure"], true)),
    ).toEqual([
      "values.trivy.insecure is true and disables TLS verification; trust the registry's CA instead.",
    ]);
    expect(
      await run(CONFIGMAP, { data: { "hosts.toml": HOSTS_TOML + "skip_verify = true\n" } }),
    ).toEqual([BYPASS("data.hosts.toml", "skip_verify")]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(COMMAND, { ...TRUST, create: UNKNOWN_STRING, stdin: UNKNOWN_STRING })).toEqual(
      [],
    );
  });
});
