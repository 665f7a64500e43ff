import { tlsServerCertProfile } from "../../policies/tls-server-cert-profile";
import { runResource, UNKNOWN_ARRAY, UNKNOWN_STRING, withField } from "./support";

const TYPE = "tls:index/locallySignedCert:LocallySignedCert";

const SERVER = {
  certRequestPem: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n",
  caCertPem: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
  caPrivateKeyPem: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
  allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
  validityPeriodHours: 4800,
  earlyRenewalHours: 1440,
};

const run = (props: Record<string, unknown>) =>
  runResource(tlsServerCertProfile, { type: TYPE, props });

describe("tls-server-cert-profile", () => {
  it("is mandatory", () => {
    expect(tlsServerCertProfile.enforcementLevel).toBe("mandatory");
  });

  it("accepts the server profile", async () => {
    expect(await run(SERVER)).toEqual([]);
    expect(await run(withField(SERVER, ["isCaCertificate"], false))).toEqual([]);
  });

  it.each([
    [
      "no server_auth",
      ["digital_signature", "key_encipherment"],
      "allowedUses lacks server_auth; a server certificate needs server_auth and digital_signature.",
    ],
    [
      "no digital_signature",
      ["key_encipherment", "server_auth"],
      "allowedUses lacks digital_signature; a server certificate needs server_auth and digital_signature.",
    ],
    [
      "cert_signing",
      ["digital_signature", "server_auth", "cert_signing"],
      "allowedUses contains cert_signing; a server certificate must not allow cert_signing or any_extended.",
    ],
    [
      "any_extended",
      ["digital_signature", "server_auth", "any_extended"],
      "allowedUses contains any_extended; a server certificate must not allow cert_signing or any_extended.",
    ],
  ])("refuses allowedUses with %s", async (_label, uses, message) => {
    expect(await run(withField(SERVER, ["allowedUses"], uses))).toEqual([message]);
  });

  it("leaves CA certificates to tls-ca-profile", async () => {
    expect(await run(withField(SERVER, ["isCaCertificate"], true))).toEqual([]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withField(SERVER, ["allowedUses"], UNKNOWN_ARRAY))).toEqual([]);
    expect(await run(withField(SERVER, ["allowedUses"], ["server_auth", UNKNOWN_STRING]))).toEqual(
      [],
    );
  });
});
