/**
 * Every script the remote conventions and the host room render passes the
 * real shellcheck binary (all severities), for each shape of input.
 */
import { renderStepScript, remoteInvocation } from "../../infra/remote/script";
import * as s from "../../infra/host/scripts";
import { SHELLCHECK_AVAILABLE, shellcheckFindings } from "../support/shellcheck";

const CA =
  "-----BEGIN CERTIFICATE-----\nMIIBcTCCARegAwIBAgIUQ2FzZFRlc3RDQQ==\n-----END CERTIFICATE-----\n";
const CHAIN = `-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIUU2VydmVy\n-----END CERTIFICATE-----\n${CA}`;

const preflight = (over: Partial<s.PreflightScriptArgs>): string =>
  s.renderPreflightScript({
    hostname: "reg.casd.local",
    address: "10.50.6.62",
    dataDir: "/data",
    minFreeGiB: 40,
    ports: [80, 443],
    requireDocker: true,
    registryContainers: ["harbor"],
    architectures: ["x86_64"],
    etcHosts: true,
    maxClockSkewSeconds: 120,
    ...over,
  });

const scripts: Array<[string, string]> = [
  ["prelude only", renderStepScript({ step: "noop", body: ":" })],
  ["ready (sudo)", s.renderReadyScript({ sudo: true, attempts: 60, intervalSeconds: 5 })],
  ["ready (root)", s.renderReadyScript({ sudo: false, attempts: 1, intervalSeconds: 1 })],
  ["preflight (compose, .local, etcHosts)", preflight({})],
  [
    "preflight (helm: no docker, no clock, no etcHosts)",
    preflight({ requireDocker: false, maxClockSkewSeconds: undefined, etcHosts: false }),
  ],
  [
    "preflight (.lan name, two architectures, one port)",
    preflight({ hostname: "reg.example.lan", architectures: ["x86_64", "aarch64"], ports: [5000] }),
  ],
  [
    "dirs",
    s.renderDirsScript({
      journal: "host-dirs",
      dataDir: "/data",
      certDir: "/etc/casd-registry/tls",
      installDir: "/opt/casd-registry",
    }),
  ],
  [
    "dirs (delete)",
    s.renderDirsDeleteScript({
      journal: "host-dirs",
      dataDir: "/data",
      certDir: "/etc/casd-registry/tls",
      installDir: "/opt/casd-registry",
    }),
  ],
  [
    "etc-hosts (.local)",
    s.renderEtcHostsScript({ hostname: "reg.casd.local", address: "10.50.6.62" }),
  ],
  [
    "etc-hosts (.lan)",
    s.renderEtcHostsScript({ hostname: "reg.example.lan", address: "fd00::62" }),
  ],
  [
    "etc-hosts (delete)",
    s.renderEtcHostsDeleteScript({ hostname: "reg.casd.local", address: "10.50.6.62" }),
  ],
  [
    "tls",
    s.renderTlsScript({
      journal: "host-tls",
      certDir: "/etc/casd-registry/tls",
      fullChainPem: CHAIN,
      caCertPem: CA,
    }),
  ],
  ["tls (delete)", s.renderTlsDeleteScript({ journal: "host-tls" })],
  [
    "ca-trust",
    s.renderTrustScript({ journal: "host-ca-trust", hostname: "reg.casd.local", caCertPem: CA }),
  ],
  [
    "ca-trust (delete)",
    s.renderTrustDeleteScript({ journal: "host-ca-trust", hostname: "reg.casd.local" }),
  ],
];

describe("shellcheck", () => {
  test("the shellcheck binary is installed (a missing binary fails, it never skips)", () => {
    expect(SHELLCHECK_AVAILABLE).toBe(true);
  });

  test.each(scripts)("%s passes shellcheck", (_label, script) => {
    expect(shellcheckFindings(script)).toEqual([]);
  });

  test("the checker does report a defect (guards against a checker that always passes)", () => {
    expect(shellcheckFindings("#!/usr/bin/env bash\necho $1\n")).toEqual([
      "2:6: note: Double quote to prevent globbing and word splitting. [SC2086]",
    ]);
  });

  test("the invocation wrapper is itself valid shell for both sudo modes", () => {
    for (const sudo of [true, false]) {
      expect(
        shellcheckFindings(`#!/usr/bin/env bash\n${remoteInvocation(scripts[1][1], { sudo })}\n`),
      ).toEqual([]);
    }
  });
});
