/**
 * The PKI room under mocks: exact inputs of every tls resource, secrets,
 * protection, the provided-CA path, and real X.509 checks of what the
 * inputs produce (keys and certificates materialized by test/support/x509).
 */
import { X509Certificate } from "node:crypto";
import { RecordingMocks, runProgram, ProgramRun, unwrap } from "../support/mocks";
import { devStack } from "../support/stack";
import { materializeTls } from "../support/x509";

const T = {
  key: "tls:index/privateKey:PrivateKey",
  self: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
};

async function dev(mutate?: (c: Record<string, any>) => void): Promise<ProgramRun> {
  const { config, secrets } = devStack();
  mutate?.(config);
  return runProgram(config, { secrets, mocks: new RecordingMocks() });
}

describe("RegistryPki in the dev stack", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await dev();
  });

  it("registers exactly a CA key and certificate, a server key, CSR and certificate", () => {
    const tlsResources = run.mocks.resources
      .filter((r) => r.type.startsWith("tls:"))
      .map((r) => `${r.type} ${r.name}`);
    expect(tlsResources.sort()).toEqual(
      [
        `${T.key} registry-ca-key`,
        `${T.self} registry-ca-cert`,
        `${T.key} registry-server-key`,
        `${T.csr} registry-server-csr`,
        `${T.signed} registry-server-cert`,
      ].sort(),
    );
  });

  it("uses ECDSA P384 for the CA and P256 for the server, never the provider's defaults", () => {
    expect(run.mocks.byName("registry-ca-key").inputs).toEqual({
      algorithm: "ECDSA",
      ecdsaCurve: "P384",
    });
    expect(run.mocks.byName("registry-server-key").inputs).toEqual({
      algorithm: "ECDSA",
      ecdsaCurve: "P256",
    });
  });

  it("gives the CA its profile", () => {
    const ca = run.mocks.byName("registry-ca-cert").inputs;
    expect(ca).toEqual({
      privateKeyPem: run.mocks.byName("registry-ca-key").outputs.privateKeyPem,
      subject: {
        commonName: "CASD Registry Root CA",
        organization: "CASD",
        organizationalUnit: "Platform",
      },
      isCaCertificate: true,
      maxPathLength: 0,
      allowedUses: ["cert_signing", "crl_signing"],
      setSubjectKeyId: true,
      validityPeriodHours: 87600,
    });
  });

  it("requests the server certificate for the hostname and the host's address", () => {
    expect(run.mocks.byName("registry-server-csr").inputs).toEqual({
      privateKeyPem: run.mocks.byName("registry-server-key").outputs.privateKeyPem,
      subject: { commonName: "reg.casd.local", organization: "CASD" },
      dnsNames: ["reg.casd.local"],
      ipAddresses: ["10.50.6.62"],
    });
  });

  it("signs it for server auth only, 200 days, renewing in the last third", () => {
    const signed = run.mocks.byName("registry-server-cert").inputs;
    expect(signed).toEqual({
      certRequestPem: run.mocks.byName("registry-server-csr").outputs.certRequestPem,
      caCertPem: run.mocks.byName("registry-ca-cert").outputs.certPem,
      caPrivateKeyPem: run.mocks.byName("registry-ca-key").outputs.privateKeyPem,
      allowedUses: ["digital_signature", "server_auth"],
      setSubjectKeyId: true,
      validityPeriodHours: 4800,
      earlyRenewalHours: 1600,
    });
  });

  it("keeps private keys secret in inputs, and never exports them", () => {
    const signed = run.mocks.byName("registry-server-cert").rawInputs as Record<string, unknown>;
    expect(JSON.stringify(signed.caPrivateKeyPem)).toContain("4dabf18193072939515e22adb298388d");
    expect(JSON.stringify(signed.certRequestPem)).not.toContain("4dabf18193072939515e22adb298388d");
    const exported = JSON.stringify(run.exports);
    expect(exported).not.toContain("PRIVATE KEY");
  });

  it("protects the CA key and certificate, and only those", () => {
    const protectedNames = run.options
      .filter((o) => o.protect)
      .map((o) => o.name)
      .sort();
    expect(protectedNames).toEqual(["registry-ca-cert", "registry-ca-key"]);
  });

  it("exports the CA, a full chain (server then CA) and the CA's SHA-256 fingerprint", () => {
    const ca = run.mocks.byName("registry-ca-cert").outputs.certPem as string;
    const leaf = run.mocks.byName("registry-server-cert").outputs.certPem as string;
    expect(run.exports.caCertPem).toBe(ca);
    expect(run.exports.fullChainPem).toBe(`${leaf.trim()}\n${ca.trim()}\n`);
    const fp = new X509Certificate(ca).fingerprint256.replace(/:/g, "").toLowerCase();
    expect(run.exports.caFingerprintSha256).toBe(fp);
    const server = new X509Certificate(leaf);
    expect(server.verify(new X509Certificate(ca).publicKey)).toBe(true);
    expect(server.checkHost("reg.casd.local")).toBe("reg.casd.local");
    expect(server.checkIP("10.50.6.62")).toBe("10.50.6.62");
  });

  it("the server key is a secret output of the component; the CA and chain are not", async () => {
    const one = await runProgram({}, { entry: require.resolve("../support/programs/pki-only") });
    expect(await one.pulumi.isSecret(one.outputs.serverKeyPem as never)).toBe(true);
    expect(await one.pulumi.isSecret(one.outputs.caCertPem as never)).toBe(false);
    expect(await one.pulumi.isSecret(one.outputs.fullChainPem as never)).toBe(false);
    expect(one.exports.serverKeyPem).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
  });
});

describe("RegistryPki options", () => {
  it("RSA server keys add key_encipherment; rotation counters become replacement triggers", async () => {
    const run = await dev((c) => {
      c.pki = {
        ...c.pki,
        server: {
          keyAlgorithm: "RSA",
          rsaBits: 3072,
          validityHours: 2400,
          earlyRenewalHours: 800,
          rotation: 2,
        },
        ca: { ...c.pki.ca, rotation: 1 },
      };
    });
    expect(run.mocks.byName("registry-server-key").inputs).toEqual({
      algorithm: "RSA",
      rsaBits: 3072,
    });
    expect(run.mocks.byName("registry-server-cert").inputs.allowedUses).toEqual([
      "digital_signature",
      "key_encipherment",
      "server_auth",
    ]);
    const trig = Object.fromEntries(
      run.options
        .filter((o) => o.type.startsWith("tls:"))
        .map((o) => [o.name, o.replacementTrigger]),
    );
    expect(trig).toEqual({
      "registry-ca-key": 1,
      "registry-ca-cert": 1,
      "registry-server-key": 2,
      "registry-server-csr": undefined,
      "registry-server-cert": 2,
    });
  }, 60_000);

  it("extra SANs and unprotected CA when configured", async () => {
    const run = await dev((c) => {
      c.pki = {
        ...c.pki,
        ca: { ...c.pki.ca, protect: false },
        server: {
          ...c.pki.server,
          extraDnsNames: ["registry.casd.local"],
          extraIpAddresses: ["10.50.6.63"],
        },
      };
    });
    expect(run.mocks.byName("registry-server-csr").inputs.dnsNames).toEqual([
      "reg.casd.local",
      "registry.casd.local",
    ]);
    expect(run.mocks.byName("registry-server-csr").inputs.ipAddresses).toEqual([
      "10.50.6.62",
      "10.50.6.63",
    ]);
    expect(run.options.filter((o) => o.protect)).toEqual([]);
  });
});

describe("RegistryPki with the site's own CA", () => {
  it("signs with the provided CA, creates no CA resources, and exposes the site's chain", async () => {
    // A site root and an intermediate that signs.
    const rootKey = await materializeTls(T.key as never, {
      algorithm: "ECDSA",
      ecdsaCurve: "P384",
    });
    const root = await materializeTls(T.self as never, {
      privateKeyPem: rootKey.privateKeyPem,
      subject: { commonName: "Site Root" },
      isCaCertificate: true,
      allowedUses: ["cert_signing", "crl_signing"],
      setSubjectKeyId: true,
      validityPeriodHours: 87600,
    });
    const interKey = await materializeTls(T.key as never, {
      algorithm: "ECDSA",
      ecdsaCurve: "P384",
    });
    const interCsr = await materializeTls(T.csr as never, {
      privateKeyPem: interKey.privateKeyPem,
      subject: { commonName: "Site Issuing CA" },
    });
    const inter = await materializeTls(T.signed as never, {
      certRequestPem: interCsr.certRequestPem,
      caCertPem: root.certPem,
      caPrivateKeyPem: rootKey.privateKeyPem,
      isCaCertificate: true,
      allowedUses: ["cert_signing", "crl_signing"],
      setSubjectKeyId: true,
      validityPeriodHours: 43800,
    });
    const { config, secrets } = devStack();
    const interKeyPem = unwrap(interKey.privateKeyPem) as string;
    config.pki = { ...(config.pki as object), caSource: "provided" };
    config.pkiCaCertPem = `${inter.certPem}${root.certPem}`;
    const run = await runProgram(config, { secrets: { ...secrets, pkiCaKeyPem: interKeyPem } });

    expect(
      run.mocks.resources
        .filter((r) => r.type.startsWith("tls:"))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["registry-server-cert", "registry-server-csr", "registry-server-key"]);
    const signed = run.mocks.byName("registry-server-cert");
    expect(signed.inputs.caCertPem).toBe(inter.certPem);
    expect(signed.inputs.caPrivateKeyPem).toBe(interKeyPem);
    expect(JSON.stringify(signed.rawInputs.caPrivateKeyPem)).toContain(
      "4dabf18193072939515e22adb298388d",
    );
    expect(run.exports.caCertPem).toBe(root.certPem);
    expect(run.exports.fullChainPem).toBe(
      `${(signed.outputs.certPem as string).trim()}\n${(inter.certPem as string).trim()}\n${(root.certPem as string).trim()}\n`,
    );
    expect(run.options.filter((o) => o.protect)).toEqual([]);
    const leaf = new X509Certificate(signed.outputs.certPem as string);
    expect(leaf.verify(new X509Certificate(inter.certPem as string).publicKey)).toBe(true);
  }, 60_000);
});
