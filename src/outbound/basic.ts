/** `basic`: HTTP Basic credentials for the backend (RFC 7617), replacing any Authorization header. */
import { BuildProblem } from '../config/load.js';
import { reveal } from '../secrets/secret.js';
import type { BasicCredentialConfig } from './schema.js';
import type { OutboundBuildContext, OutboundCredential } from './types.js';

export function createBasicCredential(cfg: BasicCredentialConfig, ctx: OutboundBuildContext): OutboundCredential {
  const { username, password } = cfg;
  // RFC 7617 §2: the user-id cannot contain a colon. Checked once here; the values stay sealed.
  if (reveal(username).includes(':')) throw new BuildProblem([...ctx.path, 'username'], 'a Basic user name cannot contain ":"');
  return {
    type: 'basic',
    apply(req) {
      req.headers.authorization = `Basic ${Buffer.from(`${reveal(username)}:${reveal(password)}`, 'utf8').toString('base64')}`;
    },
  };
}
