/**
 * Thresholds of the pack, their defaults and their JSON schemas.
 *
 * CrossGuard hands each policy only its own configuration (`args.getConfig()`
 * returns the object under the policy's name in `--policy-pack-config`), so a
 * policy declares the keys it reads in its `configSchema` and merges what it
 * gets over these defaults with `settings()`. Example `policy-config.json`:
 *
 *   { "tls-server-cert-validity": { "maxServerValidityDays": 90 },
 *     "container-image-allowed-registry": { "allowedRegistries": ["reg.casd.local"] } }
 */
import { PolicyConfigSchema } from "@pulumi/policy";

/** One property of a policy's configuration schema (JSON schema). */
type PolicyConfigJSONSchema = PolicyConfigSchema["properties"][string];

export interface PackSettings {
  /** The registry's host name: the server certificate's SANs must contain it. */
  hostname: string;
  /** Upper bound of the server certificate's validity, in days. */
  maxServerValidityDays: number;
  /** Smallest RSA modulus accepted for TLS keys. */
  minRsaBits: number;
  /** ECDSA curves accepted for TLS keys. */
  allowedEcdsaCurves: string[];
  /** Registries (host or host:port) that container images may come from. */
  allowedRegistries: string[];
  /** Harbor's shipped default secrets, refused anywhere in harbor.yml, chart values and scripts. */
  forbiddenSecrets: string[];
}

export const DEFAULTS: Readonly<PackSettings> = Object.freeze({
  hostname: "reg.casd.local",
  maxServerValidityDays: 200,
  minRsaBits: 3072,
  allowedEcdsaCurves: ["P256", "P384"],
  allowedRegistries: ["reg.casd.local"],
  forbiddenSecrets: [
    "Harbor12345",
    "root123",
    "not-a-secure-key",
    "changeit",
    "harbor_registry_password",
  ],
});

const stringList = (description: string, dflt: string[]): PolicyConfigJSONSchema => ({
  type: "array",
  items: { type: "string", minLength: 1 },
  minItems: 1,
  uniqueItems: true,
  default: dflt,
  description,
});

/** One JSON schema per setting; policies pick the ones they read. */
export const SCHEMAS: Readonly<Record<keyof PackSettings, PolicyConfigJSONSchema>> = Object.freeze({
  hostname: {
    type: "string",
    minLength: 1,
    default: DEFAULTS.hostname,
    description: "Host name of the registry; the server certificate's DNS SANs must contain it.",
  },
  maxServerValidityDays: {
    type: "integer",
    minimum: 1,
    default: DEFAULTS.maxServerValidityDays,
    description: "Longest validity accepted for the server certificate, in days.",
  },
  minRsaBits: {
    type: "integer",
    minimum: 3072,
    default: DEFAULTS.minRsaBits,
    description: "Smallest RSA key size accepted, in bits (never below 3072).",
  },
  allowedEcdsaCurves: {
    ...stringList("ECDSA curves accepted for TLS keys.", [...DEFAULTS.allowedEcdsaCurves]),
    items: { type: "string", enum: ["P256", "P384", "P521"] },
  },
  allowedRegistries: stringList(
    "Registries (host or host:port) container images may be pulled from.",
    [...DEFAULTS.allowedRegistries],
  ),
  forbiddenSecrets: stringList(
    "Harbor's shipped default secrets, refused in harbor.yml, chart values and scripts.",
    [...DEFAULTS.forbiddenSecrets],
  ),
});

/** The `configSchema` of a policy that reads `keys`. */
export function schemaFor(...keys: (keyof PackSettings)[]): {
  properties: Record<string, PolicyConfigJSONSchema>;
} {
  const properties: Record<string, PolicyConfigJSONSchema> = {};
  for (const k of keys) {
    properties[k] = SCHEMAS[k];
  }
  return { properties };
}

/** The policy's configuration merged over the defaults. */
export function settings(args: { getConfig<T extends object>(): T }): PackSettings {
  const given = args.getConfig<Partial<PackSettings>>() ?? {};
  const merged: PackSettings = {
    ...DEFAULTS,
    allowedEcdsaCurves: [...DEFAULTS.allowedEcdsaCurves],
    allowedRegistries: [...DEFAULTS.allowedRegistries],
    forbiddenSecrets: [...DEFAULTS.forbiddenSecrets],
  };
  for (const k of Object.keys(given) as (keyof PackSettings)[]) {
    if (given[k] !== undefined && k in DEFAULTS) {
      (merged as unknown as Record<string, unknown>)[k] = given[k];
    }
  }
  return merged;
}
