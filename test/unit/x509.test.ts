/**
 * test/support/x509.ts materializes tls:* resources as real keys, CSRs and certificates.
 * Checked with the real openssl and ssh-keygen binaries and with real TLS handshakes.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import {
  SECRET_SIG,
  SECRET_SIG_VALUE,
  TlsProviderError,
  UNKNOWN_VALUE,
  isReadyForRenewal,
  isTlsToken,
  isWrappedSecret,
  materializeTls,
  parseIp,
  tlsResourceId,
  unwrapSecrets,
  wrapSecret,
} from "../support/x509";

const KEY = "tls:index/privateKey:PrivateKey";
const SELF = "tls:index/selfSignedCert:SelfSignedCert";
const CSR = "tls:index/certRequest:CertRequest";
const SIGNED = "tls:index/locallySignedCert:LocallySignedCert";

type Plain = Record<string, unknown> & {
  privateKeyPem: string;
  certPem: string;
  certRequestPem: string;
  publicKeyPem: string;
};

async function make(
  type: Parameters<typeof materializeTls>[0],
  inputs: Record<string, unknown>,
  now?: Date,
): Promise<Plain> {
  return unwrapSecrets(await materializeTls(type, inputs, now)) as Plain;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "casd-x509-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, content: string, mode = 0o644): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, content, { mode });
  return file;
}

/** Run a binary; its exit code and both streams (no throw on failure). */
function run(bin: string, args: string[]): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { code: 0, out, err: "" };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? -1, out: x.stdout ?? "", err: x.stderr ?? "" };
  }
}

const openssl = (...args: string[]) => run("openssl", args);

/** The "X509v3 extensions" block of `openssl x509 -text`: name -> critical flag and value. */
function extensionsOf(text: string): Record<string, { critical: boolean; value: string }> {
  const lines = text.split("\n");
  const out: Record<string, { critical: boolean; value: string }> = {};
  let current: string | undefined;
  for (const line of lines.slice(lines.findIndex((l) => l.trim() === "X509v3 extensions:") + 1)) {
    if (/^ {4}\S/.test(line)) break;
    const m = /^ {12}X509v3 (.+?):( critical)?\s*$/.exec(line);
    if (m) {
      current = m[1];
      out[current] = { critical: m[2] !== undefined, value: "" };
    } else if (current) {
      out[current].value = [out[current].value, line.trim()].filter((v) => v).join("\n");
    }
  }
  return out;
}

const colonHex = (b: Buffer): string =>
  (b.toString("hex").toUpperCase().match(/../g) ?? []).join(":");

/** SHA-1 of the SubjectPublicKeyInfo's BIT STRING content, computed here from the key itself. */
function method1KeyId(publicKeyPem: string): string {
  const key = crypto.createPublicKey(publicKeyPem);
  const jwk = key.export({ format: "jwk" });
  const bits =
    key.asymmetricKeyType === "rsa"
      ? key.export({ type: "pkcs1", format: "der" })
      : Buffer.concat([
          Buffer.from([4]),
          Buffer.from(jwk.x as string, "base64url"),
          Buffer.from(jwk.y as string, "base64url"),
        ]);
  return colonHex(crypto.createHash("sha1").update(bits).digest());
}

interface Pki {
  caKey: Plain;
  ca: Plain;
  serverKey: Plain;
  csr: Plain;
  server: Plain;
  files: { ca: string; server: string; serverKey: string; caKey: string; csr: string };
}

/** The registry PKI the way the project builds it: a root CA and the registry's server cert. */
async function buildPki(
  label: string,
  caKeyArgs: Record<string, unknown>,
  serverKeyArgs: Record<string, unknown>,
  serverUses: string[],
): Promise<Pki> {
  const caKey = await make(KEY, caKeyArgs);
  const ca = await make(SELF, {
    privateKeyPem: wrapSecret(caKey.privateKeyPem),
    subject: { commonName: "CASD Registry Root CA", organization: "CASD" },
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
    setSubjectKeyId: true,
    maxPathLength: 0,
    validityPeriodHours: 87600,
  });
  const serverKey = await make(KEY, serverKeyArgs);
  const csr = await make(CSR, {
    privateKeyPem: wrapSecret(serverKey.privateKeyPem),
    subject: { commonName: "reg.casd.local" },
    dnsNames: ["reg.casd.local"],
    ipAddresses: ["10.50.6.62"],
  });
  const server = await make(SIGNED, {
    certRequestPem: csr.certRequestPem,
    caPrivateKeyPem: wrapSecret(caKey.privateKeyPem),
    caCertPem: ca.certPem,
    allowedUses: serverUses,
    setSubjectKeyId: true,
    validityPeriodHours: 4800,
  });
  return {
    caKey,
    ca,
    serverKey,
    csr,
    server,
    files: {
      ca: write(`${label}-ca.pem`, ca.certPem),
      caKey: write(`${label}-ca.key`, caKey.privateKeyPem, 0o600),
      server: write(`${label}-server.pem`, server.certPem),
      serverKey: write(`${label}-server.key`, serverKey.privateKeyPem, 0o600),
      csr: write(`${label}-server.csr`, csr.certRequestPem),
    },
  };
}

const variants: {
  label: string;
  caKey: Record<string, unknown>;
  serverKey: Record<string, unknown>;
  uses: string[];
  sigAlg: string;
  caKeyText: string[];
  serverKeyText: string[];
  keyPemHeader: string;
  serverKeyUsage: string;
}[] = [
  {
    label: "ecdsa",
    caKey: { algorithm: "ECDSA", ecdsaCurve: "P384" },
    serverKey: { algorithm: "ECDSA", ecdsaCurve: "P256" },
    uses: ["digital_signature", "server_auth"],
    sigAlg: "ecdsa-with-SHA384",
    caKeyText: ["Private-Key: (384 bit)", "ASN1 OID: secp384r1"],
    serverKeyText: ["Private-Key: (256 bit)", "ASN1 OID: prime256v1"],
    keyPemHeader: "-----BEGIN EC PRIVATE KEY-----\n",
    serverKeyUsage: "Digital Signature",
  },
  {
    label: "rsa",
    caKey: { algorithm: "RSA", rsaBits: 3072 },
    serverKey: { algorithm: "RSA", rsaBits: 3072 },
    uses: ["digital_signature", "key_encipherment", "server_auth"],
    sigAlg: "sha256WithRSAEncryption",
    caKeyText: ["Private-Key: (3072 bit, 2 primes)"],
    serverKeyText: ["Private-Key: (3072 bit, 2 primes)"],
    keyPemHeader: "-----BEGIN RSA PRIVATE KEY-----\n",
    serverKeyUsage: "Digital Signature, Key Encipherment",
  },
];

describe("isTlsToken", () => {
  it("accepts exactly the four tls tokens", () => {
    expect([KEY, SELF, CSR, SIGNED].map(isTlsToken)).toEqual([true, true, true, true]);
    expect(isTlsToken("tls:index/privateKey:Other")).toBe(false);
    expect(isTlsToken("command:remote:Command")).toBe(false);
  });
});

describe.each(variants)("registry PKI, $label keys", (v) => {
  let pki: Pki;
  beforeAll(async () => {
    pki = await buildPki(v.label, v.caKey, v.serverKey, v.uses);
  }, 30_000);

  it("openssl verifies the server certificate for reg.casd.local and 10.50.6.62 only", () => {
    const ok = openssl(
      "verify",
      "-purpose",
      "sslserver",
      "-verify_hostname",
      "reg.casd.local",
      "-CAfile",
      pki.files.ca,
      pki.files.server,
    );
    expect(ok).toEqual({ code: 0, out: `${pki.files.server}: OK\n`, err: "" });
    const ip = openssl(
      "verify",
      "-verify_ip",
      "10.50.6.62",
      "-CAfile",
      pki.files.ca,
      pki.files.server,
    );
    expect(ip.code).toBe(0);

    const other = openssl(
      "verify",
      "-purpose",
      "sslserver",
      "-verify_hostname",
      "other.casd.local",
      "-CAfile",
      pki.files.ca,
      pki.files.server,
    );
    expect(other.code).toBe(2);
    expect(other.err).toContain("error 62 at 0 depth lookup: hostname mismatch");
    const otherIp = openssl(
      "verify",
      "-verify_ip",
      "10.50.6.63",
      "-CAfile",
      pki.files.ca,
      pki.files.server,
    );
    expect(otherIp.err).toContain("IP address mismatch");
  });

  it("the CA carries exactly the provider's CA extensions", () => {
    const text = openssl("x509", "-in", pki.files.ca, "-noout", "-text").out;
    expect(text).toContain("        Issuer: O = CASD, CN = CASD Registry Root CA\n");
    expect(text).toContain("        Subject: O = CASD, CN = CASD Registry Root CA\n");
    expect(text).toContain(`    Signature Algorithm: ${v.sigAlg}\n`);
    expect(extensionsOf(text)).toEqual({
      "Key Usage": { critical: true, value: "Certificate Sign, CRL Sign" },
      // maxPathLength 0: the provider sets Go's MaxPathLen 0 without MaxPathLenZero, so no pathlen.
      "Basic Constraints": { critical: true, value: "CA:TRUE" },
      "Subject Key Identifier": { critical: false, value: method1KeyId(pki.caKey.publicKeyPem) },
    });
  });

  it("the server certificate has the usages, SANs, key ids and validity asked for", () => {
    const text = openssl("x509", "-in", pki.files.server, "-noout", "-text").out;
    expect(text).toContain("        Issuer: O = CASD, CN = CASD Registry Root CA\n");
    expect(text).toContain("        Subject: CN = reg.casd.local\n");
    const caSki = extensionsOf(openssl("x509", "-in", pki.files.ca, "-noout", "-text").out)[
      "Subject Key Identifier"
    ].value;
    expect(extensionsOf(text)).toEqual({
      "Key Usage": { critical: true, value: v.serverKeyUsage },
      "Extended Key Usage": { critical: false, value: "TLS Web Server Authentication" },
      "Basic Constraints": { critical: true, value: "CA:FALSE" },
      "Subject Key Identifier": {
        critical: false,
        value: method1KeyId(pki.serverKey.publicKeyPem),
      },
      "Authority Key Identifier": { critical: false, value: caSki },
      "Subject Alternative Name": {
        critical: false,
        value: "DNS:reg.casd.local, IP Address:10.50.6.62",
      },
    });

    const dates = openssl("x509", "-in", pki.files.server, "-noout", "-startdate", "-enddate").out;
    const [, start, end] = /notBefore=(.+)\nnotAfter=(.+)\n/.exec(dates) ?? [];
    expect(Date.parse(end) - Date.parse(start)).toBe(4800 * 3_600_000);
    expect(
      Date.parse(pki.server.validityEndTime as string) -
        Date.parse(pki.server.validityStartTime as string),
    ).toBe(4800 * 3_600_000);
    expect(Math.floor(Date.parse(pki.server.validityStartTime as string) / 1000) * 1000).toBe(
      Date.parse(start),
    );
    expect(pki.server.readyForRenewal).toBe(false);
    expect(pki.server.caKeyAlgorithm).toBe(v.label === "rsa" ? "RSA" : "ECDSA");
    expect(pki.ca.keyAlgorithm).toBe(v.label === "rsa" ? "RSA" : "ECDSA");
  });

  it("keys are of the requested type and in the provider's PEM formats", () => {
    const caKeyText = openssl("pkey", "-in", pki.files.caKey, "-noout", "-text").out;
    const serverKeyText = openssl("pkey", "-in", pki.files.serverKey, "-noout", "-text").out;
    for (const line of v.caKeyText) expect(caKeyText).toContain(line);
    for (const line of v.serverKeyText) expect(serverKeyText).toContain(line);
    expect(pki.caKey.privateKeyPem.startsWith(v.keyPemHeader)).toBe(true);
    expect(
      (pki.caKey.privateKeyPemPkcs8 as string).startsWith("-----BEGIN PRIVATE KEY-----\n"),
    ).toBe(true);
    expect(pki.caKey.publicKeyPem.startsWith("-----BEGIN PUBLIC KEY-----\n")).toBe(true);
    const pub = openssl("x509", "-in", pki.files.server, "-noout", "-pubkey").out;
    expect(pub).toBe(pki.serverKey.publicKeyPem);
  });

  it("the CSR is a valid PKCS#10 request with the subject and SANs", () => {
    const r = openssl("req", "-in", pki.files.csr, "-noout", "-text", "-verify");
    expect(r.code).toBe(0);
    expect(r.out).toContain("        Subject: CN = reg.casd.local\n");
    expect(r.out).toMatch(
      /Requested Extensions:\n\s+X509v3 Subject Alternative Name: \n\s+DNS:reg\.casd\.local, IP Address:10\.50\.6\.62\n/,
    );
    expect(pki.csr.keyAlgorithm).toBe(v.label === "rsa" ? "RSA" : "ECDSA");
  });

  describe("TLS handshake against a Node https server with the full chain", () => {
    let server: https.Server;
    let port: number;
    beforeAll(async () => {
      server = https.createServer(
        { key: pki.serverKey.privateKeyPem, cert: pki.server.certPem + pki.ca.certPem },
        (_req, res) => res.end("registry"),
      );
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    function get(opts: https.RequestOptions): Promise<{ body?: string; code?: string }> {
      return new Promise((resolve) => {
        const req = https.request(
          { host: "127.0.0.1", port, path: "/v2/", agent: false, ...opts },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () => resolve({ body }));
          },
        );
        req.on("error", (e: NodeJS.ErrnoException) => resolve({ code: e.code }));
        req.end();
      });
    }

    it("succeeds with only the CA trusted and servername reg.casd.local", async () => {
      expect(await get({ ca: pki.ca.certPem, servername: "reg.casd.local" })).toEqual({
        body: "registry",
      });
    });

    it("fails without the CA", async () => {
      expect(await get({ servername: "reg.casd.local" })).toEqual({
        code: "SELF_SIGNED_CERT_IN_CHAIN",
      });
    });

    it("fails for another name", async () => {
      expect(await get({ ca: pki.ca.certPem, servername: "other.casd.local" })).toEqual({
        code: "ERR_TLS_CERT_ALTNAME_INVALID",
      });
    });
  });
});

describe("certificate semantics", () => {
  let ecKey: Plain;
  beforeAll(async () => {
    ecKey = await make(KEY, { algorithm: "ECDSA", ecdsaCurve: "P256" });
  });

  const selfSigned = (extra: Record<string, unknown>, now?: Date) =>
    make(
      SELF,
      {
        privateKeyPem: ecKey.privateKeyPem,
        subject: { commonName: "t" },
        allowedUses: [],
        validityPeriodHours: 10,
        ...extra,
      },
      now,
    );

  const textOf = (pem: string) =>
    openssl("x509", "-in", write("t.pem", pem), "-noout", "-text").out;

  it("times are RFC 3339 from `now`, not-before truncated to the second in the certificate", async () => {
    const now = new Date("2026-03-01T10:00:00.250Z");
    const c = await selfSigned({ validityPeriodHours: 4800 }, now);
    expect(c.validityStartTime).toBe("2026-03-01T10:00:00.25Z");
    expect(c.validityEndTime).toBe("2026-09-17T10:00:00.25Z");
    const x = new crypto.X509Certificate(c.certPem);
    expect([x.validFrom, x.validTo]).toEqual([
      "Mar  1 10:00:00 2026 GMT",
      "Sep 17 10:00:00 2026 GMT",
    ]);
    const whole = await selfSigned({}, new Date("2026-03-01T10:00:00.000Z"));
    expect([whole.validityStartTime, whole.validityEndTime]).toEqual([
      "2026-03-01T10:00:00Z",
      "2026-03-01T20:00:00Z",
    ]);
  });

  it("readyForRenewal flips when earlyRenewalHours reaches the validity period", async () => {
    const now = new Date("2026-03-01T10:00:00Z");
    const at = async (early: number) =>
      (await selfSigned({ validityPeriodHours: 10, earlyRenewalHours: early }, now))
        .readyForRenewal;
    expect([await at(0), await at(2), await at(9), await at(10), await at(11)]).toEqual([
      false,
      false,
      false,
      true,
      true,
    ]);
    const c = await selfSigned({ validityPeriodHours: 10, earlyRenewalHours: 2 }, now);
    expect(c.earlyRenewalHours).toBe(2);
    const ms = (iso: string) => new Date(iso);
    // The provider's read-time check for the same certificate: ready from end - 2 h on.
    expect(isReadyForRenewal(c.validityEndTime as string, 2, ms("2026-03-01T17:59:59.999Z"))).toBe(
      false,
    );
    expect(isReadyForRenewal(c.validityEndTime as string, 2, ms("2026-03-01T18:00:00Z"))).toBe(
      true,
    );
    expect(isReadyForRenewal(c.validityEndTime as string, 2, ms("2026-03-01T21:30:00Z"))).toBe(
      true,
    );
  });

  it("maxPathLength: -1 and 0 give no pathlen, 2 gives pathlen:2; only CAs may set one", async () => {
    const bc = async (extra: Record<string, unknown>) =>
      extensionsOf(textOf((await selfSigned({ isCaCertificate: true, ...extra })).certPem))[
        "Basic Constraints"
      ];
    expect(await bc({})).toEqual({ critical: true, value: "CA:TRUE" });
    expect(await bc({ maxPathLength: 0 })).toEqual({ critical: true, value: "CA:TRUE" });
    expect(await bc({ maxPathLength: 2 })).toEqual({ critical: true, value: "CA:TRUE, pathlen:2" });
    expect((await selfSigned({})).maxPathLength).toBe(-1);
    await expect(selfSigned({ maxPathLength: 1 })).rejects.toThrow(
      "Failed to create certificate: x509: only CAs are allowed to specify MaxPathLen",
    );
    // 0 on a non-CA is Go's "unset": accepted, CA:FALSE.
    const leaf = await selfSigned({ maxPathLength: 0 });
    expect(extensionsOf(textOf(leaf.certPem))["Basic Constraints"]).toEqual({
      critical: true,
      value: "CA:FALSE",
    });
  });

  it("a CA always gets a subject key id and needs a subject", async () => {
    const ca = await selfSigned({ isCaCertificate: true, allowedUses: ["cert_signing"] });
    expect(extensionsOf(textOf(ca.certPem))["Subject Key Identifier"].value).toBe(
      method1KeyId(ecKey.publicKeyPem),
    );
    await expect(selfSigned({ isCaCertificate: true, subject: undefined })).rejects.toThrow(
      "Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
    );
  });

  it("setAuthorityKeyId on a self-signed cert repeats its own key id, and needs one", async () => {
    const c = await selfSigned({ setSubjectKeyId: true, setAuthorityKeyId: true });
    const ext = extensionsOf(textOf(c.certPem));
    expect(ext["Authority Key Identifier"].value).toBe(ext["Subject Key Identifier"].value);
    await expect(selfSigned({ setAuthorityKeyId: true })).rejects.toThrow(
      "Invalid Certificate Authority: Could not determine Authority Key Identifier",
    );
  });

  it("no allowed uses: no key usage extensions; SANs of every kind, IPv6 and URIs", async () => {
    const c = await selfSigned({
      subject: {
        country: "FR",
        province: "IDF",
        locality: "Paris",
        streetAddresses: ["1 rue A", "2 rue B"],
        postalCode: "75001",
        organization: "CASD",
        organizationalUnit: "Platform",
        commonName: "reg.casd.local",
        serialNumber: "42",
        emailAddress: "ops@casd.local",
      },
      dnsNames: ["reg.casd.local", "registry"],
      ipAddresses: ["10.50.6.62", "fd00::62", "::ffff:10.0.0.1"],
      uris: ["spiffe://casd/registry"],
    });
    const text = textOf(c.certPem);
    expect(text).toContain(
      "        Subject: C = FR, ST = IDF, L = Paris, street = 1 rue A + street = 2 rue B, postalCode = 75001, O = CASD, OU = Platform, CN = reg.casd.local, serialNumber = 42, emailAddress = ops@casd.local\n",
    );
    expect(extensionsOf(text)).toEqual({
      "Basic Constraints": { critical: true, value: "CA:FALSE" },
      "Subject Alternative Name": {
        critical: false,
        value:
          "DNS:reg.casd.local, DNS:registry, IP Address:10.50.6.62, IP Address:FD00:0:0:0:0:0:0:62, IP Address:10.0.0.1, URI:spiffe://casd/registry",
      },
    });
  });

  it("a subject-less certificate marks its SANs critical (RFC 5280 4.2.1.6, as Go does)", async () => {
    const c = await selfSigned({ subject: undefined, dnsNames: ["reg.casd.local"] });
    expect(extensionsOf(textOf(c.certPem))["Subject Alternative Name"]).toEqual({
      critical: true,
      value: "DNS:reg.casd.local",
    });
  });

  it("serials are random, positive, at most 128 bits; the id is the serial in decimal", async () => {
    const a = await selfSigned({});
    const b = await selfSigned({});
    const serial = (p: string) => BigInt(`0x${new crypto.X509Certificate(p).serialNumber}`);
    expect(serial(a.certPem)).not.toBe(serial(b.certPem));
    for (const s of [serial(a.certPem), serial(b.certPem)]) {
      expect(s > 0n && s < 1n << 128n).toBe(true);
    }
    expect(tlsResourceId(SELF, a)).toBe(serial(a.certPem).toString());
  });

  it("a locally signed CA gets a key id without setSubjectKeyId, and chains below the root", async () => {
    const root = await selfSigned({
      subject: { commonName: "Root" },
      isCaCertificate: true,
      allowedUses: ["cert_signing"],
      validityPeriodHours: 48,
    });
    const midKey = await make(KEY, { algorithm: "ED25519" });
    const midCsr = await make(CSR, {
      privateKeyPem: midKey.privateKeyPem,
      subject: { commonName: "Mid" },
    });
    const mid = await make(SIGNED, {
      certRequestPem: midCsr.certRequestPem,
      caPrivateKeyPem: ecKey.privateKeyPem,
      caCertPem: root.certPem,
      isCaCertificate: true,
      allowedUses: ["cert_signing"],
      validityPeriodHours: 24,
    });
    const ext = extensionsOf(textOf(mid.certPem));
    // ED25519: the provider hashes the key's ASN.1 OCTET STRING (04 20 || key), not the raw key.
    const raw = Buffer.from(
      crypto.createPublicKey(midKey.publicKeyPem).export({ format: "jwk" }).x as string,
      "base64url",
    );
    const expected = colonHex(
      crypto
        .createHash("sha1")
        .update(Buffer.concat([Buffer.from([4, 32]), raw]))
        .digest(),
    );
    expect(ext["Subject Key Identifier"].value).toBe(expected);
    expect(ext["Authority Key Identifier"].value).toBe(method1KeyId(ecKey.publicKeyPem));
    expect(mid.caKeyAlgorithm).toBe("ECDSA");
    const r = openssl(
      "verify",
      "-CAfile",
      write("root.pem", root.certPem),
      write("mid.pem", mid.certPem),
    );
    expect(r.code).toBe(0);
  });

  it("refuses a CA key that does not match the CA certificate", async () => {
    const ca = await selfSigned({ isCaCertificate: true, allowedUses: ["cert_signing"] });
    const other = await make(KEY, { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const csr = await make(CSR, {
      privateKeyPem: other.privateKeyPem,
      subject: { commonName: "x" },
    });
    await expect(
      make(SIGNED, {
        certRequestPem: csr.certRequestPem,
        caPrivateKeyPem: other.privateKeyPem,
        caCertPem: ca.certPem,
        allowedUses: [],
        validityPeriodHours: 1,
      }),
    ).rejects.toThrow("x509: provided PrivateKey doesn't match parent's PublicKey");
  });

  it("validates allowedUses, validity and IPs as the provider's schema does", async () => {
    await expect(selfSigned({ allowedUses: ["certSigning"] })).rejects.toThrow(
      'allowedUses[0] value must be one of: ["any_extended","cert_signing",',
    );
    await expect(selfSigned({ validityPeriodHours: -1 })).rejects.toThrow(
      "validityPeriodHours value must be at least 0, got: -1",
    );
    await expect(selfSigned({ ipAddresses: ["10.50.6.300"] })).rejects.toThrow(
      'Invalid IP address: Failed to parse "10.50.6.300"',
    );
    await expect(selfSigned({ validityPeriodHours: UNKNOWN_VALUE })).rejects.toThrow(
      "validityPeriodHours is not known yet",
    );
    await expect(selfSigned({ privateKeyPem: ecKey.publicKeyPem })).rejects.toThrow(
      TlsProviderError,
    );
  });
});

describe("private keys: provider defaults and encodings", () => {
  it("RSA defaults to 2048 bits and PKCS#1; both defaults are in the outputs", async () => {
    const raw = await materializeTls(KEY, { algorithm: "RSA" });
    expect(Object.keys(raw).sort()).toEqual([
      "algorithm",
      "ecdsaCurve",
      "privateKeyOpenssh",
      "privateKeyPem",
      "privateKeyPemPkcs8",
      "publicKeyFingerprintMd5",
      "publicKeyFingerprintSha256",
      "publicKeyOpenssh",
      "publicKeyPem",
      "rsaBits",
    ]);
    const k = unwrapSecrets(raw) as Plain;
    expect([k.rsaBits, k.ecdsaCurve]).toEqual([2048, "P224"]);
    const text = openssl(
      "pkey",
      "-in",
      write("rsa.key", k.privateKeyPem, 0o600),
      "-noout",
      "-text",
    ).out;
    expect(text).toContain("Private-Key: (2048 bit, 2 primes)");
    expect(k.privateKeyPem.startsWith("-----BEGIN RSA PRIVATE KEY-----\n")).toBe(true);
    expect(tlsResourceId(KEY, raw)).toMatch(/^[0-9a-f]{40}$/);
  });

  it("ECDSA defaults to P224, which has no OpenSSH encoding", async () => {
    const k = await make(KEY, { algorithm: "ECDSA" });
    const text = openssl(
      "pkey",
      "-in",
      write("p224.key", k.privateKeyPem, 0o600),
      "-noout",
      "-text",
    ).out;
    expect(text).toContain("ASN1 OID: secp224r1");
    expect(k.privateKeyPem.startsWith("-----BEGIN EC PRIVATE KEY-----\n")).toBe(true);
    expect([k.ecdsaCurve, k.rsaBits]).toEqual(["P224", 2048]);
    expect([
      k.privateKeyOpenssh,
      k.publicKeyOpenssh,
      k.publicKeyFingerprintMd5,
      k.publicKeyFingerprintSha256,
    ]).toEqual(["", "", "", ""]);
    // A P224 key still makes certificates (ECDSA with SHA-256, as Go picks).
    const c = await make(SELF, {
      privateKeyPem: k.privateKeyPem,
      subject: { commonName: "p224" },
      allowedUses: [],
      validityPeriodHours: 1,
    });
    expect(openssl("x509", "-in", write("p224.pem", c.certPem), "-noout", "-text").out).toContain(
      "Signature Algorithm: ecdsa-with-SHA256",
    );
  });

  it("ED25519 keys are PKCS#8 in privateKeyPem", async () => {
    const k = await make(KEY, { algorithm: "ED25519" });
    expect(k.privateKeyPem).toBe(k.privateKeyPemPkcs8);
    expect(k.privateKeyPem.startsWith("-----BEGIN PRIVATE KEY-----\n")).toBe(true);
    expect(
      openssl("pkey", "-in", write("ed.key", k.privateKeyPem, 0o600), "-noout", "-text").out,
    ).toContain("ED25519 Private-Key:");
  });

  it.each([
    [{ algorithm: "RSA" }, "ssh-rsa", "2048", "RSA"],
    [{ algorithm: "ECDSA", ecdsaCurve: "P256" }, "ecdsa-sha2-nistp256", "256", "ECDSA"],
    [{ algorithm: "ECDSA", ecdsaCurve: "P521" }, "ecdsa-sha2-nistp521", "521", "ECDSA"],
    [{ algorithm: "ED25519" }, "ssh-ed25519", "256", "ED25519"],
  ])("OpenSSH outputs of %j agree with ssh-keygen", async (args, sshType, bits, kind) => {
    const k = await make(KEY, args);
    const file = write(`ssh-${sshType}`, k.privateKeyOpenssh as string, 0o600);
    expect((k.publicKeyOpenssh as string).startsWith(`${sshType} `)).toBe(true);
    expect((k.publicKeyOpenssh as string).endsWith("\n")).toBe(true);
    expect(run("ssh-keygen", ["-y", "-f", file]).out).toBe(k.publicKeyOpenssh);
    expect(run("ssh-keygen", ["-l", "-E", "md5", "-f", file]).out).toBe(
      `${bits} MD5:${k.publicKeyFingerprintMd5 as string}  (${kind})\n`,
    );
    expect(run("ssh-keygen", ["-l", "-E", "sha256", "-f", file]).out).toBe(
      `${bits} ${k.publicKeyFingerprintSha256 as string}  (${kind})\n`,
    );
  });

  it("rejects what the provider rejects", async () => {
    await expect(materializeTls(KEY, { algorithm: "DSA" })).rejects.toThrow(
      'algorithm value must be one of: ["RSA","ECDSA","ED25519"], got: "DSA"',
    );
    await expect(materializeTls(KEY, { algorithm: "ECDSA", ecdsaCurve: "P192" })).rejects.toThrow(
      'ecdsaCurve value must be one of: ["P224","P256","P384","P521"], got: "P192"',
    );
  });
});

describe("secrets", () => {
  it("unwraps wrapped inputs (also nested) and returns private keys wrapped", async () => {
    const key = await materializeTls(KEY, { algorithm: "ECDSA", ecdsaCurve: "P256" });
    expect(isWrappedSecret(key.privateKeyPem)).toBe(true);
    expect(isWrappedSecret(key.privateKeyPemPkcs8)).toBe(true);
    expect(isWrappedSecret(key.privateKeyOpenssh)).toBe(true);
    expect(typeof key.publicKeyPem).toBe("string");
    expect(Object.keys(key.privateKeyPem as object).sort()).toEqual([SECRET_SIG, "value"].sort());
    expect((key.privateKeyPem as Record<string, unknown>)[SECRET_SIG]).toBe(SECRET_SIG_VALUE);

    const cert = await materializeTls(SELF, {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName: wrapSecret("secret.casd.local") },
      allowedUses: wrapSecret(["digital_signature"]),
      validityPeriodHours: 1,
    });
    expect(cert.privateKeyPem).toEqual(key.privateKeyPem);
    expect(typeof cert.certPem).toBe("string");
    const x = new crypto.X509Certificate(cert.certPem as string);
    expect(x.subject).toBe("CN=secret.casd.local");
    expect(
      x.checkPrivateKey(crypto.createPrivateKey(unwrapSecrets(key.privateKeyPem) as string)),
    ).toBe(true);
    expect(unwrapSecrets({ a: [wrapSecret({ b: wrapSecret(1) })] })).toEqual({ a: [{ b: 1 }] });
  });
});

describe("parseIp (Go's net.ParseIP + To4)", () => {
  it.each([
    ["10.50.6.62", "0a32063e"],
    ["::1", "00000000000000000000000000000001"],
    ["fd00::62", "fd000000000000000000000000000062"],
    ["::ffff:10.0.0.1", "0a000001"],
    ["2001:db8::10.0.0.1", "20010db800000000000000000a000001"],
  ])("%s", (ip, hex) => {
    expect(parseIp(ip)?.toString("hex")).toBe(hex);
  });
  it("rejects non-addresses", () => {
    expect([parseIp("10.0.0"), parseIp("reg.casd.local"), parseIp("fe80::1%eth0")]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});
