import { tlsServerCertValidity } from "../../policies/tls-server-cert-validity";
import { runResource, UNKNOWN_NUMBER, withField } from "./support";

const TYPE = "tls:index/locallySignedCert:LocallySignedCert";

/** 200 days, renewed 60 days early. */
const SERVER = {
  certRequestPem: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n",
  allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
  validityPeriodHours: 4800,
  earlyRenewalHours: 1440,
};

const run = (props: Record<string, unknown>, config?: Record<string, unknown>) =>
  runResource(tlsServerCertValidity, { type: TYPE, props, config });

describe("tls-server-cert-validity", () => {
  it("is mandatory and configurable", () => {
    expect(tlsServerCertValidity.enforcementLevel).toBe("mandatory");
    expect(tlsServerCertValidity.configSchema?.properties.maxServerValidityDays.default).toBe(200);
  });

  it.each([
    ["200 days renewed at 60", SERVER],
    ["early renewal at exactly a quarter", withField(SERVER, ["earlyRenewalHours"], 1200)],
    ["early renewal at exactly a half", withField(SERVER, ["earlyRenewalHours"], 2400)],
    ["90 days renewed at 30", { ...SERVER, validityPeriodHours: 2160, earlyRenewalHours: 720 }],
  ])("accepts %s", async (_label, props) => {
    expect(await run(props)).toEqual([]);
  });

  it.each([
    [
      "validity over the cap",
      ["validityPeriodHours"],
      4824,
      "validityPeriodHours is 4824; a server certificate may be valid at most 200 days (4800 hours).",
    ],
    [
      "no early renewal",
      ["earlyRenewalHours"],
      undefined,
      "earlyRenewalHours is not set, so the certificate is renewed only once expired; set it between 1200 and 2400 hours (a quarter to a half of validityPeriodHours 4800).",
    ],
    [
      "early renewal under a quarter",
      ["earlyRenewalHours"],
      1199,
      "earlyRenewalHours is 1199; set it between 1200 and 2400 hours (a quarter to a half of validityPeriodHours 4800).",
    ],
    [
      "early renewal over a half",
      ["earlyRenewalHours"],
      2401,
      "earlyRenewalHours is 2401; set it between 1200 and 2400 hours (a quarter to a half of validityPeriodHours 4800).",
    ],
  ])("refuses %s", async (_label, path, value, message) => {
    expect(await run(withField(SERVER, path, value))).toEqual([message]);
  });

  it("reads the cap from config", async () => {
    expect(await run(SERVER, { maxServerValidityDays: 90 })).toEqual([
      "validityPeriodHours is 4800; a server certificate may be valid at most 90 days (2160 hours).",
    ]);
  });

  it("leaves CA certificates alone", async () => {
    expect(
      await run({
        ...SERVER,
        isCaCertificate: true,
        validityPeriodHours: 87600,
        earlyRenewalHours: 0,
      }),
    ).toEqual([]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withField(SERVER, ["validityPeriodHours"], UNKNOWN_NUMBER))).toEqual([]);
    expect(await run(withField(SERVER, ["earlyRenewalHours"], UNKNOWN_NUMBER))).toEqual([]);
  });
});
