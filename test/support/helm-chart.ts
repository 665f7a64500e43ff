/**
 * A chart archive like the offline bundle's `harbor-1.19.1.tgz`, built from
 * local parts: `harbor/Chart.yaml` and `harbor/values.yaml` (the reference
 * 1.19.1 values, read from shared/reference, never copied into the repo).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const CHART_VALUES_REFERENCE = path.resolve(
  __dirname,
  "../../../shared/reference/harbor-helm-1.19.1.values.yaml",
);

export function helmChartFixture(version = "1.19.1"): { path: string; sha256: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "casd-chart-"));
  fs.mkdirSync(path.join(root, "harbor"));
  fs.writeFileSync(
    path.join(root, "harbor", "Chart.yaml"),
    `apiVersion: v2\nname: harbor\nversion: ${version}\nappVersion: 2.15.1\n`,
  );
  fs.copyFileSync(CHART_VALUES_REFERENCE, path.join(root, "harbor", "values.yaml"));
  const file = path.join(root, `harbor-${version}.tgz`);
  const r = spawnSync("tar", ["-czf", file, "-C", root, "harbor"]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return { path: file, sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}
