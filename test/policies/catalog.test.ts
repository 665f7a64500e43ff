import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { policies } from "../../policies/catalog";
import { DEFAULTS, SCHEMAS } from "../../policies/config";

const DIR = path.resolve(__dirname, "../../policies");
/** Files of the pack that are not policies. */
const SUPPORT = ["index.ts", "catalog.ts", "config.ts", "props.ts", "images.ts"];

const isPolicy = (v: unknown): v is { name: string } =>
  typeof v === "object" &&
  v !== null &&
  "name" in v &&
  "description" in v &&
  "enforcementLevel" in v;

describe("the catalog", () => {
  const files = fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !SUPPORT.includes(f))
    .sort();

  it("holds one policy per file, named after its file", async () => {
    const exported: string[] = [];
    for (const f of files) {
      const mod = (await import(path.join(DIR, f))) as Record<string, unknown>;
      const found = Object.values(mod).filter(isPolicy);
      expect({ file: f, policies: found.map((p) => p.name) }).toEqual({
        file: f,
        policies: [f.replace(/\.ts$/, "")],
      });
      exported.push(found[0].name);
    }
    expect(policies.map((p) => p.name).sort()).toEqual(exported);
  });

  it("gives every policy a kebab-case name, a sentence and an explicit level", () => {
    for (const p of policies) {
      expect(p.name).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)+$/);
      expect(p.description).toMatch(/^[A-Z][^\n]*\.$/);
      expect(["mandatory", "advisory"]).toContain(p.enforcementLevel);
    }
    expect(policies.filter((p) => p.enforcementLevel === "advisory").map((p) => p.name)).toEqual([
      "container-image-digest-pinned",
    ]);
  });

  it("declares the thresholds with the defaults of config.ts", () => {
    const declared: Record<string, unknown> = {};
    for (const p of policies) {
      for (const [k, schema] of Object.entries(p.configSchema?.properties ?? {})) {
        expect(schema).toBe(SCHEMAS[k as keyof typeof SCHEMAS]);
        declared[k] = schema.default;
      }
    }
    expect(declared).toEqual({ ...DEFAULTS });
  });

  it("is described in the README and configured by the example", () => {
    const readme = fs.readFileSync(path.join(DIR, "README.md"), "utf8");
    for (const p of policies) {
      expect(readme).toMatch(new RegExp(`^\\| \`${p.name}\` +\\| ${p.enforcementLevel}`, "m"));
    }
    expect(readme).toContain("pulumi preview --policy-pack policies");
    const example = JSON.parse(
      fs.readFileSync(path.join(DIR, "config.example.json"), "utf8"),
    ) as Record<string, unknown>;
    for (const [name, cfg] of Object.entries(example)) {
      const policy = policies.find((p) => p.name === name);
      expect(policy).toBeDefined();
      if (typeof cfg === "object" && cfg !== null) {
        for (const k of Object.keys(cfg)) {
          expect(Object.keys(policy!.configSchema?.properties ?? {})).toContain(k);
        }
      }
    }
  });

  it("ships its own package, pinned exactly, with a nodejs PulumiPolicy.yaml", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(DIR, "package.json"), "utf8")) as {
      name: string;
      version: string;
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(pkg.name).toBe("casd-registry-policies");
    expect(pkg.dependencies).toEqual({
      "@pulumi/policy": "1.21.0",
      "@pulumi/pulumi": "3.248.0",
      yaml: "2.9.1",
    });
    const root = JSON.parse(
      fs.readFileSync(path.join(DIR, "../package.json"), "utf8"),
    ) as typeof pkg;
    for (const [dep, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      expect({ dep, version: root.dependencies[dep] ?? root.devDependencies[dep] }).toEqual({
        dep,
        version,
      });
    }
    expect(parse(fs.readFileSync(path.join(DIR, "PulumiPolicy.yaml"), "utf8"))).toMatchObject({
      runtime: "nodejs",
    });
  });
});
