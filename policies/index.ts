/**
 * The casd-registry policy pack: `pulumi preview --policy-pack policies`.
 * Only assembles the pack; each policy (and its configuration schema) lives
 * in its own file, listed in catalog.ts, with thresholds in config.ts.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./catalog";

new PolicyPack("casd-registry", {
  description:
    "Guard rails of the private registry reg.casd.local: PKI profiles, SSH and secret hygiene, Harbor hardening, air-gapped sources.",
  enforcementLevel: "mandatory",
  policies,
});
