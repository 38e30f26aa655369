/**
 * RFC 9421 signature bases and signatures against the RFC's own test vectors: the keys of
 * Appendix B.1, the test-request / test-response messages of B.2, the examples B.2.1–B.2.6 and the
 * rsa-v1_5-sha256 proxy signature of §4.3. Deterministic algorithms (ed25519, rsa-v1_5-sha256,
 * hmac-sha256) must reproduce the RFC's signature bytes exactly; for the randomized ones
 * (rsa-pss-sha512, ecdsa-p256-sha256) the RFC's signature must verify over our base with the
 * RFC's public key.
 */
import assert from 'node:assert/strict';
import { constants, createHash, createPrivateKey, createPublicKey, createSecretKey, type KeyObject, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { httpSignatureSchema } from '../../src/outbound/http-signature-schema.js';
import { createHttpSignatureCredential } from '../../src/outbound/http-signature.js';
import {
  contentDigest,
  type MessageView,
  parseComponentId,
  SignatureBaseError,
  type SignatureParam,
  serializeSignatureParams,
  sfString,
  signatureBase,
  signer,
} from '../../src/outbound/message-signature.js';
import type { OutboundBuildContext, OutboundRequest } from '../../src/outbound/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';

// ---- RFC 9421 Appendix B.1: the test keys ----
const TEST_KEY_RSA = `-----BEGIN RSA PRIVATE KEY-----
MIIEqAIBAAKCAQEAhAKYdtoeoy8zcAcR874L8cnZxKzAGwd7v36APp7Pv6Q2jdsP
BRrwWEBnez6d0UDKDwGbc6nxfEXAy5mbhgajzrw3MOEt8uA5txSKobBpKDeBLOsd
JKFqMGmXCQvEG7YemcxDTRPxAleIAgYYRjTSd/QBwVW9OwNFhekro3RtlinV0a75
jfZgkne/YiktSvLG34lw2zqXBDTC5NHROUqGTlML4PlNZS5Ri2U4aCNx2rUPRcKI
lE0PuKxI4T+HIaFpv8+rdV6eUgOrB2xeI1dSFFn/nnv5OoZJEIB+VmuKn3DCUcCZ
SFlQPSXSfBDiUGhwOw76WuSSsf1D4b/vLoJ10wIDAQABAoIBAG/JZuSWdoVHbi56
vjgCgkjg3lkO1KrO3nrdm6nrgA9P9qaPjxuKoWaKO1cBQlE1pSWp/cKncYgD5WxE
CpAnRUXG2pG4zdkzCYzAh1i+c34L6oZoHsirK6oNcEnHveydfzJL5934egm6p8DW
+m1RQ70yUt4uRc0YSor+q1LGJvGQHReF0WmJBZHrhz5e63Pq7lE0gIwuBqL8SMaA
yRXtK+JGxZpImTq+NHvEWWCu09SCq0r838ceQI55SvzmTkwqtC+8AT2zFviMZkKR
Qo6SPsrqItxZWRty2izawTF0Bf5S2VAx7O+6t3wBsQ1sLptoSgX3QblELY5asI0J
YFz7LJECgYkAsqeUJmqXE3LP8tYoIjMIAKiTm9o6psPlc8CrLI9CH0UbuaA2JCOM
cCNq8SyYbTqgnWlB9ZfcAm/cFpA8tYci9m5vYK8HNxQr+8FS3Qo8N9RJ8d0U5Csw
DzMYfRghAfUGwmlWj5hp1pQzAuhwbOXFtxKHVsMPhz1IBtF9Y8jvgqgYHLbmyiu1
mwJ5AL0pYF0G7x81prlARURwHo0Yf52kEw1dxpx+JXER7hQRWQki5/NsUEtv+8RT
qn2m6qte5DXLyn83b1qRscSdnCCwKtKWUug5q2ZbwVOCJCtmRwmnP131lWRYfj67
B/xJ1ZA6X3GEf4sNReNAtaucPEelgR2nsN0gKQKBiGoqHWbK1qYvBxX2X3kbPDkv
9C+celgZd2PW7aGYLCHq7nPbmfDV0yHcWjOhXZ8jRMjmANVR/eLQ2EfsRLdW69bn
f3ZD7JS1fwGnO3exGmHO3HZG+6AvberKYVYNHahNFEw5TsAcQWDLRpkGybBcxqZo
81YCqlqidwfeO5YtlO7etx1xLyqa2NsCeG9A86UjG+aeNnXEIDk1PDK+EuiThIUa
/2IxKzJKWl1BKr2d4xAfR0ZnEYuRrbeDQYgTImOlfW6/GuYIxKYgEKCFHFqJATAG
IxHrq1PDOiSwXd2GmVVYyEmhZnbcp8CxaEMQoevxAta0ssMK3w6UsDtvUvYvF22m
qQKBiD5GwESzsFPy3Ga0MvZpn3D6EJQLgsnrtUPZx+z2Ep2x0xc5orneB5fGyF1P
WtP+fG5Q6Dpdz3LRfm+KwBCWFKQjg7uTxcjerhBWEYPmEMKYwTJF5PBG9/ddvHLQ
EQeNC8fHGg4UXU8mhHnSBt3EA10qQJfRDs15M38eG2cYwB1PZpDHScDnDA0=
-----END RSA PRIVATE KEY-----`;

const TEST_KEY_RSA_PSS_PUBLIC = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----`;

const TEST_KEY_RSA_PSS = `-----BEGIN PRIVATE KEY-----
MIIEvgIBADALBgkqhkiG9w0BAQoEggSqMIIEpgIBAAKCAQEAr4tmm3r20Wd/Pbqv
P1s2+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry5
3mm+oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7Oyr
FAHqgDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUA
AN5WUtzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw
9lq4aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oy
c6XI2wIDAQABAoIBAQCUB8ip+kJiiZVKF8AqfB/aUP0jTAqOQewK1kKJ/iQCXBCq
pbo360gvdt05H5VZ/RDVkEgO2k73VSsbulqezKs8RFs2tEmU+JgTI9MeQJPWcP6X
aKy6LIYs0E2cWgp8GADgoBs8llBq0UhX0KffglIeek3n7Z6Gt4YFge2TAcW2WbN4
XfK7lupFyo6HHyWRiYHMMARQXLJeOSdTn5aMBP0PO4bQyk5ORxTUSeOciPJUFktQ
HkvGbym7KryEfwH8Tks0L7WhzyP60PL3xS9FNOJi9m+zztwYIXGDQuKM2GDsITeD
2mI2oHoPMyAD0wdI7BwSVW18p1h+jgfc4dlexKYRAoGBAOVfuiEiOchGghV5vn5N
RDNscAFnpHj1QgMr6/UG05RTgmcLfVsI1I4bSkbrIuVKviGGf7atlkROALOG/xRx
DLadgBEeNyHL5lz6ihQaFJLVQ0u3U4SB67J0YtVO3R6lXcIjBDHuY8SjYJ7Ci6Z6
vuDcoaEujnlrtUhaMxvSfcUJAoGBAMPsCHXte1uWNAqYad2WdLjPDlKtQJK1diCm
rqmB2g8QE99hDOHItjDBEdpyFBKOIP+NpVtM2KLhRajjcL9Ph8jrID6XUqikQuVi
4J9FV2m42jXMuioTT13idAILanYg8D3idvy/3isDVkON0X3UAVKrgMEne0hJpkPL
FYqgetvDAoGBAKLQ6JZMbSe0pPIJkSamQhsehgL5Rs51iX4m1z7+sYFAJfhvN3Q/
OGIHDRp6HjMUcxHpHw7U+S1TETxePwKLnLKj6hw8jnX2/nZRgWHzgVcY+sPsReRx
NJVf+Cfh6yOtznfX00p+JWOXdSY8glSSHJwRAMog+hFGW1AYdt7w80XBAoGBAImR
NUugqapgaEA8TrFxkJmngXYaAqpA0iYRA7kv3S4QavPBUGtFJHBNULzitydkNtVZ
3w6hgce0h9YThTo/nKc+OZDZbgfN9s7cQ75x0PQCAO4fx2P91Q+mDzDUVTeG30mE
t2m3S0dGe47JiJxifV9P3wNBNrZGSIF3mrORBVNDAoGBAI0QKn2Iv7Sgo4T/XjND
dl2kZTXqGAk8dOhpUiw/HdM3OGWbhHj2NdCzBliOmPyQtAr770GITWvbAI+IRYyF
S7Fnk6ZVVVHsxjtaHy1uJGFlaZzKR4AGNaUTOJMs6NadzCmGPAxNQQOCqoUjn4XR
rOjr9w349JooGXhOxbu8nOxX
-----END PRIVATE KEY-----`;

const TEST_KEY_ECC_P256_PUBLIC = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`;

const TEST_KEY_ECC_P256 = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----`;

const TEST_KEY_ED25519_PUBLIC = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----`;

const TEST_KEY_ED25519 = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----`;

const TEST_SHARED_SECRET = 'uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==';

// ---- RFC 9421 Appendix B.2: test-request and test-response ----
const REQUEST_BODY = '{"hello": "world"}';
const REQUEST_DIGEST = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';
const testRequest: MessageView = {
  method: 'POST',
  authority: 'example.com',
  scheme: 'https',
  path: '/foo',
  query: '?param=Value&Pet=dog',
  headers: {
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest': REQUEST_DIGEST,
    'content-length': '18',
  },
};
const testResponse: MessageView = {
  ...testRequest,
  status: 200,
  headers: {
    date: 'Tue, 20 Apr 2021 02:07:56 GMT',
    'content-type': 'application/json',
    'content-digest': 'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
    'content-length': '23',
  },
};
const CREATED = 1618884473;

const ids = (...names: string[]) => names.map(parseComponentId);
const b64 = (s: string) => Buffer.from(s, 'base64');

function verifyPss(base: string, signature: string): boolean {
  return verify(
    'sha512',
    Buffer.from(base),
    { key: createPublicKey(TEST_KEY_RSA_PSS_PUBLIC), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 },
    b64(signature),
  );
}

describe('RFC 9421 signature base (Appendix B.2)', () => {
  it('B.2.1 minimal: only @signature-params; the RFC rsa-pss-sha512 signature verifies over it', () => {
    const params: SignatureParam[] = [
      ['created', CREATED],
      ['keyid', 'test-key-rsa-pss'],
      ['nonce', 'b3k2pp5k7z-50gnwp.yemd'],
    ];
    const { base, input } = signatureBase([], params, testRequest);
    assert.equal(base, '"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"');
    assert.equal(input, '();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"');
    const sig =
      'd2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==';
    assert.ok(verifyPss(base, sig));
    assert.equal(verifyPss(`${base} `, sig), false, 'negative control');
  });

  it('B.2.2 selective: @authority, content-digest, @query-param;name="Pet"; the RFC signature verifies', () => {
    const { base } = signatureBase(
      ids('@authority', 'content-digest', '@query-param;name="Pet"'),
      [
        ['created', CREATED],
        ['keyid', 'test-key-rsa-pss'],
        ['tag', 'header-example'],
      ],
      testRequest,
    );
    assert.equal(
      base,
      [
        '"@authority": example.com',
        `"content-digest": ${REQUEST_DIGEST}`,
        '"@query-param";name="Pet": dog',
        '"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"',
      ].join('\n'),
    );
    const sig =
      'LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==';
    assert.ok(verifyPss(base, sig));
  });

  it('B.2.3 full coverage: every field and derived component; the RFC signature verifies', () => {
    const { base } = signatureBase(
      ids('date', '@method', '@path', '@query', '@authority', 'content-type', 'content-digest', 'content-length'),
      [
        ['created', CREATED],
        ['keyid', 'test-key-rsa-pss'],
      ],
      testRequest,
    );
    assert.equal(
      base,
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
        '"@authority": example.com',
        '"content-type": application/json',
        `"content-digest": ${REQUEST_DIGEST}`,
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
      ].join('\n'),
    );
    const sig =
      'bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==';
    assert.ok(verifyPss(base, sig));
  });

  it('B.2.4 response with ecdsa-p256-sha256: the RFC signature (r||s) verifies over our base', () => {
    const { base } = signatureBase(
      ids('@status', 'content-type', 'content-digest', 'content-length'),
      [
        ['created', CREATED],
        ['keyid', 'test-key-ecc-p256'],
      ],
      testResponse,
    );
    assert.equal(
      base,
      [
        '"@status": 200',
        '"content-type": application/json',
        '"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
        '"content-length": 23',
        '"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
      ].join('\n'),
    );
    const sig = 'wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==';
    const key = { key: createPublicKey(TEST_KEY_ECC_P256_PUBLIC), dsaEncoding: 'ieee-p1363' as const };
    assert.ok(verify('sha256', Buffer.from(base), key, b64(sig)));
    assert.equal(verify('sha256', Buffer.from(base.replace('200', '201')), key, b64(sig)), false);
  });

  it('B.2.5 hmac-sha256: our signature is the RFC bytes exactly', () => {
    const { base, input } = signatureBase(
      ids('date', '@authority', 'content-type'),
      [
        ['created', CREATED],
        ['keyid', 'test-shared-secret'],
      ],
      testRequest,
    );
    assert.equal(
      base,
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@authority": example.com',
        '"content-type": application/json',
        '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
      ].join('\n'),
    );
    assert.equal(`sig-b25=${input}`, 'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"');
    const sign = signer('hmac-sha256', createSecretKey(b64(TEST_SHARED_SECRET)));
    assert.equal(sign(Buffer.from(base)).toString('base64'), 'pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=');
  });

  it('B.2.6 ed25519: our signature is the RFC bytes exactly', () => {
    const { base } = signatureBase(
      ids('date', '@method', '@path', '@authority', 'content-type', 'content-length'),
      [
        ['created', CREATED],
        ['keyid', 'test-key-ed25519'],
      ],
      testRequest,
    );
    assert.equal(
      base,
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
      ].join('\n'),
    );
    const sig = signer('ed25519', createPrivateKey(TEST_KEY_ED25519))(Buffer.from(base));
    assert.equal(sig.toString('base64'), 'wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==');
    assert.ok(verify(null, Buffer.from(base), createPublicKey(TEST_KEY_ED25519_PUBLIC), sig));
  });

  it('§4.3 rsa-v1_5-sha256 (test-key-rsa, the proxy signature with alg and expires): our signature is the RFC bytes exactly', () => {
    const proxied: MessageView = {
      ...testRequest,
      authority: 'origin.host.internal.example',
      headers: { ...testRequest.headers, forwarded: 'for=192.0.2.123;host=example.com;proto=https' },
    };
    const { base, input } = signatureBase(
      ids('@method', '@authority', '@path', 'content-digest', 'content-type', 'content-length', 'forwarded'),
      [
        ['created', 1618884480],
        ['keyid', 'test-key-rsa'],
        ['alg', 'rsa-v1_5-sha256'],
        ['expires', 1618884540],
      ],
      proxied,
    );
    assert.equal(
      input,
      '("@method" "@authority" "@path" "content-digest" "content-type" "content-length" "forwarded");created=1618884480;keyid="test-key-rsa";alg="rsa-v1_5-sha256";expires=1618884540',
    );
    const sig = signer('rsa-v1_5-sha256', createPrivateKey(TEST_KEY_RSA))(Buffer.from(base));
    assert.equal(
      sig.toString('base64'),
      'S6ZzPXSdAMOPjN/6KXfXWNO/f7V6cHm7BXYUh3YD/fRad4BCaRZxP+JH+8XY1I6+8Cy+CM5g92iHgxtRPz+MjniOaYmdkDcnL9cCpXJleXsOckpURl49GwiyUpZ10KHgOEe11sx3G2gxI8S0jnxQB+Pu68U9vVcasqOWAEObtNKKZd8tSFu7LB5YAv0RAGhB8tmpv7sFnIm9y+7X5kXQfi8NMaZaA8i2ZHwpBdg7a6CMfwnnrtflzvZdXAsD3LH2TwevU+/PBPv0B6NMNk93wUs/vfJvye+YuI87HU38lZHowtznbLVdp770I6VHR6WfgS9ddzirrswsE1w5o0LV/g==',
    );
  });

  it('our rsa-pss-sha512 and ecdsa-p256-sha256 signatures verify with the RFC public keys', () => {
    const data = Buffer.from('"@method": POST\n"@signature-params": ("@method");created=1618884473');
    const pss = signer('rsa-pss-sha512', createPrivateKey(TEST_KEY_RSA_PSS))(data);
    assert.ok(verify('sha512', data, { key: createPublicKey(TEST_KEY_RSA_PSS_PUBLIC), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, pss));
    const ec = signer('ecdsa-p256-sha256', createPrivateKey(TEST_KEY_ECC_P256))(data);
    assert.equal(ec.length, 64, 'r || s, not DER');
    assert.ok(verify('sha256', data, { key: createPublicKey(TEST_KEY_ECC_P256_PUBLIC), dsaEncoding: 'ieee-p1363' }, ec));
  });

  it('RFC 9530: the test-request digest is sha-512 of its body; ours is sha-256 of the body as sent', () => {
    assert.equal(`sha-512=:${createHash('sha512').update(REQUEST_BODY).digest('base64')}:`, REQUEST_DIGEST);
    assert.equal(contentDigest(Buffer.from(REQUEST_BODY)), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });
});

describe('RFC 9421 derived components and structured fields', () => {
  const view = (over: Partial<MessageView>): MessageView => ({ ...testRequest, ...over });
  const value = (name: string, msg: MessageView) => signatureBase(ids(name), [], msg).base.split('\n')[0];

  it('§2.2: @target-uri, @scheme, @request-target; an absent query is "?" (§2.2.7); an empty path is "/"', () => {
    assert.equal(value('@target-uri', testRequest), '"@target-uri": https://example.com/foo?param=Value&Pet=dog');
    assert.equal(value('@scheme', testRequest), '"@scheme": https');
    assert.equal(value('@request-target', testRequest), '"@request-target": /foo?param=Value&Pet=dog');
    assert.equal(value('@query', view({ query: '' })), '"@query": ?');
    assert.equal(value('@path', view({ path: '' })), '"@path": /');
  });

  it('§2.2.8: @query-param values are decoded, then percent-encoded again', () => {
    const msg = view({ query: '?var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something' });
    assert.equal(value('@query-param;name=var', msg), '"@query-param";name="var": this%20is%20a%20big%0Avalue');
    assert.equal(value('@query-param;name=bar', msg), '"@query-param";name="bar": with%20plus%20whitespace');
  });

  it('§2.1: several field lines are joined with ", " after trimming', () => {
    const msg = view({ headers: { 'cache-control': ['max-age=60', '   must-revalidate'], 'x-empty-header': '' } });
    assert.equal(value('cache-control', msg), '"cache-control": max-age=60, must-revalidate');
    assert.equal(value('x-empty-header', msg), '"x-empty-header": ');
  });

  it('an absent field, an absent or repeated query parameter, a duplicate component are errors, not empty values', () => {
    assert.throws(() => signatureBase(ids('x-missing'), [], testRequest), SignatureBaseError);
    assert.throws(() => signatureBase(ids('@query-param;name=nope'), [], testRequest), SignatureBaseError);
    assert.throws(() => signatureBase(ids('@query-param;name=a'), [], view({ query: '?a=1&a=2' })), SignatureBaseError);
    assert.throws(() => signatureBase(ids('@method', '@method'), [], testRequest), SignatureBaseError);
    assert.throws(() => signatureBase(ids('@status'), [], testRequest), SignatureBaseError);
  });

  it('RFC 8941 strings: backslash and quote escaped; non-printable refused', () => {
    assert.equal(sfString('a"b\\c'), '"a\\"b\\\\c"');
    assert.throws(() => sfString('tab\there'), SignatureBaseError);
    assert.equal(serializeSignatureParams(ids('@method'), [['keyid', 'k"1']]), '("@method");keyid="k\\"1"');
  });

  it('component identifiers: derived names are checked, field names lower-cased', () => {
    assert.deepEqual(parseComponentId('Content-Type'), { name: 'content-type' });
    assert.deepEqual(parseComponentId('"@query-param";name="Pet"'), { name: '@query-param', param: 'Pet' });
    assert.throws(() => parseComponentId('@nope'), SignatureBaseError);
    assert.throws(() => parseComponentId('@query-param'), SignatureBaseError);
    assert.throws(() => parseComponentId('bad header'), SignatureBaseError);
  });
});

describe('httpSignature credential', () => {
  const ctx = {
    upstream: 'example',
    path: ['upstreams', 'example', 'auth'],
    dir: '.',
    maxBodyBytes: 1024,
    metrics: createMetrics(),
    logger: createLogger('silent'),
    identity: undefined,
    targets: ['https://example.com'],
    hostHeader: 'target',
  } as unknown as OutboundBuildContext;

  function pending(path: string, headers: Record<string, string>, body: Buffer | undefined): OutboundRequest {
    return {
      method: 'POST',
      path,
      headers: { ...headers },
      identity: undefined,
      upstream: 'example',
      body: {
        present: body !== undefined,
        read: async () => body ?? Buffer.alloc(0),
        replace: () => {},
      },
    };
  }

  it('signs the B.2.6 example exactly as the RFC does (configured components, label, clock)', async () => {
    const cfg = httpSignatureSchema.parse({
      type: 'httpSignature',
      keyId: 'test-key-ed25519',
      key: TEST_KEY_ED25519,
      algorithm: 'ed25519',
      label: 'sig-b26',
      components: ['date', '@method', '@path', '@authority', 'content-type', 'content-length'],
    });
    const cred = createHttpSignatureCredential(cfg, ctx, () => CREATED * 1000);
    const req = pending('/foo?param=Value&Pet=dog', testRequest.headers as Record<string, string>, Buffer.from(REQUEST_BODY));
    assert.equal(await cred.apply(req), undefined);
    assert.equal(
      req.headers['signature-input'],
      'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
    );
    assert.equal(req.headers.signature, 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:');
  });

  it('defaults: @method @authority @path, @query when present, content-digest when a body is present; expires, alg, nonce, tag', async () => {
    const cfg = httpSignatureSchema.parse({
      type: 'httpSignature',
      keyId: 'test-shared-secret',
      key: TEST_SHARED_SECRET,
      keyEncoding: 'base64',
      algorithm: 'hmac-sha256',
      expires: '5m',
      nonce: true,
      includeAlg: true,
      tag: 'portcullis',
    });
    const cred = createHttpSignatureCredential(cfg, ctx, () => CREATED * 1000);
    const withBody = pending('/foo?a=1', { signature: 'sig1=:Zm9v:', 'signature-input': 'sig1=()' }, Buffer.from(REQUEST_BODY));
    assert.equal(await cred.apply(withBody), undefined);
    assert.equal(withBody.headers['content-digest'], 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
    assert.match(
      String(withBody.headers['signature-input']),
      /^sig1=\("@method" "@authority" "@path" "@query" "content-digest"\);created=1618884473;expires=1618884773;keyid="test-shared-secret";alg="hmac-sha256";nonce="[\w-]{22}";tag="portcullis"$/,
    );
    const input = String(withBody.headers['signature-input']).slice('sig1='.length);
    const base = [
      '"@method": POST',
      '"@authority": example.com',
      '"@path": /foo',
      '"@query": ?a=1',
      '"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:',
      `"@signature-params": ${input}`,
    ].join('\n');
    const expected = signer('hmac-sha256', createSecretKey(b64(TEST_SHARED_SECRET)) as KeyObject)(Buffer.from(base)).toString('base64');
    assert.equal(withBody.headers.signature, `sig1=:${expected}:`);

    const bodyless = pending('/foo', {}, undefined);
    assert.equal(await cred.apply(bodyless), undefined);
    assert.equal(bodyless.headers['content-digest'], undefined);
    assert.match(String(bodyless.headers['signature-input']), /^sig1=\("@method" "@authority" "@path"\);/);
  });

  it('a covered field the request lacks is a 400 refusal', async () => {
    const cfg = httpSignatureSchema.parse({ type: 'httpSignature', keyId: 'k', key: TEST_KEY_ED25519, algorithm: 'ed25519', components: ['@method', 'date'] });
    const cred = createHttpSignatureCredential(cfg, ctx);
    const r = await cred.apply(pending('/x', {}, undefined));
    assert.equal(r?.code, 'PTC_ERR_BAD_REQUEST');
  });

  it('config: a key that does not fit the algorithm, a short HMAC secret, a bad label or component are refused', () => {
    assert.throws(
      () =>
        createHttpSignatureCredential(
          httpSignatureSchema.parse({ type: 'httpSignature', keyId: 'k', key: TEST_KEY_ED25519, algorithm: 'ecdsa-p256-sha256' }),
          ctx,
        ),
      /does not fit ecdsa-p256-sha256/,
    );
    assert.throws(
      () => createHttpSignatureCredential(httpSignatureSchema.parse({ type: 'httpSignature', keyId: 'k', key: 'short', algorithm: 'hmac-sha256' }), ctx),
      /at least 32 bytes/,
    );
    assert.throws(
      () => createHttpSignatureCredential(httpSignatureSchema.parse({ type: 'httpSignature', keyId: 'k', key: 'not a key', algorithm: 'ed25519' }), ctx),
      (err: Error) => err.message === 'not a PEM private key or a private JWK',
    );
    assert.equal(httpSignatureSchema.safeParse({ type: 'httpSignature', keyId: 'k', key: 'x', algorithm: 'ed25519', label: 'Sig 1' }).success, false);
    assert.equal(httpSignatureSchema.safeParse({ type: 'httpSignature', keyId: 'k', key: 'x', algorithm: 'ed25519', components: ['@status'] }).success, false);
    assert.equal(
      httpSignatureSchema.safeParse({ type: 'httpSignature', keyId: 'k', key: 'x', algorithm: 'ed25519', components: ['signature'] }).success,
      false,
    );
  });

  it('a private JWK works as well as PEM', async () => {
    const jwk = JSON.stringify(createPrivateKey(TEST_KEY_ED25519).export({ format: 'jwk' }));
    const cfg = httpSignatureSchema.parse({ type: 'httpSignature', keyId: 'k', key: jwk, algorithm: 'ed25519' });
    const req = pending('/x', {}, undefined);
    assert.equal(await createHttpSignatureCredential(cfg, ctx).apply(req), undefined);
    assert.ok(String(req.headers.signature).startsWith('sig1=:'));
  });
});
