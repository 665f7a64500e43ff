/**
 * Real X.509 for mocked `tls:*` resources.
 *
 * `materializeTls` takes a mocked resource's type token and inputs (as
 * `pulumi.runtime.setMocks`' `newResource` receives them) and returns what the tls provider
 * (@pulumi/tls 5.6.1, which bridges hashicorp/terraform-provider-tls built with Go's crypto/x509)
 * returns on create: the inputs, the provider's defaults and the computed outputs, with real keys,
 * certificates and CSRs. Keys come from node:crypto (which, unlike WebCrypto, has P-224); the DER is
 * built here (x509-der.ts) so that it follows Go's encoding choices.
 *
 * Provider semantics followed (read from the provider's code, not only its docs):
 * - PrivateKey: `privateKeyPem` is PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for ED25519;
 *   `rsaBits` defaults to 2048 and `ecdsaCurve` to P224 (both defaults are always in the outputs);
 *   OpenSSH outputs are empty strings for P224.
 * - Certificates: serial random in [1, 2^128); not-before = now, not-after = now + hours;
 *   keyUsage is critical, extendedKeyUsage is not; basicConstraints is always present and critical
 *   (CA:FALSE unless `isCaCertificate`); a CA always gets a subject key id (SHA-1 as the provider
 *   computes it) and must have a non-empty subject.
 * - `maxPathLength`: default -1. The provider copies a value >= 0 into Go's MaxPathLen but never
 *   sets MaxPathLenZero, so 0 (like -1) gives NO pathLenConstraint; 1.. gives pathlen:N; a non-CA
 *   with a value > 0 fails in Go ("only CAs are allowed to specify MaxPathLen").
 * - LocallySignedCert: subject, DNS names, IPs and URIs are taken from the CSR (the subject is
 *   re-encoded Go's way; other SAN types and subject attributes Go does not model are dropped;
 *   the CSR's signature is not checked); the authority key id is the CA certificate's subject key
 *   id when it has one; the CA key must match the CA certificate.
 * - `readyForRenewal` = now >= validityEndTime - earlyRenewalHours, as the provider computes it
 *   when it reads (refreshes) or plans a certificate (see `isReadyForRenewal`). Its Create itself
 *   stores the plan default, false; the two differ only when earlyRenewalHours >=
 *   validityPeriodHours, where the real resource is replaced on the next `up`.
 * Secret handling: values the provider marks secret (private keys) come back in the wrapped
 * secret form, so that mocks keep them secret; `unwrapSecrets` gives plain values.
 */
import * as crypto from "node:crypto";
import * as net from "node:net";
import * as der from "./x509-der";
import { sshEncodings } from "./x509-ssh";

export type TlsToken =
  | "tls:index/privateKey:PrivateKey"
  | "tls:index/selfSignedCert:SelfSignedCert"
  | "tls:index/certRequest:CertRequest"
  | "tls:index/locallySignedCert:LocallySignedCert";

const TLS_TOKENS: readonly string[] = [
  "tls:index/privateKey:PrivateKey",
  "tls:index/selfSignedCert:SelfSignedCert",
  "tls:index/certRequest:CertRequest",
  "tls:index/locallySignedCert:LocallySignedCert",
];

export function isTlsToken(t: string): t is TlsToken {
  return TLS_TOKENS.includes(t);
}

// ------------------------------------------------------------------ secrets and unknowns

/** Key and value of the signature that marks a secret in Pulumi's wire form. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";
/** The string the SDK's mocks use for an unknown value (preview). */
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface WrappedSecret {
  [SECRET_SIG]: typeof SECRET_SIG_VALUE;
  value: unknown;
}

export function isWrappedSecret(v: unknown): v is WrappedSecret {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as Record<string, unknown>)[SECRET_SIG] === SECRET_SIG_VALUE
  );
}

export function wrapSecret(value: unknown): WrappedSecret {
  return isWrappedSecret(value) ? value : { [SECRET_SIG]: SECRET_SIG_VALUE, value };
}

/** A deep copy of `v` with every wrapped secret replaced by its value. */
export function unwrapSecrets(v: unknown): unknown {
  if (isWrappedSecret(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/** An error of the provider, as `pulumi up` would report it (summary: detail). */
export class TlsProviderError extends Error {
  constructor(
    readonly token: TlsToken,
    readonly summary: string,
    readonly detail: string,
  ) {
    super(`${token}: ${summary}: ${detail}`);
    this.name = "TlsProviderError";
  }
}

// ------------------------------------------------------------------ provider vocabulary

/** allowed_uses values that are key usage bits (bit 0 = digitalSignature, as in RFC 5280). */
const KEY_USAGE_BITS: Record<string, number> = {
  digital_signature: 0,
  content_commitment: 1,
  key_encipherment: 2,
  data_encipherment: 3,
  key_agreement: 4,
  cert_signing: 5,
  crl_signing: 6,
  encipher_only: 7,
  decipher_only: 8,
};

/** allowed_uses values that are extended key usages. */
const EXT_KEY_USAGE_OIDS: Record<string, string> = {
  any_extended: "2.5.29.37.0",
  server_auth: "1.3.6.1.5.5.7.3.1",
  client_auth: "1.3.6.1.5.5.7.3.2",
  code_signing: "1.3.6.1.5.5.7.3.3",
  email_protection: "1.3.6.1.5.5.7.3.4",
  ipsec_end_system: "1.3.6.1.5.5.7.3.5",
  ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
  ipsec_user: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocsp_signing: "1.3.6.1.5.5.7.3.9",
  microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
  netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
  microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
  microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

export const SUPPORTED_ALLOWED_USES: readonly string[] = [
  ...Object.keys(KEY_USAGE_BITS),
  ...Object.keys(EXT_KEY_USAGE_OIDS),
].sort();

const CURVES: Record<string, string> = {
  P224: "secp224r1",
  P256: "prime256v1",
  P384: "secp384r1",
  P521: "secp521r1",
};

const OID = {
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  country: "2.5.4.6",
  locality: "2.5.4.7",
  province: "2.5.4.8",
  streetAddress: "2.5.4.9",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  postalCode: "2.5.4.17",
  emailAddress: "1.2.840.113549.1.9.1",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectKeyId: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyId: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
  ecdsaWithSHA512: "1.2.840.10045.4.3.4",
  ed25519: "1.3.101.112",
} as const;

// ------------------------------------------------------------------ input reading

class Inputs {
  constructor(
    readonly token: TlsToken,
    readonly plain: Record<string, unknown>,
  ) {}

  private fail(summary: string, detail: string): never {
    throw new TlsProviderError(this.token, summary, detail);
  }

  private get(key: string): unknown {
    const v = this.plain[key];
    if (v === UNKNOWN_VALUE) {
      this.fail("Unknown input", `${key} is not known yet (a preview?); cannot materialize`);
    }
    return v ?? undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  string(key: string): string | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "string")
      this.fail("Invalid input", `${key} must be a string, got ${typeof v}`);
    return v;
  }

  requiredString(key: string): string {
    const v = this.string(key);
    if (v === undefined) this.fail("Missing required argument", `${key} is required`);
    return v;
  }

  int(key: string, min: number, dflt?: number): number | undefined {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      this.fail("Invalid input", `${key} must be a whole number, got ${JSON.stringify(v)}`);
    }
    if (v < min) {
      this.fail("Invalid Attribute Value", `${key} value must be at least ${min}, got: ${v}`);
    }
    return v;
  }

  requiredInt(key: string, min: number): number {
    const v = this.int(key, min);
    if (v === undefined) this.fail("Missing required argument", `${key} is required`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (typeof v !== "boolean") this.fail("Invalid input", `${key} must be a boolean`);
    return v;
  }

  stringList(key: string): string[] | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === UNKNOWN_VALUE)) {
      this.fail("Invalid input", `${key} must be a list of known strings`);
    }
    return v as string[];
  }

  /** Exactly one of `key` / `key + "Wo"` (the write-only variant, which needs its version). */
  keyPem(key: string): string {
    const plainPem = this.string(key);
    const wo = this.string(`${key}Wo`);
    if ((plainPem === undefined) === (wo === undefined)) {
      this.fail("Invalid Attribute Combination", `exactly one of ${key} or ${key}Wo must be set`);
    }
    if (wo !== undefined && !this.has(`${key}WoVersion`)) {
      this.fail("Invalid Attribute Combination", `${key}Wo requires ${key}WoVersion`);
    }
    return (plainPem ?? wo) as string;
  }

  oneOf(key: string, value: string, allowed: readonly string[]): void {
    if (!allowed.includes(value)) {
      this.fail(
        "Invalid Attribute Value Match",
        `${key} value must be one of: ${JSON.stringify(allowed)}, got: ${JSON.stringify(value)}`,
      );
    }
  }
}

// ------------------------------------------------------------------ keys

type KeyAlgorithm = "RSA" | "ECDSA" | "ED25519";

interface ParsedKey {
  key: crypto.KeyObject;
  algorithm: KeyAlgorithm;
}

/** The provider's parsePrivateKeyPEM: first PEM block; PKCS#1, SEC1 or PKCS#8. */
function parsePrivateKeyPem(input: Inputs, pemText: string, what: string): ParsedKey {
  const fail = (detail: string): never => {
    throw new TlsProviderError(input.token, `Failed to parse ${what} PEM`, detail);
  };
  const block = der.firstPemBlock(pemText);
  if (!block) return fail("failed to decode PEM block");
  const types: Record<string, "pkcs1" | "sec1" | "pkcs8"> = {
    "RSA PRIVATE KEY": "pkcs1",
    "EC PRIVATE KEY": "sec1",
    "PRIVATE KEY": "pkcs8",
  };
  const type = types[block.label];
  if (!type) return fail(`unable to determine parser for PEM preamble: ${block.label}`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: block.der, format: "der", type });
  } catch (e) {
    return fail(`failed to parse private key given PEM preamble '${block.label}': ${String(e)}`);
  }
  return { key, algorithm: keyAlgorithmOf(key) ?? fail(`unsupported private key type`) };
}

function keyAlgorithmOf(key: crypto.KeyObject): KeyAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return "RSA";
    case "ec":
      return Object.values(CURVES).includes(key.asymmetricKeyDetails?.namedCurve ?? "")
        ? "ECDSA"
        : undefined;
    case "ed25519":
      return "ED25519";
    default:
      return undefined;
  }
}

function spkiOf(key: crypto.KeyObject): Buffer {
  const pub = key.type === "private" ? crypto.createPublicKey(key) : key;
  return pub.export({ type: "spki", format: "der" });
}

/**
 * The provider's generateSubjectKeyID: SHA-1 of the public key bytes (for RSA and ECDSA that is
 * RFC 5280 method 1; for ED25519 the provider hashes the key's ASN.1 OCTET STRING encoding).
 */
export function subjectKeyIdOf(key: crypto.KeyObject): Buffer {
  const spki = der.children(der.readOne(spkiOf(key)));
  const bits = spki[1].content.subarray(1);
  const hashed = keyAlgorithmOf(key) === "ED25519" ? der.octetString(bits) : bits;
  return crypto.createHash("sha1").update(hashed).digest();
}

interface Signer {
  algorithmId: Buffer;
  sign(data: Buffer): Buffer;
}

/** Go's signingParamsForKey defaults. */
function signerFor(key: crypto.KeyObject): Signer {
  switch (keyAlgorithmOf(key)) {
    case "RSA":
      return {
        algorithmId: der.seq(der.oid(OID.sha256WithRSA), der.nullValue()),
        sign: (data) => crypto.sign("sha256", data, key),
      };
    case "ECDSA": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const [hash, alg] =
        curve === "secp384r1"
          ? ["sha384", OID.ecdsaWithSHA384]
          : curve === "secp521r1"
            ? ["sha512", OID.ecdsaWithSHA512]
            : ["sha256", OID.ecdsaWithSHA256];
      return {
        algorithmId: der.seq(der.oid(alg)),
        sign: (data) => crypto.sign(hash, data, key),
      };
    }
    case "ED25519":
      return {
        algorithmId: der.seq(der.oid(OID.ed25519)),
        sign: (data) => crypto.sign(null, data, key),
      };
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

function generateKey(
  algorithm: string,
  rsaBits: number,
  curve: string,
): Promise<crypto.KeyPairKeyObjectResult> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: crypto.KeyObject, privateKey: crypto.KeyObject) =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (algorithm === "RSA") {
      crypto.generateKeyPair("rsa", { modulusLength: rsaBits, publicExponent: 0x10001 }, done);
    } else if (algorithm === "ECDSA") {
      crypto.generateKeyPair("ec", { namedCurve: CURVES[curve] }, done);
    } else {
      crypto.generateKeyPair("ed25519", {}, done);
    }
  });
}

// ------------------------------------------------------------------ names

/** Go's pkix.Name, reduced to what the provider sets or reads back. */
interface NameFields {
  country: string[];
  province: string[];
  locality: string[];
  streetAddress: string[];
  postalCode: string[];
  organization: string[];
  organizationalUnit: string[];
  commonName: string;
  serialNumber: string;
  /** Extra attributes appended as-is (the provider's emailAddress). */
  extra: { oid: string; value: Buffer }[];
}

const emptyName = (): NameFields => ({
  country: [],
  province: [],
  locality: [],
  streetAddress: [],
  postalCode: [],
  organization: [],
  organizationalUnit: [],
  commonName: "",
  serialNumber: "",
  extra: [],
});

/** The provider's createSubjectDistinguishedNames; `empty` is Go's `Subject == pkix.Name{}`. */
function subjectFromInput(input: Inputs): { name: NameFields; empty: boolean } {
  const name = emptyName();
  const raw = input.plain.subject;
  if (raw === undefined || raw === null) return { name, empty: true };
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new TlsProviderError(input.token, "Invalid input", "subject must be an object");
  }
  const s = new Inputs(input.token, raw as Record<string, unknown>);
  let empty = true;
  const single = (key: string, into: string[]): void => {
    const v = s.string(key);
    if (v !== undefined) {
      into.push(v);
      empty = false;
    }
  };
  single("country", name.country);
  single("province", name.province);
  single("locality", name.locality);
  single("postalCode", name.postalCode);
  single("organization", name.organization);
  single("organizationalUnit", name.organizationalUnit);
  const streets = s.stringList("streetAddresses");
  if (streets !== undefined) {
    name.streetAddress.push(...streets);
    empty = false;
  }
  name.commonName = s.string("commonName") ?? "";
  name.serialNumber = s.string("serialNumber") ?? "";
  if (name.commonName !== "" || name.serialNumber !== "") empty = false;
  const email = s.string("emailAddress");
  if (email !== undefined) {
    name.extra.push({
      oid: OID.emailAddress,
      value: der.tlv(der.TAG.IA5_STRING, Buffer.from(email, "utf8")),
    });
    empty = false;
  }
  return { name, empty };
}

/** Go's Name.ToRDNSequence + marshal: fixed attribute order, one RDN per attribute type. */
function encodeName(n: NameFields): Buffer {
  const rdns: Buffer[] = [];
  const atv = (oidText: string, value: Buffer): Buffer => der.seq(der.oid(oidText), value);
  const add = (values: string[], oidText: string): void => {
    if (values.length > 0) rdns.push(der.setOf(values.map((v) => atv(oidText, der.goString(v)))));
  };
  add(n.country, OID.country);
  add(n.province, OID.province);
  add(n.locality, OID.locality);
  add(n.streetAddress, OID.streetAddress);
  add(n.postalCode, OID.postalCode);
  add(n.organization, OID.organization);
  add(n.organizationalUnit, OID.organizationalUnit);
  if (n.commonName !== "") add([n.commonName], OID.commonName);
  if (n.serialNumber !== "") add([n.serialNumber], OID.serialNumber);
  for (const e of n.extra) rdns.push(der.setOf([atv(e.oid, e.value)]));
  return der.seq(...rdns);
}

/** Go's FillFromRDNSequence: the attributes pkix.Name models; others are not kept. */
function decodeName(node: der.DerNode): NameFields {
  const n = emptyName();
  const lists: Record<string, string[]> = {
    [OID.country]: n.country,
    [OID.province]: n.province,
    [OID.locality]: n.locality,
    [OID.streetAddress]: n.streetAddress,
    [OID.postalCode]: n.postalCode,
    [OID.organization]: n.organization,
    [OID.organizationalUnit]: n.organizationalUnit,
  };
  for (const rdn of der.children(node)) {
    for (const attr of der.children(rdn)) {
      const [t, v] = der.children(attr);
      const type = der.readOid(t);
      const value = der.readString(v);
      if (value === undefined) continue;
      if (type === OID.commonName) n.commonName = value;
      else if (type === OID.serialNumber) n.serialNumber = value;
      else lists[type]?.push(value);
    }
  }
  return n;
}

// ------------------------------------------------------------------ SANs

/** Go's net.ParseIP, then To4 when it can (as Go marshals SAN IPs). */
export function parseIp(s: string): Buffer | undefined {
  if (net.isIPv4(s)) return Buffer.from(s.split(".").map(Number));
  if (!net.isIPv6(s) || s.includes("%")) return undefined;
  let text = s;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const b = tail.split(".").map(Number);
    const hex = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hex(b[0], b[1])}:${hex(b[2], b[3])}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] =>
    part === "" ? [] : part.split(":").map((w) => parseInt(w, 16));
  const left = words(halves[0]);
  const right = halves.length === 2 ? words(halves[1]) : [];
  const fill = halves.length === 2 ? 8 - left.length - right.length : 0;
  const all = [...left, ...new Array<number>(Math.max(fill, 0)).fill(0), ...right];
  if (all.length !== 8 || all.some((w) => Number.isNaN(w) || w > 0xffff)) return undefined;
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return isV4Mapped(out) ? out.subarray(12) : out;
}

function isV4Mapped(ip: Buffer): boolean {
  return (
    ip.length === 16 &&
    ip.subarray(0, 10).every((b) => b === 0) &&
    ip[10] === 0xff &&
    ip[11] === 0xff
  );
}

interface Sans {
  dnsNames: string[];
  ips: Buffer[];
  uris: string[];
}

function sansFromInput(input: Inputs): Sans {
  const ips = (input.stringList("ipAddresses") ?? []).map(
    (s) =>
      parseIp(s) ??
      (() => {
        throw new TlsProviderError(input.token, "Invalid IP address", `Failed to parse "${s}"`);
      })(),
  );
  return {
    dnsNames: input.stringList("dnsNames") ?? [],
    ips,
    uris: input.stringList("uris") ?? [],
  };
}

/** Go's marshalSANs: DNS names, then IPs, then URIs; names must be IA5 (ASCII). */
function encodeSans(s: Sans): Buffer {
  const ia5 = (v: string): Buffer => {
    if (!der.isAscii(v)) throw new Error(`${JSON.stringify(v)} cannot be encoded as an IA5String`);
    return Buffer.from(v, "latin1");
  };
  return der.seq(
    ...s.dnsNames.map((d) => der.implicit(2, ia5(d))),
    ...s.ips.map((ip) => der.implicit(7, ip)),
    ...s.uris.map((u) => der.implicit(6, ia5(u))),
  );
}

function hasSans(s: Sans): boolean {
  return s.dnsNames.length + s.ips.length + s.uris.length > 0;
}

function decodeSans(value: Buffer): Sans {
  const s: Sans = { dnsNames: [], ips: [], uris: [] };
  for (const gn of der.children(der.readOne(value))) {
    const text = gn.content.toString("latin1");
    if (gn.tag === 0x82) s.dnsNames.push(text);
    else if (gn.tag === 0x86) s.uris.push(text);
    else if (gn.tag === 0x87)
      s.ips.push(isV4Mapped(gn.content) ? gn.content.subarray(12) : gn.content);
  }
  return s;
}

// ------------------------------------------------------------------ extensions

function extension(oidText: string, critical: boolean, value: Buffer): Buffer {
  return der.seq(
    der.oid(oidText),
    ...(critical ? [der.boolean(true)] : []),
    der.octetString(value),
  );
}

/** Go's marshalKeyUsage: two bytes at most, bits reversed, trailing zero bits unused. */
function keyUsageValue(bits: number): Buffer {
  const rev = (b: number): number => {
    let r = 0;
    for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 1 << (7 - i);
    return r;
  };
  const bytes = [rev(bits & 0xff), rev((bits >> 8) & 0xff)];
  const used = bytes[1] !== 0 ? 2 : 1;
  const b = Buffer.from(bytes.slice(0, used));
  const last = b[used - 1];
  let unused = 0;
  while (unused < 8 && !(last & (1 << unused))) unused++;
  return der.bitString(b, unused === 8 ? 0 : unused);
}

// ------------------------------------------------------------------ certificates

const HOUR_MS = 3_600_000;

/** Go's time.Time MarshalText (RFC 3339 with the fraction trimmed), in UTC. */
export function rfc3339(d: Date): string {
  return d
    .toISOString()
    .replace(/\.(\d{3})Z$/, (_m, ms: string) =>
      ms === "000" ? "Z" : `.${ms.replace(/0+$/, "")}Z`,
    );
}

/** Whether the provider deems a certificate ready for renewal at `now` (its Read/plan logic). */
export function isReadyForRenewal(
  validityEndTime: string,
  earlyRenewalHours: number,
  now: Date,
): boolean {
  const end = Date.parse(validityEndTime);
  if (Number.isNaN(end)) throw new Error(`not an RFC 3339 time: ${validityEndTime}`);
  return end - earlyRenewalHours * HOUR_MS - now.getTime() <= 0;
}

interface CertPlan {
  validityPeriodHours: number;
  earlyRenewalHours: number;
  allowedUses: string[];
  isCaCertificate: boolean;
  maxPathLength: number;
  setSubjectKeyId: boolean;
  /** Self-signed only. */
  setAuthorityKeyId: boolean;
}

function readCertPlan(input: Inputs): CertPlan {
  const allowedUses = input.stringList("allowedUses");
  if (allowedUses === undefined) {
    throw new TlsProviderError(input.token, "Missing required argument", "allowedUses is required");
  }
  allowedUses.forEach((u, i) => input.oneOf(`allowedUses[${i}]`, u, SUPPORTED_ALLOWED_USES));
  return {
    validityPeriodHours: input.requiredInt("validityPeriodHours", 0),
    earlyRenewalHours: input.int("earlyRenewalHours", 0, 0) as number,
    allowedUses,
    isCaCertificate: input.bool("isCaCertificate", false),
    maxPathLength: input.int("maxPathLength", -1, -1) as number,
    setSubjectKeyId: input.bool("setSubjectKeyId", false),
    setAuthorityKeyId: input.bool("setAuthorityKeyId", false),
  };
}

interface Issuer {
  /** Raw subject of the issuing certificate (the template's own for self-signed). */
  subject: Buffer;
  subjectKeyId?: Buffer;
  publicKey?: crypto.KeyObject;
  signingKey: crypto.KeyObject;
}

interface Issued {
  certPem: string;
  serial: bigint;
  validityStartTime: string;
  validityEndTime: string;
  readyForRenewal: boolean;
}

/** The provider's createCertificate followed by Go's x509.CreateCertificate. */
function createCertificate(
  input: Inputs,
  plan: CertPlan,
  subject: { name: NameFields; empty: boolean },
  sans: Sans,
  publicKey: crypto.KeyObject,
  issuer: Issuer | "self",
  selfKey: crypto.KeyObject | undefined,
  now: Date,
): Issued {
  const fail = (summary: string, detail: string): never => {
    throw new TlsProviderError(input.token, summary, detail);
  };
  const notBefore = new Date(now.getTime());
  const notAfter = new Date(now.getTime() + plan.validityPeriodHours * HOUR_MS);
  let serial = 0n;
  while (serial === 0n) serial = BigInt(`0x${crypto.randomBytes(16).toString("hex")}`);

  let keyUsage = 0;
  const extKeyUsage: string[] = [];
  for (const use of plan.allowedUses) {
    if (use in KEY_USAGE_BITS) keyUsage |= 1 << KEY_USAGE_BITS[use];
    if (use in EXT_KEY_USAGE_OIDS) extKeyUsage.push(EXT_KEY_USAGE_OIDS[use]);
  }

  let subjectKeyId: Buffer | undefined;
  if (plan.isCaCertificate) {
    if (subject.empty) {
      fail(
        "Invalid Certificate Subject",
        "Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
      );
    }
    subjectKeyId = subjectKeyIdOf(publicKey);
  }
  // Go's MaxPathLen; the provider never sets MaxPathLenZero.
  const maxPathLen = plan.maxPathLength >= 0 ? plan.maxPathLength : 0;
  if (plan.setSubjectKeyId) subjectKeyId = subjectKeyIdOf(publicKey);

  const subjectDer = encodeName(subject.name);
  let authorityKeyId: Buffer | undefined;
  if (issuer === "self" && plan.setAuthorityKeyId) {
    if (!subjectKeyId)
      fail("Invalid Certificate Authority", "Could not determine Authority Key Identifier");
    authorityKeyId = subjectKeyId;
  }

  // Go's CreateCertificate checks.
  if (!plan.isCaCertificate && maxPathLen !== 0) {
    fail("Failed to create certificate", "x509: only CAs are allowed to specify MaxPathLen");
  }
  const issuerDer = issuer === "self" ? subjectDer : issuer.subject;
  const signingKey = issuer === "self" ? (selfKey as crypto.KeyObject) : issuer.signingKey;
  if (issuer !== "self" && issuer.publicKey) {
    if (!crypto.createPublicKey(signingKey).equals(issuer.publicKey)) {
      fail(
        "Failed to create certificate",
        "x509: provided PrivateKey doesn't match parent's PublicKey",
      );
    }
  }
  if (issuer !== "self" && !issuerDer.equals(subjectDer) && issuer.subjectKeyId?.length) {
    authorityKeyId = issuer.subjectKeyId;
  }

  // Go's buildCertExtensions order.
  const exts: Buffer[] = [];
  if (keyUsage !== 0) exts.push(extension(OID.keyUsage, true, keyUsageValue(keyUsage)));
  if (extKeyUsage.length > 0) {
    exts.push(extension(OID.extKeyUsage, false, der.seq(...extKeyUsage.map((o) => der.oid(o)))));
  }
  const bc: Buffer[] = [];
  if (plan.isCaCertificate) bc.push(der.boolean(true));
  if (maxPathLen > 0) bc.push(der.integer(maxPathLen));
  exts.push(extension(OID.basicConstraints, true, der.seq(...bc)));
  if (subjectKeyId) exts.push(extension(OID.subjectKeyId, false, der.octetString(subjectKeyId)));
  if (authorityKeyId) {
    exts.push(extension(OID.authorityKeyId, false, der.seq(der.implicit(0, authorityKeyId))));
  }
  if (hasSans(sans)) {
    const subjectIsEmpty = subjectDer.equals(Buffer.from([0x30, 0x00]));
    exts.push(extension(OID.subjectAltName, subjectIsEmpty, encodeSansChecked(input, sans)));
  }

  const signer = signerFor(signingKey);
  const tbs = der.seq(
    der.explicit(0, der.integer(2)),
    der.integer(serial),
    signer.algorithmId,
    issuerDer,
    der.seq(der.time(notBefore), der.time(notAfter)),
    subjectDer,
    spkiOf(publicKey),
    der.explicit(3, der.seq(...exts)),
  );
  const cert = der.seq(tbs, signer.algorithmId, der.bitString(signer.sign(tbs)));
  const validityEndTime = rfc3339(notAfter);
  return {
    certPem: der.pem("CERTIFICATE", cert),
    serial,
    validityStartTime: rfc3339(notBefore),
    validityEndTime,
    readyForRenewal: isReadyForRenewal(validityEndTime, plan.earlyRenewalHours, now),
  };
}

function encodeSansChecked(input: Inputs, sans: Sans): Buffer {
  try {
    return encodeSans(sans);
  } catch (e) {
    throw new TlsProviderError(input.token, "Failed to create certificate", `x509: ${String(e)}`);
  }
}

function parseCaCertificate(input: Inputs, pemText: string) {
  const fail = (detail: string): never => {
    throw new TlsProviderError(input.token, "Failed to parse CA certificate PEM", detail);
  };
  const block = der.firstPemBlock(pemText);
  if (!block) return fail(`failed to decode PEM of expected type "CERTIFICATE" from bytes`);
  if (block.label !== "CERTIFICATE") {
    return fail(`invalid PEM type - expected "CERTIFICATE", got "${block.label}"`);
  }
  try {
    const [tbs] = der.children(der.readOne(block.der));
    const fields = der.children(tbs);
    const i = fields[0].tag === 0xa0 ? 1 : 0;
    const subject = fields[i + 4].raw;
    const publicKey = crypto.createPublicKey({
      key: fields[i + 5].raw,
      format: "der",
      type: "spki",
    });
    let subjectKeyId: Buffer | undefined;
    const extsNode = fields.find((f) => f.tag === 0xa3);
    for (const ext of extsNode ? der.children(der.children(extsNode)[0]) : []) {
      const parts = der.children(ext);
      if (der.readOid(parts[0]) === OID.subjectKeyId) {
        subjectKeyId = der.readOne(parts[parts.length - 1].content).content;
      }
    }
    return { subject: Buffer.from(subject), publicKey, subjectKeyId };
  } catch (e) {
    return fail(`failed to parse certificate: ${String(e)}`);
  }
}

function parseCertRequest(input: Inputs, pemText: string) {
  const fail = (detail: string): never => {
    throw new TlsProviderError(input.token, "Failed to parse certificate request PEM", detail);
  };
  const block = der.firstPemBlock(pemText);
  if (!block) return fail(`failed to decode PEM of expected type "CERTIFICATE REQUEST" from bytes`);
  if (block.label !== "CERTIFICATE REQUEST") {
    return fail(`invalid PEM type - expected "CERTIFICATE REQUEST", got "${block.label}"`);
  }
  try {
    const [cri] = der.children(der.readOne(block.der));
    const [, subject, spki, attrs] = der.children(cri);
    const publicKey = crypto.createPublicKey({ key: spki.raw, format: "der", type: "spki" });
    let sans: Sans = { dnsNames: [], ips: [], uris: [] };
    for (const attr of attrs ? der.children(attrs) : []) {
      const [type, values] = der.children(attr);
      if (der.readOid(type) !== OID.extensionRequest) continue;
      for (const ext of der.children(der.children(values)[0])) {
        const parts = der.children(ext);
        if (der.readOid(parts[0]) === OID.subjectAltName) {
          sans = decodeSans(parts[parts.length - 1].content);
        }
      }
    }
    return {
      name: decodeName(subject),
      nameIsEmpty: subject.content.length === 0,
      publicKey,
      sans,
    };
  } catch (e) {
    return fail(`failed to parse certificate request: ${String(e)}`);
  }
}

// ------------------------------------------------------------------ resources

type Outputs = Record<string, unknown>;

/** Inputs as given (secrets stay wrapped) with `overlay` on top; undefined values dropped. */
function merge(inputs: Record<string, unknown>, overlay: Outputs, drop: string[] = []): Outputs {
  const out: Outputs = { ...inputs, ...overlay };
  for (const k of drop) delete out[k];
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

const secretIfSet = (v: unknown): unknown => (v === undefined ? undefined : wrapSecret(v));

async function privateKey(input: Inputs, raw: Record<string, unknown>): Promise<Outputs> {
  const algorithm = input.requiredString("algorithm");
  input.oneOf("algorithm", algorithm, ["RSA", "ECDSA", "ED25519"]);
  const ecdsaCurve = input.string("ecdsaCurve") ?? "P224";
  input.oneOf("ecdsaCurve", ecdsaCurve, Object.keys(CURVES));
  const rsaBits = input.int("rsaBits", 0, 2048) as number;
  if (algorithm === "RSA" && rsaBits < 1024) {
    throw new TlsProviderError(
      input.token,
      "Unable to generate Key from configuration",
      `crypto/rsa: ${rsaBits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)`,
    );
  }
  const { privateKey: key, publicKey } = await generateKey(algorithm, rsaBits, ecdsaCurve);
  const pemType = algorithm === "RSA" ? "pkcs1" : algorithm === "ECDSA" ? "sec1" : "pkcs8";
  const ssh = sshEncodings(key);
  return merge(raw, {
    algorithm,
    ecdsaCurve,
    rsaBits,
    privateKeyPem: wrapSecret(key.export({ type: pemType, format: "pem" }) as string),
    privateKeyPemPkcs8: wrapSecret(key.export({ type: "pkcs8", format: "pem" }) as string),
    privateKeyOpenssh: wrapSecret(ssh.privateKeyOpenssh),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
    publicKeyOpenssh: ssh.publicKeyOpenssh,
    publicKeyFingerprintMd5: ssh.publicKeyFingerprintMd5,
    publicKeyFingerprintSha256: ssh.publicKeyFingerprintSha256,
  });
}

function certPlanOutputs(plan: CertPlan, issued: Issued): Outputs {
  return {
    validityPeriodHours: plan.validityPeriodHours,
    earlyRenewalHours: plan.earlyRenewalHours,
    isCaCertificate: plan.isCaCertificate,
    maxPathLength: plan.maxPathLength,
    setSubjectKeyId: plan.setSubjectKeyId,
    certPem: issued.certPem,
    validityStartTime: issued.validityStartTime,
    validityEndTime: issued.validityEndTime,
    readyForRenewal: issued.readyForRenewal,
  };
}

function selfSignedCert(input: Inputs, raw: Record<string, unknown>, now: Date): Outputs {
  const parsed = parsePrivateKeyPem(input, input.keyPem("privateKeyPem"), "private key");
  const plan = readCertPlan(input);
  const issued = createCertificate(
    input,
    plan,
    subjectFromInput(input),
    sansFromInput(input),
    crypto.createPublicKey(parsed.key),
    "self",
    parsed.key,
    now,
  );
  return merge(
    raw,
    {
      ...certPlanOutputs(plan, issued),
      setAuthorityKeyId: plan.setAuthorityKeyId,
      keyAlgorithm: parsed.algorithm,
      privateKeyPem: secretIfSet(raw.privateKeyPem),
    },
    ["privateKeyPemWo"],
  );
}

function certRequest(input: Inputs, raw: Record<string, unknown>): Outputs {
  const parsed = parsePrivateKeyPem(input, input.keyPem("privateKeyPem"), "private key");
  const sans = sansFromInput(input);
  const attrs: Buffer[] = [];
  if (hasSans(sans)) {
    const exts = der.seq(extension(OID.subjectAltName, false, encodeSansChecked(input, sans)));
    attrs.push(der.seq(der.oid(OID.extensionRequest), der.setOf([exts])));
  }
  const cri = der.seq(
    der.integer(0),
    encodeName(subjectFromInput(input).name),
    spkiOf(parsed.key),
    der.implicit(0, Buffer.concat(attrs), true),
  );
  const signer = signerFor(parsed.key);
  const csr = der.seq(cri, signer.algorithmId, der.bitString(signer.sign(cri)));
  return merge(
    raw,
    {
      certRequestPem: der.pem("CERTIFICATE REQUEST", csr),
      keyAlgorithm: parsed.algorithm,
      privateKeyPem: secretIfSet(raw.privateKeyPem),
    },
    ["privateKeyPemWo"],
  );
}

function locallySignedCert(input: Inputs, raw: Record<string, unknown>, now: Date): Outputs {
  const csr = parseCertRequest(input, input.requiredString("certRequestPem"));
  const caKey = parsePrivateKeyPem(input, input.keyPem("caPrivateKeyPem"), "CA private key");
  const ca = parseCaCertificate(input, input.requiredString("caCertPem"));
  if (!keyAlgorithmOf(csr.publicKey)) {
    throw new TlsProviderError(
      input.token,
      "Failed to create certificate",
      "x509: unsupported public key type",
    );
  }
  const plan = readCertPlan(input);
  const issued = createCertificate(
    input,
    { ...plan, setAuthorityKeyId: false },
    { name: csr.name, empty: csr.nameIsEmpty },
    csr.sans,
    csr.publicKey,
    {
      subject: ca.subject,
      subjectKeyId: ca.subjectKeyId,
      publicKey: ca.publicKey,
      signingKey: caKey.key,
    },
    undefined,
    now,
  );
  return merge(
    raw,
    {
      ...certPlanOutputs(plan, issued),
      caKeyAlgorithm: caKey.algorithm,
      caPrivateKeyPem: secretIfSet(raw.caPrivateKeyPem),
    },
    ["caPrivateKeyPemWo"],
  );
}

/**
 * Given a mocked resource's type token and its inputs (camelCase, as pulumi.runtime.setMocks'
 * newResource receives them, secret values possibly wrapped), return the outputs the real
 * provider would return (inputs merged with computed outputs). Private keys in the outputs are
 * wrapped secrets. `now` is the provider's clock (issue time and renewal check).
 * Throws TlsProviderError where the provider would fail.
 */
export async function materializeTls(
  type: TlsToken,
  inputs: Record<string, unknown>,
  now: Date = new Date(),
): Promise<Record<string, unknown>> {
  const input = new Inputs(type, unwrapSecrets(inputs) as Record<string, unknown>);
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return privateKey(input, inputs);
    case "tls:index/selfSignedCert:SelfSignedCert":
      return selfSignedCert(input, inputs, now);
    case "tls:index/certRequest:CertRequest":
      return certRequest(input, inputs);
    case "tls:index/locallySignedCert:LocallySignedCert":
      return locallySignedCert(input, inputs, now);
    default:
      throw new Error(`not a tls token: ${String(type)}`);
  }
}

/**
 * The resource id the provider gives: the serial number (decimal) for certificates; for keys and
 * requests its hashForState (SHA-1 hex of the DER, after Go's strings.TrimSpace) of the public key
 * and of the CSR.
 */
export function tlsResourceId(type: TlsToken, outputs: Record<string, unknown>): string {
  const plain = unwrapSecrets(outputs) as Record<string, unknown>;
  const hashForState = (b: Buffer): string => {
    const space = (x: number): boolean => (x >= 0x09 && x <= 0x0d) || x === 0x20;
    let start = 0;
    let end = b.length;
    while (start < end && space(b[start])) start++;
    while (end > start && space(b[end - 1])) end--;
    return crypto.createHash("sha1").update(b.subarray(start, end)).digest("hex");
  };
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return hashForState(spkiOf(crypto.createPublicKey(String(plain.publicKeyPem))));
    case "tls:index/certRequest:CertRequest":
      return hashForState(der.firstPemBlock(String(plain.certRequestPem))?.der ?? Buffer.alloc(0));
    default:
      return BigInt(
        `0x${new crypto.X509Certificate(String(plain.certPem)).serialNumber}`,
      ).toString();
  }
}
