/**
 * A secret value. It prints `[redacted]` everywhere a value can leak by accident — string
 * conversion, JSON, util.inspect, template literals — and is read only through `reveal()`.
 */
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

export class Secret {
  readonly #value: string;
  /** The secret store entry name, or the reference it came from (safe to log). */
  readonly name: string;

  constructor(value: string, name = 'inline') {
    this.#value = value;
    this.name = name;
  }

  /** The plain value. Call it at the last moment, where the value is used. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${this.name}) ${REDACTED}`;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}

/** A config value that may be plain text or a Secret: its plain text. */
export function reveal(value: string | Secret): string {
  return typeof value === 'string' ? value : value.reveal();
}
