/**
 * Harbor's internal secrets, derived deterministically from one stack secret
 * (`harborInternalSeed`): the same seed always yields the same values, so a
 * re-render never churns the release, and no value is a chart default. Each
 * value is HMAC-SHA256(seed, label) expanded and mapped onto an alphabet
 * without bias (rejection sampling). Changing the seed rotates every value;
 * `secretKey` encrypts data in Harbor's database, so the seed must not change
 * on an installed Harbor (see docs/harbor-helm.md).
 */
import { createHmac } from "node:crypto";
import { bcryptHash } from "./bcrypt";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Values the chart (or Harbor's templates) ship with; never acceptable. */
export const CHART_DEFAULT_SECRETS: readonly string[] = [
  "not-a-secure-key",
  "Harbor12345",
  "changeit",
  "harbor_registry_password",
  "password",
];

/** The username Harbor core uses towards its internal registry (not a secret). */
export const REGISTRY_USERNAME = "casd_registry_user";

/** bcrypt cost of the registry's htpasswd line (Go's bcrypt.DefaultCost, as Helm uses). */
export const HTPASSWD_COST = 10;

/** A byte stream: HMAC-SHA256(seed, `${label}/${counter}`) blocks. */
function stream(seed: string, label: string): () => number {
  let counter = 0;
  let block = Buffer.alloc(0);
  let pos = 0;
  return () => {
    if (pos >= block.length) {
      block = createHmac("sha256", seed)
        .update(`casd-registry/harbor-helm/${label}/${counter++}`)
        .digest();
      pos = 0;
    }
    return block[pos++];
  };
}

/** `length` characters of `alphabet` derived from seed and label; unbiased. */
export function deriveString(
  seed: string,
  label: string,
  length: number,
  alphabet = ALNUM,
): string {
  if (seed.length === 0) throw new Error("deriveString: the seed is empty");
  const next = stream(seed, label);
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const b = next();
    if (b < limit) out += alphabet[b % alphabet.length];
  }
  return out;
}

/** 16 bytes derived from seed and label (bcrypt salts). */
export function deriveBytes(seed: string, label: string, length: number): Buffer {
  const next = stream(seed, label);
  return Buffer.from(Array.from({ length }, () => next()));
}

export interface InternalSecrets {
  /** Harbor's encryption key (`secretKey`): exactly 16 characters. */
  secretKey: string;
  /** Shared secret of core with the other components (16 characters). */
  coreSecret: string;
  /** Core's XSRF key (32 characters, as Harbor validates). */
  xsrfKey: string;
  /** Jobservice's shared secret (16 characters). */
  jobserviceSecret: string;
  /** The registry's HTTP secret (16 characters). */
  registryHttpSecret: string;
  /** Password of the internal registry user (32 characters). */
  registryPassword: string;
  /** `user:bcrypt` line for the registry's htpasswd file (deterministic salt). */
  registryHtpasswd: string;
}

/** Every internal secret from the seed. Pure; about 0.1 s (one bcrypt at cost 10). */
export function deriveInternalSecrets(seed: string): InternalSecrets {
  const registryPassword = deriveString(seed, "registry-password", 32);
  const s: InternalSecrets = {
    secretKey: deriveString(seed, "secret-key", 16),
    coreSecret: deriveString(seed, "core-secret", 16),
    xsrfKey: deriveString(seed, "xsrf-key", 32),
    jobserviceSecret: deriveString(seed, "jobservice-secret", 16),
    registryHttpSecret: deriveString(seed, "registry-http-secret", 16),
    registryPassword,
    registryHtpasswd: `${REGISTRY_USERNAME}:${bcryptHash(registryPassword, deriveBytes(seed, "registry-htpasswd-salt", 16), HTPASSWD_COST)}`,
  };
  for (const [k, v] of Object.entries(s)) {
    if (CHART_DEFAULT_SECRETS.includes(v))
      throw new Error(
        `deriveInternalSecrets: ${k} collides with a published default; choose another harborInternalSeed`,
      );
  }
  return s;
}
