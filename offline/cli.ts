/**
 * The offline plugin cache: `npm run cache -- <command>` and `npm run preflight`.
 * Run with `--help` for the commands, their options and the exit codes.
 */
import * as path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { DEFAULT_BUNDLE_DIR } from "./bundle";
import { displayPath } from "./display";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, OfflineError } from "./errors";
import { DEFAULT_RELEASES_URL, Parts, fetchBundle, releaseUrls } from "./fetch";
import { defaultPulumiHome, installBundle } from "./install";
import { DEFAULT_LOCK_PATH, checkLock, readLock } from "./lock";
import { Platform, hostPlatform, isPlatform, PLATFORMS } from "./names";
import { formatChecks, preflight } from "./preflight";
import { defaultProgress } from "./progress";
import { envLine, pluginOverride, startBundleServer } from "./serve";
import { verifyBundle } from "./verify";
import * as fs from "node:fs";

const EXIT_CODES = `
Exit codes:
  0  success
  1  a check or an operation failed (lock drift, verification, download,
     install, preflight); every problem is printed with its fix
  2  usage error (unknown command or option, bad value)`;

interface Common {
  project?: string;
  lock?: string;
}

function paths(o: Common & { bundle?: string }) {
  const projectDir = path.resolve(o.project ?? process.cwd());
  return {
    projectDir,
    lockFile: path.resolve(projectDir, o.lock ?? DEFAULT_LOCK_PATH),
    bundleDir: path.resolve(projectDir, o.bundle ?? DEFAULT_BUNDLE_DIR),
  };
}

function hostLabel(): string {
  try {
    return `, ${hostPlatform()}`;
  } catch {
    return "";
  }
}

function platformArg(value: string, previous: Platform[] = []): Platform[] {
  if (!isPlatform(value)) throw new InvalidArgumentError(`expected one of ${PLATFORMS.join(", ")}`);
  return [...previous, value];
}

function intArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError("expected a whole number from 0 to 65535");
  return n;
}

function urlArg(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected an absolute http://, https:// or file:// URL");
  }
  if (!["http:", "https:", "file:"].includes(u.protocol))
    throw new InvalidArgumentError("expected an absolute http://, https:// or file:// URL");
  return value;
}

function listArg(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function common(cmd: Command): Command {
  return cmd
    .option(
      "--project <dir>",
      "project folder with package.json and Pulumi.yaml (default: the current folder)",
    )
    .option(
      "--lock <file>",
      `plugins lock, relative to the project (default: ${DEFAULT_LOCK_PATH})`,
    );
}

function bundleOpt(cmd: Command): Command {
  return cmd.option(
    "--bundle <dir>",
    `bundle folder, relative to the project (default: ${DEFAULT_BUNDLE_DIR})`,
  );
}

export function buildProgram(out: {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}): Command {
  const program = new Command("cache");
  program
    .description(
      "Offline bundle for casd-registry: Pulumi CLI and plugins, npm packages, Harbor artifacts.",
    )
    .exitOverride()
    .configureOutput({ writeOut: out.stdout, writeErr: out.stderr })
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", EXIT_CODES);

  common(program.command("lock"))
    .description(
      "derive offline/plugins.lock.json from node_modules (plugin names and versions from each SDK's package.json `pulumi` field, the CLI version from @pulumi/pulumi)",
    )
    .option(
      "--check",
      "do not write: fail when the lock on disk differs from what node_modules gives",
    )
    .addHelpText("after", EXIT_CODES)
    .action((o: Common & { check?: boolean }) => {
      const { projectDir, lockFile } = paths(o);
      const r = checkLock(projectDir, lockFile);
      const label = displayPath(projectDir, lockFile);
      if (o.check) {
        if (!r.ok)
          throw new OfflineError(
            `${label} is out of date: run npm run cache -- lock and commit it`,
            r.problems,
          );
        out.stdout(`${label} agrees with node_modules\n`);
        return;
      }
      if (r.ok) {
        out.stdout(`${label} is up to date\n`);
        return;
      }
      fs.writeFileSync(lockFile, r.derivedText);
      const lock = readLock(lockFile);
      out.stdout(
        `wrote ${label}: Pulumi CLI ${lock.cli.version}, ${lock.plugins.map((p) => `${p.name} ${p.version}`).join(", ")}\n`,
      );
    });

  bundleOpt(common(program.command("fetch")))
    .description(
      "on a connected machine: download the CLI and plugin archives, fill an npm cache, and optionally fetch the Harbor artifacts; resumable",
    )
    .option(
      "--platform <os-arch>",
      `platform to fetch for, repeatable (default: this machine's${hostLabel()})`,
      platformArg,
    )
    .option(
      "--base-url <url>",
      "release server or internal mirror with sdk/ and plugins/ below it",
      urlArg,
      DEFAULT_RELEASES_URL,
    )
    .option(
      "--plugins-url <url>",
      "base URL of plugin archives (default: <base-url>/plugins)",
      urlArg,
    )
    .option("--cli-url <url>", "base URL of CLI archives (default: <base-url>/sdk)", urlArg)
    .option("--no-cli", "leave out the Pulumi CLI")
    .option("--no-plugins", "leave out the plugins")
    .option("--no-npm", "leave out the npm cache")
    .option(
      "--harbor",
      "also fetch the Harbor installer, chart and image archive the stack config names",
    )
    .option("--stack <name>", "stack whose Pulumi.<stack>.yaml names the Harbor artifacts")
    .option(
      "--harbor-installer-url <url>",
      "where the Harbor offline installer is downloaded from (default: Harbor's GitHub release of harbor.version)",
      urlArg,
    )
    .option(
      "--harbor-chart-url <url>",
      "where the Harbor chart archive is downloaded from (default: Harbor's chart repository)",
      urlArg,
    )
    .option(
      "--image-source-prefix <prefix>",
      "skopeo source the image is read from, prefixed to its name",
      "docker://",
    )
    .option("--no-write-lock", "do not record the sha256 of newly fetched archives in the lock")
    .addOption(new Option("--concurrency <n>", "parallel downloads").default(3).argParser(intArg))
    .addHelpText("after", EXIT_CODES)
    .action(async (o: Common & Record<string, unknown>) => {
      const { projectDir, lockFile, bundleDir } = paths(o as Common & { bundle?: string });
      const urls = releaseUrls(o.baseUrl as string);
      const r = await fetchBundle({
        projectDir,
        lockFile,
        bundleDir,
        platforms: (o.platform as Platform[] | undefined) ?? [hostPlatform()],
        pluginsUrl: (o.pluginsUrl as string | undefined) ?? urls.pluginsUrl,
        cliUrl: (o.cliUrl as string | undefined) ?? urls.cliUrl,
        parts: {
          cli: o.cli as boolean,
          plugins: o.plugins as boolean,
          npm: o.npm as boolean,
          harbor: !!o.harbor,
        },
        stack: o.stack as string | undefined,
        sources: {
          installerUrl: o.harborInstallerUrl as string | undefined,
          chartUrl: o.harborChartUrl as string | undefined,
          imageSourcePrefix: o.imageSourcePrefix as string,
        },
        writeLock: o.writeLock as boolean,
        concurrency: (o.concurrency as number) || 1,
        progress: defaultProgress(),
      });
      if (r.recorded.length)
        out.stdout(
          `recorded sha256 of ${r.recorded.length} archive(s) in ${displayPath(projectDir, lockFile)}: commit it\n`,
        );
      out.stdout(
        `bundle ${bundleDir}: ${r.manifest.files.length} files (${r.downloaded} downloaded, ${r.resumed} resumed, ${r.skipped} already present); next: npm run cache -- verify\n`,
      );
    });

  const partsOptions = (cmd: Command) =>
    cmd
      .option(
        "--platform <os-arch>",
        "platform that must be present, repeatable (default: the bundle's)",
        platformArg,
      )
      .option("--no-cli", "do not require the Pulumi CLI")
      .option("--no-plugins", "do not require the plugins")
      .option("--no-npm", "do not require the npm cache")
      .option("--harbor", "require the Harbor artifacts");

  partsOptions(bundleOpt(common(program.command("verify"))))
    .description(
      "check that the bundle is complete against the lock and that every file matches its sha256",
    )
    .addHelpText("after", EXIT_CODES)
    .action(async (o: Common & Record<string, unknown>) => {
      const { projectDir, lockFile, bundleDir } = paths(o as Common & { bundle?: string });
      const parts: Parts = {
        cli: o.cli as boolean,
        plugins: o.plugins as boolean,
        npm: o.npm as boolean,
        harbor: !!o.harbor,
      };
      const r = await verifyBundle({
        bundleDir,
        lockFile,
        projectDir,
        platforms: o.platform as Platform[] | undefined,
        parts,
      });
      if (r.errors.length)
        throw new OfflineError(
          `bundle ${bundleDir} failed verification (${r.errors.length} problem${r.errors.length === 1 ? "" : "s"})`,
          r.errors,
        );
      out.stdout(
        `bundle ${bundleDir} OK: ${r.checked} files match the manifest; complete for ${r.manifest.platforms.join(", ")} against ${displayPath(projectDir, lockFile)}\n`,
      );
    });

  bundleOpt(common(program.command("install")))
    .description(
      "on the air-gapped machine: verify the bundle, install the plugins into PULUMI_HOME and the npm packages offline",
    )
    .option(
      "--pulumi-home <dir>",
      "PULUMI_HOME to install into (default: $PULUMI_HOME or ~/.pulumi)",
    )
    .option("--cli", "also unpack the bundle's Pulumi CLI into <pulumi-home>/bin")
    .option("--no-plugins", "leave the plugins alone")
    .option("--no-npm", "leave node_modules alone")
    .option("--harbor", "copy the Harbor artifacts to the paths the stack config names")
    .option(
      "--pulumi <path>",
      "pulumi CLI to install plugins with (default: pulumi on PATH, then <pulumi-home>/bin/pulumi)",
    )
    .option("--no-use-cli", "lay out the plugin folders without the CLI even when one is found")
    .option("--reinstall", "reinstall plugins that are already present")
    .option(
      "--npm-scripts",
      "let npm run install scripts (off by default: scripts that download fail offline)",
    )
    .addHelpText("after", EXIT_CODES)
    .action(async (o: Common & Record<string, unknown>) => {
      const { projectDir, lockFile, bundleDir } = paths(o as Common & { bundle?: string });
      const pulumiHome = path.resolve((o.pulumiHome as string | undefined) ?? defaultPulumiHome());
      const r = await installBundle({
        bundleDir,
        lockFile,
        projectDir,
        pulumiHome,
        platform: hostPlatform(),
        parts: {
          cli: !!o.cli,
          plugins: o.plugins as boolean,
          npm: o.npm as boolean,
          harbor: !!o.harbor,
        },
        pulumi: o.useCli === false ? null : (o.pulumi as string | undefined),
        reinstall: !!o.reinstall,
        npmScripts: !!o.npmScripts,
        log: (l) => out.stderr(`${l}\n`),
      });
      out.stdout(
        `installed into ${pulumiHome}: ${r.plugins.length} plugin(s)${r.cli ? `, CLI ${r.cli}` : ""}${r.npm ? ", npm packages" : ""}${r.harbor.length ? `, ${r.harbor.length} Harbor artifact(s)` : ""}; next: npm run preflight\n`,
      );
    });

  bundleOpt(common(program.command("serve")))
    .description(
      "serve the bundle over HTTP for PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES (and as a mirror for cache fetch --base-url); prints the environment line to use",
    )
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .addOption(
      new Option("--port <n>", "port to listen on (0: any free port)")
        .default(8787)
        .argParser(intArg),
    )
    .option("--public-host <name>", "host name clients use to reach this server (default: --host)")
    .addHelpText("after", EXIT_CODES)
    .action(async (o: Common & Record<string, unknown>) => {
      const { projectDir, lockFile, bundleDir } = paths(o as Common & { bundle?: string });
      const lock = readLock(lockFile);
      const srv = await startBundleServer({
        bundleDir,
        host: o.host as string,
        port: o.port as number,
        publicHost: o.publicHost as string | undefined,
        log: (l) => out.stderr(`${l}\n`),
      });
      const override = pluginOverride(lock, `${srv.url}/plugins`);
      out.stdout(`${envLine("PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES", override)}\n`);
      out.stderr(
        [
          `serving ${displayPath(projectDir, bundleDir)} at ${srv.url} (plugins/, sdk/, manifest.json); Ctrl-C stops it`,
          "with the line above in the environment, install the locked plugins from it:",
          ...lock.plugins.map((p) => `  pulumi plugin install ${p.kind} ${p.name} ${p.version}`),
          "(an explicit plugin install downloads even with PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true, which preflight asks for)",
          "",
        ].join("\n"),
      );
      await new Promise<void>((resolve) => {
        const stop = () => void srv.close().then(resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });

  common(program.command("preflight"))
    .description(
      "before pulumi up: plugins present at exact versions, no plugin downloads, no update check, a self-managed backend, a passphrase secrets provider",
    )
    .option("--pulumi-home <dir>", "PULUMI_HOME to check (default: $PULUMI_HOME or ~/.pulumi)")
    .option(
      "--stack <name>",
      "stack to check, repeatable (default: every Pulumi.<stack>.yaml)",
      listArg,
    )
    .option("--bundle <dir>", `bundle folder named in the fixes (default: ${DEFAULT_BUNDLE_DIR})`)
    .addHelpText("after", EXIT_CODES)
    .action((o: Common & Record<string, unknown>) => {
      const { projectDir, lockFile, bundleDir } = paths(o as Common & { bundle?: string });
      const checks = preflight({
        projectDir,
        lockFile,
        bundleDir,
        pulumiHome: path.resolve((o.pulumiHome as string | undefined) ?? defaultPulumiHome()),
        platform: hostPlatform(),
        stacks: o.stack as string[] | undefined,
      });
      const text = formatChecks(checks);
      if (checks.some((c) => !c.ok)) throw new OfflineError(text.trimEnd());
      out.stdout(text);
    });

  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(
  argv: string[],
  out = {
    stdout: (s: string) => void process.stdout.write(s),
    stderr: (s: string) => void process.stderr.write(s),
  },
): Promise<number> {
  const program = buildProgram(out);
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT_OK;
      return EXIT_USAGE;
    }
    if (e instanceof OfflineError) {
      out.stderr(`error: ${e.message}\n`);
      return e.exitCode;
    }
    out.stderr(`error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_FAILED;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
