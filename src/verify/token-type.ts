/**
 * `typ` of every gateway-minted token (RFC 8725 §3.11 explicit typing), shared by the gateway that
 * mints and the kit that verifies: a token of another kind, even signed by a trusted key, never
 * passes for a gateway assertion.
 */
export const GATEWAY_JWT_TYPE = 'portcullis-gateway+jwt';
