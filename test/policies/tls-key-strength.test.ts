import { tlsKeyStrength } from "../../policies/tls-key-strength";
import { runResource, UNKNOWN_NUMBER, UNKNOWN_STRING, withField } from "./support";

const TYPE = "tls:index/privateKey:PrivateKey";
const RSA = { algorithm: "RSA", rsaBits: 3072 };
const ECDSA = { algorithm: "ECDSA", ecdsaCurve: "P384" };

const run = (props: Record<string, unknown>, config?: Record<string, unknown>) =>
  runResource(tlsKeyStrength, { type: TYPE, props, config });

describe("tls-key-strength", () => {
  it("is mandatory", () => {
    expect(tlsKeyStrength.enforcementLevel).toBe("mandatory");
  });

  it.each([
    ["RSA 3072", RSA],
    ["RSA 4096", withField(RSA, ["rsaBits"], 4096)],
    ["ECDSA P384", ECDSA],
    ["ECDSA P256", withField(ECDSA, ["ecdsaCurve"], "P256")],
  ])("accepts %s", async (_label, props) => {
    expect(await run(props)).toEqual([]);
  });

  it.each([
    [
      "rsaBits 2048",
      withField(RSA, ["rsaBits"], 2048),
      "rsaBits is 2048; an RSA key needs at least 3072 bits.",
    ],
    [
      "rsaBits left to the provider",
      withField(RSA, ["rsaBits"], undefined),
      "rsaBits is not set, so the provider default of 2048 bits applies; set rsaBits to at least 3072.",
    ],
    [
      "ecdsaCurve P224",
      withField(ECDSA, ["ecdsaCurve"], "P224"),
      "ecdsaCurve is P224; use one of P256, P384.",
    ],
    [
      "ecdsaCurve P521",
      withField(ECDSA, ["ecdsaCurve"], "P521"),
      "ecdsaCurve is P521; use one of P256, P384.",
    ],
    [
      "ecdsaCurve left to the provider",
      withField(ECDSA, ["ecdsaCurve"], undefined),
      "ecdsaCurve is not set, so the provider default P224 applies; set ecdsaCurve to one of P256, P384.",
    ],
    [
      "algorithm ED25519",
      withField(RSA, ["algorithm"], "ED25519"),
      "algorithm is ED25519; use RSA (at least 3072 bits) or ECDSA (P256, P384).",
    ],
  ])("refuses %s", async (_label, props, message) => {
    expect(await run(props)).toEqual([message]);
  });

  it("reads its thresholds from config", async () => {
    expect(await run(RSA, { minRsaBits: 4096 })).toEqual([
      "rsaBits is 3072; an RSA key needs at least 4096 bits.",
    ]);
    expect(
      await run(withField(ECDSA, ["ecdsaCurve"], "P521"), { allowedEcdsaCurves: ["P521"] }),
    ).toEqual([]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run({ algorithm: UNKNOWN_STRING })).toEqual([]);
    expect(await run(withField(RSA, ["rsaBits"], UNKNOWN_NUMBER))).toEqual([]);
    expect(await run(withField(ECDSA, ["ecdsaCurve"], UNKNOWN_STRING))).toEqual([]);
  });

  it("ignores other resource types", async () => {
    expect(
      await runResource(tlsKeyStrength, {
        type: "tls:index/certRequest:CertRequest",
        props: { algorithm: "ED25519" },
      }),
    ).toEqual([]);
  });
});
