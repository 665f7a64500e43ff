import * as path from "node:path";

/** A path for messages: relative to the project when inside it, else absolute. */
export function displayPath(projectDir: string, p: string): string {
  const rel = path.relative(projectDir, p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}

/** Quotes a word for a POSIX shell. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
