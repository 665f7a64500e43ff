import { ResourceValidationPolicy } from "@pulumi/policy";
import {
  at,
  Found,
  forTypes,
  isHarborYml,
  isRecord,
  strings,
  UNKNOWN,
  yamlMappings,
} from "./props";

const COMMAND_TYPES = ["command:remote:Command", "command:local:Command"];

/** The inputs a command ships to the host (the connection is not one of them). */
const SHIPPED = ["create", "update", "delete", "stdin", "environment"];

const PRIVATE_KEY_PEM = /-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----/;

/** Key names that hold a secret value: password, db_password, secretKey, token, private_key... */
const SECRET_NAME = /(password|passwd|secret|secret_?key|token|private_?key)$/i;

function secretKeyIn(doc: unknown, prefix = ""): string | undefined {
  if (Array.isArray(doc)) {
    for (const item of doc) {
      const hit = secretKeyIn(item, prefix);
      if (hit) {
        return hit;
      }
    }
    return undefined;
  }
  if (!isRecord(doc)) {
    return undefined;
  }
  for (const [k, v] of Object.entries(doc)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (
      SECRET_NAME.test(k) &&
      (typeof v === "string" || typeof v === "number") &&
      String(v) !== ""
    ) {
      return name;
    }
    const hit = secretKeyIn(v, name);
    if (hit) {
      return hit;
    }
  }
  return undefined;
}

/** Why the strings a command ships carry a secret, or undefined. */
export function secretCarried(found: Found[]): string | undefined {
  for (const f of found) {
    if (PRIVATE_KEY_PEM.test(f.text)) {
      return `a PEM private key in ${f.path}`;
    }
    const env = /^environment\.(.+)$/.exec(f.path);
    if (env && SECRET_NAME.test(env[1]) && f.text !== "") {
      return `${f.path}`;
    }
    for (const doc of yamlMappings(f.text)) {
      if (isHarborYml(doc)) {
        return `harbor.yml in ${f.path}`;
      }
      const key = secretKeyIn(doc);
      if (key) {
        return `${key} in ${f.path}`;
      }
    }
  }
  return undefined;
}

/**
 * A command whose script, stdin or environment carries a secret (a private
 * key, harbor.yml, a password-like key) logs nothing (`logging: "none"`) and
 * keeps `stdout` secret (`additionalSecretOutputs: ["stdout"]`). CrossGuard
 * hands secrets over unwrapped, so the policy recognises secret material by
 * content; values still unknown during preview are checked at `up`.
 */
export const commandSecretHygiene: ResourceValidationPolicy = {
  name: "command-secret-hygiene",
  description:
    'A command whose inputs carry secrets must use logging "none" and list stdout in additionalSecretOutputs.',
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: forTypes(COMMAND_TYPES, async (props, args, report) => {
    const shipped: Found[] = [];
    for (const key of SHIPPED) {
      shipped.push(...(await strings(at(props, key), [], key)));
    }
    const why = secretCarried(shipped);
    if (!why) {
      return;
    }
    const logging = at(props, "logging");
    if (logging !== UNKNOWN && logging !== "none") {
      const is = logging === undefined ? "not set (stdoutAndStderr)" : String(logging);
      report(
        `logging is ${is}; this command carries a secret (${why}) and must use logging "none".`,
      );
    }
    const secretOutputs = args.opts?.additionalSecretOutputs ?? [];
    if (!secretOutputs.includes("stdout")) {
      report(
        `stdout is not a secret output; this command carries a secret (${why}): add "stdout" to additionalSecretOutputs.`,
      );
    }
  }),
};
