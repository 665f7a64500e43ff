/**
 * Harbor's internal secrets for the Helm path: bcrypt against vectors made
 * with libxcrypt (an independent implementation), and the derivation from
 * the stack seed: exact values, lengths, determinism, no chart default.
 */
import { bcryptBase64, bcryptHash, piWords } from "../../infra/harbor/helm/bcrypt";
import {
  CHART_DEFAULT_SECRETS,
  deriveInternalSecrets,
  deriveString,
  REGISTRY_USERNAME,
} from "../../infra/harbor/helm/secrets";

const SALT = Buffer.from("00112233445566778899aabbccddeeff", "hex");
const SEED = "unit-test-seed-0123456789-abcdefghijklmnop";

describe("bcrypt", () => {
  it("computes Blowfish's initial state from pi (first P word, first S word, last S word)", () => {
    const w = piWords();
    expect(w.length).toBe(1042);
    expect([w[0], w[17], w[18], w[1041]].map((x) => x.toString(16))).toEqual([
      "243f6a88",
      "8979fb1b",
      "d1310ba6",
      "3ac372e6",
    ]);
  });

  it("encodes the salt in bcrypt's base64", () => {
    expect(bcryptBase64(SALT, 22)).toBe("./CgKyPTXlcGkYo5xL1s9u");
  });

  // Expected values: python3 crypt.crypt(password, "$2b$<cost>$./CgKyPTXlcGkYo5xL1s9u") (libxcrypt).
  it.each([
    ["U*U", 5, "$2b$05$./CgKyPTXlcGkYo5xL1s9usbWaDzIPff0OvPvEwXhYRczUXpGLuki"],
    [
      "correct horse battery staple",
      10,
      "$2b$10$./CgKyPTXlcGkYo5xL1s9uPRqh90K./QJs/bZ7/tE8l7lqA5pgEcW",
    ],
    ["", 4, "$2b$04$./CgKyPTXlcGkYo5xL1s9uTVGtMfiX1h8aaHhqY4IvyvGtzgY7lrq"],
    ["x".repeat(80), 4, "$2b$04$./CgKyPTXlcGkYo5xL1s9ur4.s8EOGshY8x/e3Gy8wC.0xOiE2wbu"],
    ["x".repeat(72), 4, "$2b$04$./CgKyPTXlcGkYo5xL1s9ur4.s8EOGshY8x/e3Gy8wC.0xOiE2wbu"],
    ["pässwörd€", 4, "$2b$04$./CgKyPTXlcGkYo5xL1s9usYpT0JGHxsAl.qlq74CryVVokCoTmJG"],
  ])("hashes %j at cost %d like libxcrypt", (password, cost, expected) => {
    expect(bcryptHash(password, SALT, cost)).toBe(expected);
  });

  it("refuses a salt that is not 16 bytes and a cost out of range", () => {
    expect(() => bcryptHash("a", Buffer.alloc(15), 4)).toThrow(
      "bcryptHash: the salt must be 16 bytes, got 15",
    );
    expect(() => bcryptHash("a", SALT, 3)).toThrow("bcryptHash: cost must be 4..31, got 3");
  });
});

describe("deriveInternalSecrets", () => {
  it("derives exact values from the seed", () => {
    // The htpasswd line was checked with python3 crypt.crypt(registryPassword, hash) == hash.
    expect(deriveInternalSecrets(SEED)).toEqual({
      secretKey: "Q9VY6orCgmS7ZFWW",
      coreSecret: "hLD1fm8F6Tc1WzDW",
      xsrfKey: "FUhfvuVVcMZhB5KqduLQsTYRdmnQZoIQ",
      jobserviceSecret: "q2ieuiLMWsC1B4gG",
      registryHttpSecret: "z61paAdDbkgMmMlz",
      registryPassword: "eQJzvVvNtCL379QDQ0xBMusuVQ3ydaDg",
      registryHtpasswd: `${REGISTRY_USERNAME}:$2b$10$pUfuZsXeO.HdQKsfOfYWK.zHa99woOPkm9/OW3itPO6Z5WkzSKf9q`,
    });
  });

  it("gives the lengths Harbor requires: secretKey 16, shared secrets 16, xsrfKey 32", () => {
    const s = deriveInternalSecrets("another seed of more than thirty-two characters");
    expect(
      [
        s.secretKey,
        s.coreSecret,
        s.jobserviceSecret,
        s.registryHttpSecret,
        s.xsrfKey,
        s.registryPassword,
      ].map((v) => v.length),
    ).toEqual([16, 16, 16, 16, 32, 32]);
    expect(s.registryHtpasswd).toMatch(/^casd_registry_user:\$2b\$10\$[./A-Za-z0-9]{53}$/);
  });

  it("is deterministic (a re-render never churns) and every value differs per seed and per label", () => {
    const a = deriveInternalSecrets(SEED);
    expect(deriveInternalSecrets(SEED)).toEqual(a);
    const b = deriveInternalSecrets(`${SEED}!`);
    for (const k of Object.keys(a) as (keyof typeof a)[]) expect(b[k]).not.toBe(a[k]);
    const values = Object.values(a);
    expect(new Set(values).size).toBe(values.length);
  });

  it("never yields a published default", () => {
    const s = deriveInternalSecrets(SEED);
    for (const v of Object.values(s)) expect(CHART_DEFAULT_SECRETS).not.toContain(v);
    expect(CHART_DEFAULT_SECRETS).toEqual([
      "not-a-secure-key",
      "Harbor12345",
      "changeit",
      "harbor_registry_password",
      "password",
    ]);
  });

  it("uses only the alphabet and reaches every symbol of it", () => {
    const text = deriveString(SEED, "histogram", 6200);
    expect(text).toMatch(/^[A-Za-z0-9]{6200}$/);
    expect(new Set(text).size).toBe(62);
    expect(deriveString(SEED, "ab", 64, "ab")).toMatch(/^[ab]{64}$/);
    expect(() => deriveString("", "x", 1)).toThrow("deriveString: the seed is empty");
  });
});
