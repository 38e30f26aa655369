/**
 * `portcullis/verify`: the backend side of the last mile. A backend behind Portcullis verifies the
 * gateway-minted JWT on every request, so a caller that reaches it around the gateway (an
 * "end run") is refused. Depends on `jose` only. See docs/end-run-attacks.md.
 */
export { GatewayTokenError, type GatewayTokenErrorCode } from './errors.js';
export {
  type FastifyLikeReply,
  type FastifyLikeRequest,
  type GatewayMiddleware,
  type GatewayRequest,
  type RequireGatewayOptions,
  requireGateway,
} from './middleware.js';
export { GATEWAY_JWT_TYPE } from './token-type.js';
export { createVerifier, type GatewayAlgorithm, type GatewayClaims, type Verifier, type VerifierOptions } from './verifier.js';
