import { harborNoDefaultSecrets } from "../../policies/harbor-no-default-secrets";
import { CHART_VALUES, HARBOR_YML, RELEASE } from "./harbor-fixture";
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

const run = (type: string, props: Record<string, unknown>, config?: Record<string, unknown>) =>
  runResource(harborNoDefaultSecrets, { type, props, config });

const FOUND = (path: string, secret: string) =>
  `${path} contains Harbor's default secret "${secret}"; use a generated secret.`;

describe("harbor-no-default-secrets", () => {
  it("is mandatory", () => {
    expect(harborNoDefaultSecrets.enforcementLevel).toBe("mandatory");
  });

  it("accepts generated secrets", async () => {
    expect(await run(COMMAND, INSTALL)).toEqual([]);
    expect(await run(RELEASE_TYPE, RELEASE)).toEqual([]);
  });

  describe("harbor.yml", () => {
    it.each([
      [
        "harbor_admin_password",
        "harbor_admin_password: q9Vx2LwZr7TnB4mKa8Hs",
        "harbor_admin_password: Harbor12345",
        "Harbor12345",
      ],
      ["database.password", "password: c3Pz8RkWn5YtQ1vLm6Jd", "password: root123", "root123"],
    ])("refuses the default %s", async (_label, from, to, secret) => {
      const props = { ...INSTALL, stdin: HARBOR_YML.replace(from, to) };
      expect(await run(COMMAND, props)).toEqual([FOUND("stdin", secret)]);
    });

    it("finds it in a copied file too", async () => {
      const props = {
        connection: CONNECTION,
        remotePath: "/tmp/harbor.yml",
        source: stringAsset(HARBOR_YML.replace("c3Pz8RkWn5YtQ1vLm6Jd", "root123")),
      };
      expect(await run(COPY, props)).toEqual([FOUND("source.text", "root123")]);
    });

    it("finds it in a script", async () => {
      const props = {
        ...INSTALL,
        create:
          "sed -i 's/^harbor_admin_password: .*/harbor_admin_password: Harbor12345/' harbor.yml",
      };
      expect(await run(COMMAND, props)).toEqual([FOUND("create", "Harbor12345")]);
    });

    it("matches whole words only", async () => {
      const props = { ...INSTALL, create: "echo Harbor123456 xroot123 changeits" };
      expect(await run(COMMAND, props)).toEqual([]);
    });
  });

  describe("chart values", () => {
    it.each([
      ["harborAdminPassword", ["harborAdminPassword"], "Harbor12345"],
      ["secretKey", ["secretKey"], "not-a-secure-key"],
      ["database.internal.password", ["database", "internal", "password"], "changeit"],
      [
        "registry.credentials.password",
        ["registry", "credentials", "password"],
        "harbor_registry_password",
      ],
    ])("refuses the default %s", async (label, path, secret) => {
      const props = withField(RELEASE, ["values", ...path], secret);
      expect(await run(RELEASE_TYPE, props)).toEqual([FOUND(`values.${label}`, secret)]);
    });

    it.each([
      ["harborAdminPassword", "Harbor12345", "existingSecretAdminPassword"],
      ["secretKey", "not-a-secure-key", "existingSecretSecretKey"],
      ["database.internal.password", "changeit", ""],
      [
        "registry.credentials.password",
        "harbor_registry_password",
        "registry.credentials.existingSecret or registry.credentials.htpasswdString",
      ],
    ])("refuses leaving %s to the chart", async (label, secret, alt) => {
      const props = withField(RELEASE, ["values", ...label.split(".")], undefined);
      expect(await run(RELEASE_TYPE, props)).toEqual([
        `values.${label} is not set, so the chart's default "${secret}" applies; set it${alt ? ` or ${alt}` : ""}.`,
      ]);
    });

    it("accepts existing secrets and an external database instead", async () => {
      const values = {
        ...CHART_VALUES,
        harborAdminPassword: undefined,
        existingSecretAdminPassword: "harbor-admin",
        secretKey: undefined,
        existingSecretSecretKey: "harbor-secret-key",
        database: { type: "external", external: { host: "db", password: "Qm4Vz8Lx2Rn6Tp1W" } },
        registry: { credentials: { existingSecret: "harbor-registry-credentials" } },
      };
      expect(
        await run(RELEASE_TYPE, { ...RELEASE, values: JSON.parse(JSON.stringify(values)) }),
      ).toEqual([]);
    });

    it("reads values files under values", async () => {
      const props = {
        ...RELEASE,
        values: withField(CHART_VALUES, ["harborAdminPassword"], undefined),
        valueYamlFiles: [stringAsset("harborAdminPassword: Harbor12345\n")],
      };
      expect(await run(RELEASE_TYPE, props)).toEqual([
        FOUND("valueYamlFiles[0].text", "Harbor12345"),
      ]);
    });

    it("does not require Harbor's keys of other charts", async () => {
      expect(
        await run(RELEASE_TYPE, {
          chart: "./charts/node-trust-0.1.0.tgz",
          version: "0.1.0",
          values: {},
        }),
      ).toEqual([]);
    });
  });

  it("takes the list of defaults from config", async () => {
    const props = { ...INSTALL, create: "echo s3cr3t-default" };
    expect(await run(COMMAND, props, { forbiddenSecrets: ["s3cr3t-default"] })).toEqual([
      FOUND("create", "s3cr3t-default"),
    ]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(COMMAND, { ...INSTALL, stdin: UNKNOWN_STRING })).toEqual([]);
    expect(await run(RELEASE_TYPE, { ...RELEASE, values: UNKNOWN_OBJECT })).toEqual([]);
    expect(
      await run(
        RELEASE_TYPE,
        withField(RELEASE, ["values", "harborAdminPassword"], UNKNOWN_STRING),
      ),
    ).toEqual([]);
  });
});
