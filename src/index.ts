/**
 * Programmatic entry: run a gateway in-process (tests, embedding). The CLI (`portcullis`) is the
 * usual way; backends verifying gateway JWTs import `portcullis/verify`.
 */
export { Gateway, type GatewayOptions, type ReloadResult } from './gateway.js';
export { ConfigError, type ConfigProblem, formatProblem, loadConfigFile } from './config/load.js';
export type { Config } from './config/schema.js';
export { ERRORS, type ErrorCode } from './core/errors.js';
