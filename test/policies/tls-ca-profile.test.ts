import { tlsCaProfile } from "../../policies/tls-ca-profile";
import { runResource, UNKNOWN_ARRAY, UNKNOWN_BOOL, withField } from "./support";

const SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert";
const LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert";

const CA = {
  privateKeyPem: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
  subject: { commonName: "casd registry CA", organization: "casd" },
  isCaCertificate: true,
  setSubjectKeyId: true,
  allowedUses: ["cert_signing", "crl_signing"],
  validityPeriodHours: 87600,
};

const run = (props: Record<string, unknown>, type = SELF_SIGNED) =>
  runResource(tlsCaProfile, { type, props });

describe("tls-ca-profile", () => {
  it("is mandatory", () => {
    expect(tlsCaProfile.enforcementLevel).toBe("mandatory");
  });

  it("accepts the CA profile", async () => {
    expect(await run(CA)).toEqual([]);
    expect(await run(withField(CA, ["allowedUses"], ["crl_signing", "cert_signing"]))).toEqual([]);
  });

  it.each([
    [
      "isCaCertificate false",
      ["isCaCertificate"],
      false,
      "isCaCertificate is not true, yet the certificate may sign; a signing certificate must be a CA with the CA profile.",
    ],
    [
      "isCaCertificate left out",
      ["isCaCertificate"],
      undefined,
      "isCaCertificate is not true, yet the certificate may sign; a signing certificate must be a CA with the CA profile.",
    ],
    [
      "an extra use",
      ["allowedUses"],
      ["cert_signing", "crl_signing", "digital_signature", "server_auth"],
      "allowedUses contains digital_signature, server_auth; a CA certificate allows exactly cert_signing and crl_signing.",
    ],
    [
      "no cert_signing",
      ["allowedUses"],
      ["crl_signing"],
      "allowedUses lacks cert_signing; a CA certificate allows exactly cert_signing and crl_signing.",
    ],
    [
      "no uses at all",
      ["allowedUses"],
      undefined,
      "allowedUses lacks cert_signing, crl_signing; a CA certificate allows exactly cert_signing and crl_signing.",
    ],
    [
      "setSubjectKeyId false",
      ["setSubjectKeyId"],
      false,
      "setSubjectKeyId is not true; the CA certificate needs a subject key identifier.",
    ],
    [
      "setSubjectKeyId left out",
      ["setSubjectKeyId"],
      undefined,
      "setSubjectKeyId is not true; the CA certificate needs a subject key identifier.",
    ],
  ])("refuses %s", async (_label, path, value, message) => {
    expect(await run(withField(CA, path, value))).toEqual([message]);
  });

  it("leaves alone a self-signed certificate that can sign nothing (a token-signing leaf)", async () => {
    const token = {
      ...CA,
      isCaCertificate: false,
      setSubjectKeyId: false,
      allowedUses: ["digital_signature", "key_encipherment"],
    };
    expect(await run(token)).toEqual([]);
  });

  it("applies to a locally signed CA (intermediate) but not to a leaf", async () => {
    const intermediate = {
      ...withField(CA, ["allowedUses"], ["cert_signing", "key_encipherment"]),
    };
    expect(await run(intermediate, LOCALLY_SIGNED)).toEqual([
      "allowedUses lacks crl_signing; a CA certificate allows exactly cert_signing and crl_signing.",
      "allowedUses contains key_encipherment; a CA certificate allows exactly cert_signing and crl_signing.",
    ]);
    const leaf = { isCaCertificate: false, allowedUses: ["server_auth", "digital_signature"] };
    expect(await run(leaf, LOCALLY_SIGNED)).toEqual([]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withField(CA, ["isCaCertificate"], UNKNOWN_BOOL))).toEqual([]);
    expect(await run(withField(CA, ["allowedUses"], UNKNOWN_ARRAY))).toEqual([]);
    expect(await run(withField(CA, ["setSubjectKeyId"], UNKNOWN_BOOL))).toEqual([]);
  });
});
