import { harborHttpsOffline } from "../../policies/harbor-https-offline";
import { HARBOR_YML, RELEASE } from "./harbor-fixture";
import { runResource, stringAsset, UNKNOWN_OBJECT, UNKNOWN_STRING, withField } from "./support";

const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const RELEASE_TYPE = "kubernetes:helm.sh/v3:Release";
const CONNECTION = { host: "10.50.6.62", user: "deploy", hostKey: "ssh-ed25519 AAAA" };
const INSTALL = {
  connection: CONNECTION,
  create: "cat > /etc/casd/harbor/harbor.yml",
  stdin: HARBOR_YML,
  logging: "none",
};

const run = (type: string, props: Record<string, unknown>) =>
  runResource(harborHttpsOffline, { type, props });
const yml = (from: string, to: string) => ({ ...INSTALL, stdin: HARBOR_YML.replace(from, to) });

describe("harbor-https-offline", () => {
  it("is mandatory", () => {
    expect(harborHttpsOffline.enforcementLevel).toBe("mandatory");
  });

  it("accepts the hardened harbor.yml and chart values", async () => {
    expect(await run(COMMAND, INSTALL)).toEqual([]);
    expect(
      await run(
        COMMAND,
        yml("data_volume", "external_url: https://reg.casd.local:8443\ndata_volume"),
      ),
    ).toEqual([]);
    expect(await run(RELEASE_TYPE, RELEASE)).toEqual([]);
  });

  describe("harbor.yml", () => {
    it.each([
      [
        "no https section",
        "https:\n  port: 443\n  certificate: /etc/casd/registry/tls/fullchain.pem\n  private_key: /etc/casd/registry/tls/server.key\n",
        "",
        "harbor.yml in stdin has no https section; Harbor must serve TLS with the stack's certificate.",
      ],
      [
        "no certificate",
        "  certificate: /etc/casd/registry/tls/fullchain.pem\n",
        "",
        "harbor.yml in stdin: https.certificate is not set.",
      ],
      [
        "no private key",
        "  private_key: /etc/casd/registry/tls/server.key\n",
        "",
        "harbor.yml in stdin: https.private_key is not set.",
      ],
      [
        "an http external_url",
        "data_volume",
        "external_url: http://reg.casd.local\ndata_volume",
        'harbor.yml in stdin: external_url is "http://reg.casd.local"; it must be an https:// URL.',
      ],
      [
        "skip_update false",
        "skip_update: true",
        "skip_update: false",
        "harbor.yml in stdin: trivy.skip_update is false; it must be true (no internet access).",
      ],
      [
        "offline_scan left out",
        "  offline_scan: true\n",
        "",
        "harbor.yml in stdin: trivy.offline_scan is not set; it must be true (no internet access).",
      ],
    ])("refuses %s", async (_label, from, to, message) => {
      expect(await run(COMMAND, yml(from, to))).toEqual([message]);
    });

    it("reads harbor.yml copied as a file", async () => {
      const props = {
        connection: CONNECTION,
        remotePath: "/tmp/harbor.yml",
        source: stringAsset(HARBOR_YML.replace("offline_scan: true", "offline_scan: false")),
      };
      expect(await run(COPY, props)).toEqual([
        "harbor.yml in source.text: trivy.offline_scan is false; it must be true (no internet access).",
      ]);
    });

    it("ignores YAML that is not harbor.yml", async () => {
      expect(
        await run(COMMAND, { ...INSTALL, stdin: 'server = "https://reg.casd.local"\n' }),
      ).toEqual([]);
      expect(
        await run(COMMAND, { ...INSTALL, stdin: "hostname: x\nlog:\n  level: info\n" }),
      ).toEqual([]);
    });
  });

  describe("chart values", () => {
    it.each([
      [
        "an http externalURL",
        ["externalURL"],
        "http://reg.casd.local",
        'values.externalURL is "http://reg.casd.local"; it must be an https:// URL.',
      ],
      [
        "externalURL left to the chart",
        ["externalURL"],
        undefined,
        "values.externalURL is not set (the chart default is https://core.harbor.domain); set it to the registry's https:// URL.",
      ],
      [
        "TLS off",
        ["expose", "tls", "enabled"],
        false,
        "values.expose.tls.enabled is false; Harbor must serve TLS.",
      ],
      [
        "certSource auto",
        ["expose", "tls", "certSource"],
        "auto",
        'values.expose.tls.certSource is "auto"; it must be "secret" (the stack\'s certificate).',
      ],
      [
        "certSource left to the chart",
        ["expose", "tls", "certSource"],
        undefined,
        'values.expose.tls.certSource is not set (the chart default is auto); it must be "secret" (the stack\'s certificate).',
      ],
      [
        "no secret name",
        ["expose", "tls", "secret", "secretName"],
        "",
        "values.expose.tls.secret.secretName is not set; name the TLS secret holding the stack's certificate.",
      ],
      [
        "skipUpdate false",
        ["trivy", "skipUpdate"],
        false,
        "values.trivy.skipUpdate is false; it must be true (no internet access).",
      ],
      [
        "offlineScan left to the chart",
        ["trivy", "offlineScan"],
        undefined,
        "values.trivy.offlineScan is not set; it must be true (no internet access).",
      ],
    ])("refuses %s", async (_label, path, value, message) => {
      expect(await run(RELEASE_TYPE, withField(RELEASE, ["values", ...path], value))).toEqual([
        message,
      ]);
    });

    it("does not require trivy settings when trivy is disabled", async () => {
      const props = withField(RELEASE, ["values", "trivy"], { enabled: false });
      expect(await run(RELEASE_TYPE, props)).toEqual([]);
    });

    it("ignores other charts", async () => {
      expect(
        await run(RELEASE_TYPE, {
          chart: "./charts/node-trust-0.1.0.tgz",
          version: "0.1.0",
          values: {},
        }),
      ).toEqual([]);
    });
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(COMMAND, { ...INSTALL, stdin: UNKNOWN_STRING })).toEqual([]);
    expect(await run(RELEASE_TYPE, { ...RELEASE, values: UNKNOWN_OBJECT })).toEqual([]);
    expect(
      await run(RELEASE_TYPE, withField(RELEASE, ["values", "externalURL"], UNKNOWN_STRING)),
    ).toEqual([]);
    expect(
      await run(
        RELEASE_TYPE,
        withField(RELEASE, ["values", "expose", "tls", "certSource"], UNKNOWN_STRING),
      ),
    ).toEqual([]);
  });
});
