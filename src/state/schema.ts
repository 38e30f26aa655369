/** Config schema of `store`: where shared state lives (docs/state.md). */
import { z } from 'zod';
import { duration, secretValue } from '../config/fields.js';
import { reveal } from '../secrets/secret.js';

const redisSchema = z
  .strictObject({
    url: secretValue('Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS').superRefine((v, ctx) => {
      let u: URL | undefined;
      try {
        u = new URL(reveal(v));
      } catch {}
      // The message never repeats the value: a Redis URL may carry a password.
      if (u === undefined || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '')
        ctx.addIssue({ code: 'custom', message: 'not a redis:// or rediss:// URL with a host', input: '[redis url]' });
    }),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{0,64}$/, 'a key prefix is at most 64 of A-Z a-z 0-9 : . _ -')
      .default('portcullis:')
      .describe('Prefix of every key the gateway writes (namespaces several gateways in one Redis). Default portcullis:'),
    timeout: duration('500ms', 'Connect and per-command timeout; a slower Redis counts as down'),
  })
  .describe('Share state between gateway instances through Redis');

export const storeSchema = z
  .strictObject({
    redis: redisSchema.optional(),
  })
  .prefault({})
  .describe('Shared state (client-credentials tokens). Without `redis`, an embedded in-memory store serves this instance alone.');

export type StoreConfig = z.output<typeof storeSchema>;
export type RedisStoreConfig = NonNullable<StoreConfig['redis']>;
