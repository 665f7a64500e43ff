import { ResourceValidationPolicy } from "@pulumi/policy";
import { leaves, strings } from "./props";

/** What turns TLS verification off, in trust files (TOML, YAML, JSON) and command lines. */
export const BYPASSES: { what: string; re: RegExp }[] = [
  { what: "skip_verify", re: /\bskip_verify["']?\s*[=:]\s*["']?true\b/i },
  {
    what: "insecure_skip_verify",
    re: /\binsecure_?skip_?(tls_?)?verify["']?\s*[=:]\s*["']?true\b/i,
  },
  { what: "insecure = true", re: /(^|[\s{,[])["']?insecure["']?\s*[=:]\s*["']?true\b/im },
  { what: "insecure-registries", re: /"insecure-registries"\s*:\s*\[\s*"/ },
  { what: "--insecure-registry", re: /(^|\s)--insecure-registr(y|ies)\b/ },
  { what: "--insecure", re: /(^|\s)--insecure(?![\w-])/ },
  { what: "--insecure-skip-tls-verify", re: /(^|\s)--insecure-skip-tls-verify\b(?!=false)/ },
  { what: "--tls-verify=false", re: /(^|\s)--(src-|dest-)?tls-?verify[= ]false\b/ },
  { what: "--skip-verify", re: /(^|\s)--skip-verify\b/ },
  { what: "--plain-http", re: /(^|\s)--plain-http\b(?!=false)/ },
  { what: "--no-check-certificate", re: /(^|\s)--no-check-certificate\b/ },
  { what: "-k", re: /\b(curl|ctr)\b[^\n;&|]*\s-[A-Za-z]*k[A-Za-z]*(?=\s|$)/m },
  { what: "NODE_TLS_REJECT_UNAUTHORIZED=0", re: /NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*["']?0/ },
];

/** Keys whose `true` turns verification off (chart values, Kubernetes objects). */
const BYPASS_KEYS = /^(insecure|skip_?verify|insecure_?skip_?(tls_?)?verify)$/i;

/**
 * Nothing skips TLS verification: no skip_verify or insecure registry in the
 * trust files the stack writes (containerd hosts.toml, registries.conf,
 * daemon.json), no -k / --insecure / --tls-verify=false in commands, no
 * insecure flag in chart values. Clients trust the registry's CA instead.
 */
export const noTlsVerificationBypass: ResourceValidationPolicy = {
  name: "no-tls-verification-bypass",
  description:
    "Trust files, commands and values must not skip TLS verification (skip_verify, insecure registries, -k, --insecure, --tls-verify=false).",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: async (args, report) => {
    for (const f of await strings(args.props, ["connection"])) {
      for (const { what, re } of BYPASSES) {
        if (re.test(f.text)) {
          report(`${f.path} disables TLS verification (${what}); trust the registry's CA instead.`);
        }
      }
    }
    for (const leaf of leaves(args.props, ["connection"])) {
      if (
        typeof leaf.key === "string" &&
        BYPASS_KEYS.test(leaf.key) &&
        (leaf.value === true || leaf.value === "true")
      ) {
        report(
          `${leaf.path} is true and disables TLS verification; trust the registry's CA instead.`,
        );
      }
    }
  },
};
