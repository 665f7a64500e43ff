/**
 * `preflight`: run before `pulumi up` on the air-gapped machine, in the shell
 * that will run it. Every check says what it found and, when it fails, the
 * command that fixes it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { displayPath } from "./display";
import { cliVersion, findOnPath, findPulumi, pluginLayoutProblems } from "./install";
import { PluginsLock, deriveLock, lockDifferences, readLock } from "./lock";
import { Platform, pluginArchiveName, pluginBinaryName } from "./names";
import { listStacks, readProject, readStack } from "./stack";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface PreflightOptions {
  projectDir: string;
  lockFile: string;
  pulumiHome: string;
  platform: Platform;
  /** Stacks whose secrets provider is checked (default: every Pulumi.<stack>.yaml). */
  stacks?: string[];
  /** Bundle folder named in the fixes. */
  bundleDir: string;
  env?: NodeJS.ProcessEnv;
}

/** Pulumi's reading of a boolean environment variable: "1" or "true" in any case. */
export function isTruthy(value: string | undefined): boolean {
  return value === "1" || (value ?? "").toLowerCase() === "true";
}

export function preflight(opts: PreflightOptions): Check[] {
  const env = opts.env ?? process.env;
  const checks: Check[] = [];
  const lockLabel = displayPath(opts.projectDir, opts.lockFile);
  const bundleLabel = displayPath(opts.projectDir, opts.bundleDir);

  // The lock, and that it still describes node_modules.
  let lock: PluginsLock | undefined;
  try {
    lock = readLock(opts.lockFile);
    if (fs.existsSync(path.join(opts.projectDir, "node_modules", "@pulumi", "pulumi"))) {
      const diffs = lockDifferences(lock, deriveLock(opts.projectDir, lock));
      checks.push(
        diffs.length
          ? {
              name: "lock",
              ok: false,
              detail: `${lockLabel} disagrees with node_modules: ${diffs.join("; ")}`,
              fix: "on the staging machine: npm run cache -- lock, fetch a new bundle, bring both here",
            }
          : { name: "lock", ok: true, detail: `${lockLabel} agrees with node_modules` },
      );
    } else {
      checks.push({
        name: "lock",
        ok: false,
        detail: `no node_modules/@pulumi/pulumi in ${opts.projectDir}`,
        fix: `npm run cache -- install --bundle ${bundleLabel} (installs the npm packages offline)`,
      });
    }
  } catch (e) {
    checks.push({
      name: "lock",
      ok: false,
      detail: (e as Error).message,
      fix: "bring the project's offline/plugins.lock.json with the bundle",
    });
  }

  // The CLI at the locked version.
  const pulumi = findPulumi(opts.pulumiHome, env);
  if (!pulumi) {
    checks.push({
      name: "pulumi CLI",
      ok: false,
      detail: `no pulumi on PATH or in ${path.join(opts.pulumiHome, "bin")}`,
      fix: `npm run cache -- install --bundle ${bundleLabel} --cli, then export PATH="${path.join(opts.pulumiHome, "bin")}:$PATH"`,
    });
  } else if (lock) {
    const v = cliVersion(pulumi, { ...env, PULUMI_SKIP_UPDATE_CHECK: "true" });
    checks.push(
      v.version === lock.cli.version
        ? { name: "pulumi CLI", ok: true, detail: `${pulumi} is ${v.version}` }
        : {
            name: "pulumi CLI",
            ok: false,
            detail: `${pulumi} is ${v.version ?? `unusable (${v.error})`}, the project needs ${lock.cli.version}`,
            fix: `npm run cache -- install --bundle ${bundleLabel} --cli, and put ${path.join(opts.pulumiHome, "bin")} first on PATH`,
          },
    );
  }

  // Each plugin at its exact version.
  for (const p of lock?.plugins ?? []) {
    const problems = pluginLayoutProblems(
      opts.pulumiHome,
      p.kind,
      p.name,
      p.version,
      opts.platform,
    );
    const archive = path.join(
      bundleLabel,
      "plugins",
      p.archives[opts.platform]?.file ??
        pluginArchiveName(p.kind, p.name, p.version, opts.platform),
    );
    // The engine runs a pulumi-<kind>-<name> found on PATH instead of the installed plugin,
    // whatever its version, unless PULUMI_IGNORE_AMBIENT_PLUGINS is set.
    const ambient = isTruthy(env.PULUMI_IGNORE_AMBIENT_PLUGINS)
      ? undefined
      : findOnPath(pluginBinaryName(p.kind, p.name, opts.platform), env);
    if (ambient) {
      checks.push({
        name: `plugin ${p.name} ${p.version}`,
        ok: false,
        detail: `${ambient} on PATH would be run instead of the installed ${p.kind} plugin ${p.name} ${p.version}`,
        fix: `remove it from PATH, or export PULUMI_IGNORE_AMBIENT_PLUGINS=true`,
      });
      continue;
    }
    checks.push(
      problems.length
        ? {
            name: `plugin ${p.name} ${p.version}`,
            ok: false,
            detail: problems.join("; "),
            fix: `npm run cache -- install --bundle ${bundleLabel} (or: pulumi plugin install ${p.kind} ${p.name} ${p.version} --file ${archive})`,
          }
        : {
            name: `plugin ${p.name} ${p.version}`,
            ok: true,
            detail: `${p.kind} plugin ${p.name} ${p.version} installed in ${path.join(opts.pulumiHome, "plugins")}`,
          },
    );
  }

  // The engine must not try to download plugins, nor look for CLI updates.
  const flag = (name: string, why: string) => {
    const v = env[name];
    checks.push(
      isTruthy(v)
        ? { name, ok: true, detail: `${name}=${v}` }
        : {
            name,
            ok: false,
            detail: `${name} is ${v === undefined ? "not set" : `"${v}"`}: ${why}`,
            fix: `export ${name}=true`,
          },
    );
  };
  flag(
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
    "the engine would try to download any plugin it misses instead of failing at once",
  );
  flag(
    "PULUMI_SKIP_UPDATE_CHECK",
    "the CLI would try to reach Pulumi's servers to look for a newer version",
  );

  // A self-managed backend.
  const project = readProject(opts.projectDir);
  let backend: { url: string; from: string } | undefined;
  if (env.PULUMI_BACKEND_URL) backend = { url: env.PULUMI_BACKEND_URL, from: "PULUMI_BACKEND_URL" };
  else if (project?.backendUrl)
    backend = { url: project.backendUrl, from: "backend.url in Pulumi.yaml" };
  else {
    const creds = path.join(opts.pulumiHome, "credentials.json");
    try {
      const current = (JSON.parse(fs.readFileSync(creds, "utf8")) as { current?: string }).current;
      if (current) backend = { url: current, from: `${creds} (pulumi login)` };
    } catch {
      // not logged in
    }
  }
  const backendFix =
    "pulumi login file://<folder> (or s3://<bucket>), or export PULUMI_BACKEND_URL=file://<folder>";
  if (!backend) {
    checks.push({
      name: "backend",
      ok: false,
      detail:
        "no backend is configured: the CLI would use Pulumi Cloud, which this network cannot reach",
      fix: backendFix,
    });
  } else if (/^(file|s3):\/\//.test(backend.url)) {
    checks.push({ name: "backend", ok: true, detail: `${backend.url} (from ${backend.from})` });
  } else {
    checks.push({
      name: "backend",
      ok: false,
      detail: `${backend.url} (from ${backend.from}) is not a self-managed backend (file:// or s3://)`,
      fix: backendFix,
    });
  }

  // A passphrase secrets provider, and a passphrase the CLI can read without a prompt.
  const stacks = opts.stacks ?? listStacks(opts.projectDir);
  for (const name of stacks) {
    const stack = readStack(opts.projectDir, name);
    if (!stack) {
      checks.push({
        name: `secrets (${name})`,
        ok: false,
        detail: `no Pulumi.${name}.yaml in ${opts.projectDir}`,
        fix: `pulumi stack init ${name} --secrets-provider passphrase`,
      });
    } else if (stack.secretsProvider && stack.secretsProvider !== "passphrase") {
      checks.push({
        name: `secrets (${name})`,
        ok: false,
        detail: `Pulumi.${name}.yaml uses secrets provider ${stack.secretsProvider}, not passphrase`,
        fix: `pulumi stack change-secrets-provider --stack ${name} passphrase`,
      });
    } else {
      checks.push({
        name: `secrets (${name})`,
        ok: true,
        detail: `passphrase${stack.encryptionSalt ? " (encryptionsalt present)" : " (the default of a self-managed backend)"}`,
      });
    }
  }
  const passFile = env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) {
    checks.push({ name: "passphrase", ok: true, detail: "PULUMI_CONFIG_PASSPHRASE is set" });
  } else if (passFile) {
    checks.push(
      fs.existsSync(passFile)
        ? { name: "passphrase", ok: true, detail: `PULUMI_CONFIG_PASSPHRASE_FILE=${passFile}` }
        : {
            name: "passphrase",
            ok: false,
            detail: `PULUMI_CONFIG_PASSPHRASE_FILE=${passFile} does not exist`,
            fix: "point PULUMI_CONFIG_PASSPHRASE_FILE at a file (mode 0600) that holds the stack's passphrase",
          },
    );
  } else {
    checks.push({
      name: "passphrase",
      ok: false,
      detail:
        "neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set: the CLI would stop to prompt for it",
      fix: "export PULUMI_CONFIG_PASSPHRASE_FILE=<file, mode 0600, holding the passphrase>",
    });
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`      fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  lines.push(
    failed
      ? `preflight: ${failed} of ${checks.length} checks failed`
      : `preflight: all ${checks.length} checks passed`,
  );
  return lines.join("\n") + "\n";
}
