/**
 * Progress output: bars on stderr when stderr is a terminal, otherwise one
 * line per finished item (so logs and CI output stay readable).
 */
import { MultiBar, SingleBar } from "cli-progress";

export interface ProgressItem {
  update(received: number, total: number | undefined): void;
  done(line: string): void;
}

export interface Progress {
  item(label: string): ProgressItem;
  log(line: string): void;
  stop(): void;
}

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function humanBytes(n: number): string {
  return human(n);
}

/** Lines only; `write` receives each finished line (stderr by default). */
export function lineProgress(
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Progress {
  return {
    item: () => ({ update: () => undefined, done: (line) => write(line) }),
    log: write,
    stop: () => undefined,
  };
}

export function ttyProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const multi = new MultiBar({
    stream,
    format: " {bar} {percentage}% | {received}/{size} | {label}",
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
    barsize: 30,
  });
  let active = 0;
  const log = (line: string) => {
    if (active > 0) multi.log(`${line}\n`);
    else stream.write(`${line}\n`);
  };
  return {
    item(label) {
      active++;
      const bar: SingleBar = multi.create(1, 0, { label, received: "0 B", size: "?" });
      return {
        update(received, total) {
          bar.setTotal(total && total > 0 ? total : Math.max(received, 1));
          bar.update(received, {
            label,
            received: human(received),
            size: total ? human(total) : "?",
          });
        },
        done(line) {
          // The finished item leaves the bars and is printed in full above them
          // (remove() redraws, which flushes the line logged just before).
          multi.log(`${line}\n`);
          multi.remove(bar);
          active--;
        },
      };
    },
    log,
    stop: () => {
      multi.update();
      multi.stop();
    },
  };
}

/** Bars when stderr is a TTY, lines otherwise. */
export function defaultProgress(): Progress {
  return process.stderr.isTTY ? ttyProgress(process.stderr) : lineProgress();
}
