import { ResourceValidationPolicy } from "@pulumi/policy";
import { imagesOf, parseRef } from "./images";

/**
 * Advisory: images are best pinned by digest (a tag can be moved; a digest
 * names exactly the bytes that were verified into the offline bundle).
 * Chart values are left out: Harbor's chart composes `repository:tag`.
 */
export const containerImageDigestPinned: ResourceValidationPolicy = {
  name: "container-image-digest-pinned",
  description: "Container images should be pinned by digest (@sha256:...).",
  enforcementLevel: "advisory",
  severity: "low",
  validateResource: (args, report) => {
    for (const image of imagesOf(args.type, args.props)) {
      if (image.fromChart) {
        continue;
      }
      const ref = parseRef(image.ref);
      if (!ref.digest) {
        report(`${image.path} is ${image.ref}: pin it by digest (@sha256:...).`);
      }
    }
  },
};
