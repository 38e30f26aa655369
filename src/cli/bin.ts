#!/usr/bin/env node
import { EXIT, main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Give the async log destination a moment to flush, then leave even if a handle lingers.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`portcullis: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.runtime);
  },
);
