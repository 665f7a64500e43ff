import { ResourceValidationPolicy } from "@pulumi/policy";
import { schemaFor, settings } from "./config";
import { imagesOf, parseRef, registryAllowed } from "./images";

/**
 * Container images come only from the allowed registries (the platform's
 * own, by default reg.casd.local: nothing can be pulled from outside) and
 * name a version: no `:latest`, no missing tag. Covers Docker containers and
 * remote images, Kubernetes pod templates and images in chart values (where
 * a missing tag leaves the chart's own, pinned, version).
 */
export const containerImageAllowedRegistry: ResourceValidationPolicy = {
  name: "container-image-allowed-registry",
  description:
    "Container images must come from an allowed registry (reg.casd.local by default) and must not use the latest tag or no tag.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: schemaFor("allowedRegistries"),
  validateResource: (args, report) => {
    const { allowedRegistries } = settings(args);
    for (const image of imagesOf(args.type, args.props)) {
      const ref = parseRef(image.ref);
      if (ref.imageId) {
        continue;
      }
      if (!registryAllowed(ref.registry, allowedRegistries)) {
        report(
          `${image.path} is ${image.ref}: registry ${ref.registry} is not allowed (allowed: ${allowedRegistries.join(", ")}).`,
        );
      }
      if (ref.digest) {
        continue;
      }
      if (ref.tag === "latest") {
        report(
          `${image.path} is ${image.ref}: the latest tag is not allowed; pin a version tag or a digest.`,
        );
      } else if (ref.tag === undefined && !image.fromChart) {
        report(
          `${image.path} is ${image.ref}: without a tag latest is pulled; pin a version tag or a digest.`,
        );
      }
    }
  },
};
