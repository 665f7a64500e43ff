/**
 * materializeTls behind pulumi.runtime.setMocks, as the live mocks use it: real @pulumi/tls
 * resources get real X.509 outputs, and private keys stay secret.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { isTlsToken, materializeTls, tlsResourceId } from "../support/x509";

const seen: { type: string; name: string; id: string }[] = [];

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: async (args) => {
        if (!isTlsToken(args.type)) throw new Error(`unexpected resource ${args.type}`);
        const state = await materializeTls(args.type, args.inputs);
        const id = tlsResourceId(args.type, state);
        seen.push({ type: args.type, name: args.name, id });
        return { id, state };
      },
      call: (args) => {
        throw new Error(`unexpected call ${args.token}`);
      },
    },
    "casd-registry",
    "x509",
    false,
  );
});

const value = <T>(o: pulumi.Output<T>): Promise<T> =>
  new Promise((resolve) => o.apply((v) => resolve(v)));

it("a CA and a server certificate built with @pulumi/tls are real and keep keys secret", async () => {
  const tls = await import("@pulumi/tls");
  const caKey = new tls.PrivateKey("ca-key", { algorithm: "ECDSA", ecdsaCurve: "P384" });
  const ca = new tls.SelfSignedCert("ca", {
    privateKeyPem: caKey.privateKeyPem,
    subject: { commonName: "CASD Registry Root CA", organization: "CASD" },
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
    setSubjectKeyId: true,
    validityPeriodHours: 87600,
  });
  const key = new tls.PrivateKey("server-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
  const csr = new tls.CertRequest("server-csr", {
    privateKeyPem: key.privateKeyPem,
    subject: { commonName: "reg.casd.local" },
    dnsNames: ["reg.casd.local"],
    ipAddresses: ["10.50.6.62"],
  });
  const server = new tls.LocallySignedCert("server", {
    certRequestPem: csr.certRequestPem,
    caPrivateKeyPem: caKey.privateKeyPem,
    caCertPem: ca.certPem,
    allowedUses: ["digital_signature", "server_auth"],
    setSubjectKeyId: true,
    validityPeriodHours: 4800,
  });

  expect(await pulumi.isSecret(caKey.privateKeyPem)).toBe(true);
  expect(await pulumi.isSecret(key.privateKeyPemPkcs8)).toBe(true);
  expect(await pulumi.isSecret(ca.privateKeyPem)).toBe(true);
  expect(await pulumi.isSecret(server.caPrivateKeyPem)).toBe(true);
  expect(await pulumi.isSecret(server.certPem)).toBe(false);
  expect(await pulumi.isSecret(key.publicKeyOpenssh)).toBe(false);

  expect(await value(ca.keyAlgorithm)).toBe("ECDSA");
  expect(await value(server.caKeyAlgorithm)).toBe("ECDSA");
  expect(await value(server.readyForRenewal)).toBe(false);
  expect(await value(server.maxPathLength)).toBe(-1);
  expect(await value(key.rsaBits)).toBe(2048);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "casd-x509-mocks-"));
  try {
    const caFile = path.join(dir, "ca.pem");
    const serverFile = path.join(dir, "server.pem");
    fs.writeFileSync(caFile, await value(ca.certPem));
    fs.writeFileSync(serverFile, await value(server.certPem));
    const out = execFileSync(
      "openssl",
      [
        "verify",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "reg.casd.local",
        "-CAfile",
        caFile,
        serverFile,
      ],
      { encoding: "utf8" },
    );
    expect(out).toBe(`${serverFile}: OK\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  expect(seen.map((s) => `${s.type} ${s.name}`).sort()).toEqual([
    "tls:index/certRequest:CertRequest server-csr",
    "tls:index/locallySignedCert:LocallySignedCert server",
    "tls:index/privateKey:PrivateKey ca-key",
    "tls:index/privateKey:PrivateKey server-key",
    "tls:index/selfSignedCert:SelfSignedCert ca",
  ]);
  expect(await value(server.id)).toBe(seen.find((s) => s.name === "server")?.id);
  expect(await value(server.id)).toMatch(/^[0-9]+$/);
});
